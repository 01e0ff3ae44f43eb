"""EspoCRM simulator: CBeteiligte CRUD, list/search, auth, webhooks, notes and notifications.

Faithful to shared/docs/espocrm-api.md.  Everything lives in memory; the app is a Starlette app.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sandbox import config as cfg
from sandbox.admin import admin_routes, json_or_empty
from sandbox.common import Fault, Harness, HarnessMiddleware, Send, send_json
from sandbox.seed import build_seed
from sandbox.webhooks import Dispatcher, DispatcherSettings, Webhook

ENTITY = "CBeteiligte"

ENUMS: dict[str, list[str | None]] = {
    "salutationName": ["", "Mr.", "Mrs.", "Ms.", "Mx."],
    "beteiligterTyp": ["Person", "Firma"],
    "rechtsform": [
        "",
        "GmbH",
        "AG",
        "UG (haftungsbeschränkt)",
        "GmbH & Co. KG",
        "KG",
        "OHG",
        "GbR",
        "e.K.",
        "eG",
        "e.V.",
        "PartG",
        "PartG mbB",
        "Sonstige",
    ],
    "syncStatus": [
        "pending_sync",
        "syncing",
        "clean",
        "dirty",
        "failed",
        "conflict",
        "deleted_in_advoware",
        "permanently_failed",
    ],
}
PHONE_TYPES = ["Mobile", "Office", "Home", "Fax", "Other"]
DATETIME_FIELDS = {"advowareLastSync", "advowareDeletedAt"}
DATE_FIELDS = {"geburtsdatum"}
INT_FIELDS = {"betnr", "syncRetryCount"}
STRING_FIELDS = {
    "name",
    "firstName",
    "lastName",
    "titel",
    "handelsregisterNummer",
    "registergericht",
    "syncErrorMessage",
    "emailAddress",
    "phoneNumber",
}
SYSTEM_DROPPED = {
    "id",
    "deleted",
    "createdAt",
    "createdById",
    "createdByName",
    "modifiedAt",
    "modifiedById",
    "modifiedByName",
    "versionNumber",
}
# Output order of a record.
ATTRIBUTES = [
    "id",
    "name",
    "deleted",
    "salutationName",
    "firstName",
    "lastName",
    "beteiligterTyp",
    "titel",
    "geburtsdatum",
    "rechtsform",
    "handelsregisterNummer",
    "registergericht",
    "emailAddress",
    "phoneNumber",
    "betnr",
    "syncStatus",
    "advowareLastSync",
    "advowareDeletedAt",
    "syncErrorMessage",
    "syncRetryCount",
    "createdAt",
    "modifiedAt",
    "createdById",
    "createdByName",
    "modifiedById",
    "modifiedByName",
]
DATA_ATTRS = ("emailAddressData", "phoneNumberData")
WRITABLE = (set(ENUMS) | DATETIME_FIELDS | DATE_FIELDS | INT_FIELDS | STRING_FIELDS) - SYSTEM_DROPPED
NO_UPDATE_EVENT = {
    "modifiedAt",
    "modifiedById",
    "modifiedByName",
    "versionNumber",
    "isFollowed",
    "isStarred",
    "followersIds",
    "followersNames",
    "streamUpdatedAt",
}
DEFAULTS: dict[str, Any] = {
    "salutationName": "",
    "rechtsform": "",
    "syncStatus": "pending_sync",
    "syncRetryCount": 0,
    "deleted": False,
}
DT_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})(?::(\d{2}))?$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_SIZE = 200
WHERE_KEYS = {"type", "attribute", "value", "dateTime", "timeZone"}


@dataclass
class User:
    id: str
    user_name: str
    name: str
    api_key: str
    secret: str | None
    is_admin: bool
    type: str  # "api" | "admin" | "regular"


class EspoError(Exception):
    def __init__(self, status: int, reason: str = "", body: Any = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.body = body


def validation_error(field: str, vtype: str = "valid") -> EspoError:
    return EspoError(
        400,
        f"Field validation failure; entityType: {ENTITY}, field: {field}, type: {vtype}.",
        {
            "messageTranslation": {
                "label": "validationFailure",
                "scope": None,
                "data": {"field": field, "type": vtype},
            }
        },
    )


def espo_response(status: int, body: Any = None, reason: str = "") -> Response:
    headers = {"X-Status-Reason": reason} if reason else {}
    if body is None:
        return Response(b"", status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def now_espo() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


_id_counter = random.Random()


def new_id() -> str:
    """17 hex like PHP uniqid() + 4 random hex."""
    t = time.time()
    sec = int(t)
    usec = int((t - sec) * 1_000_000)
    return f"{sec:08x}{usec:05x}{_id_counter.getrandbits(16):04x}"


# --- query parsing ---------------------------------------------------------------------------------
def parse_nested_query(items: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP-style `a[0][b]=x&a[0][c][]=y` into nested dicts/lists."""
    root: dict[str, Any] = {}
    for key, value in items:
        m = re.match(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$", key)
        if not m:
            root[key] = value
            continue
        path = [m.group(1), *re.findall(r"\[([^\[\]]*)\]", m.group(2))]
        node: dict[str, Any] = root
        for i, part in enumerate(path):
            last = i == len(path) - 1
            if part == "":
                part = str(len(node))
            if last:
                node[part] = value
            else:
                nxt = node.get(part)
                if not isinstance(nxt, dict):
                    nxt = {}
                    node[part] = nxt
                node = nxt
    return _listify(root)


def _listify(node: Any) -> Any:
    if isinstance(node, dict):
        converted = {k: _listify(v) for k, v in node.items()}
        if converted and all(k.isdigit() for k in converted):
            return [converted[k] for k in sorted(converted, key=int)]
        return converted
    return node


def _coerce(record_value: Any, value: Any) -> Any:
    if isinstance(record_value, bool):
        return value in (True, 1, "1", "true", "True")
    if isinstance(record_value, int) and not isinstance(value, bool):
        try:
            return int(value)
        except (TypeError, ValueError):
            return value
    if isinstance(record_value, str) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _dt_value(item: dict[str, Any]) -> Any:
    value = item.get("value")
    if item.get("dateTime") and isinstance(value, str):
        tz = ZoneInfo(str(item.get("timeZone") or "UTC"))
        text = value.replace("T", " ").rstrip("Z")
        try:
            local = datetime.fromisoformat(text)
        except ValueError as exc:
            raise EspoError(400, "Bad where item value.") from exc
        if local.tzinfo is None:
            local = local.replace(tzinfo=tz)
        return local.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return value


Predicate = Callable[[dict[str, Any]], bool]


def compile_where(items: Any) -> Predicate:
    if items in (None, "", []):
        return lambda r: True
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        raise EspoError(400, "Bad where.")
    preds = [compile_item(i) for i in items]
    return lambda r: all(p(r) for p in preds)


def _cmp(op: Callable[[Any, Any], bool], attr: str, value: Any) -> Predicate:
    def pred(r: dict[str, Any]) -> bool:
        rv = r.get(attr)
        if rv is None or value is None:
            return False
        v = _coerce(rv, value)
        try:
            return op(rv, v)
        except TypeError:
            return op(str(rv), str(v))

    return pred


def compile_item(item: Any) -> Predicate:
    if not isinstance(item, dict):
        raise EspoError(400, "Bad where item.")
    unknown = set(item) - WHERE_KEYS
    if unknown:
        raise EspoError(400, f"Bad where item. Unknown key '{sorted(unknown)[0]}'.")
    wtype = item.get("type")
    attr = item.get("attribute")
    value = item.get("value")
    if wtype in ("or", "and"):
        subs = value if isinstance(value, list) else list((value or {}).values())
        preds = [compile_item(s) for s in subs]
        if wtype == "or":
            return lambda r: any(p(r) for p in preds)
        return lambda r: all(p(r) for p in preds)
    if not isinstance(wtype, str) or not isinstance(attr, str):
        raise EspoError(400, "Bad where item.")
    if wtype == "equals":
        return _cmp(lambda a, b: a == b, attr, value)
    if wtype == "notEquals":
        return _cmp(lambda a, b: a != b, attr, value)
    if wtype in ("in", "notIn"):
        values = value if isinstance(value, list) else ([] if value is None else [value])
        positive = wtype == "in"

        def pred_in(r: dict[str, Any]) -> bool:
            rv = r.get(attr)
            if rv is None:
                return False
            hit = any(rv == _coerce(rv, v) for v in values)
            return hit if positive else not hit

        return pred_in
    if wtype == "isNull":
        return lambda r: r.get(attr) is None
    if wtype == "isNotNull":
        return lambda r: r.get(attr) is not None
    if wtype == "isTrue":
        return lambda r: r.get(attr) is True
    if wtype == "isFalse":
        return lambda r: r.get(attr) is False
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "after": lambda a, b: a > b,
        "greaterThan": lambda a, b: a > b,
        "before": lambda a, b: a < b,
        "lessThan": lambda a, b: a < b,
        "greaterThanOrEquals": lambda a, b: a >= b,
        "lessThanOrEquals": lambda a, b: a <= b,
    }
    if wtype in ops:
        return _cmp(ops[wtype], attr, _dt_value(item))
    text_ops: dict[str, Callable[[str, str], bool]] = {
        "contains": lambda a, b: b.lower() in a.lower(),
        "startsWith": lambda a, b: a.lower().startswith(b.lower()),
        "endsWith": lambda a, b: a.lower().endswith(b.lower()),
    }
    if wtype in text_ops:
        op = text_ops[wtype]
        return lambda r: isinstance(r.get(attr), str) and op(r[attr], str(value))
    raise EspoError(400, f"Bad where item type '{wtype}'.")


# --- the store ----------------------------------------------------------------------------------
class EspoStore:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.records: dict[str, dict[str, Any]] = {}
        self.by_betnr: dict[int, set[str]] = {}
        self._sorted: dict[tuple[str, bool], list[str]] = {}
        self.notes: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.users = {
            cfg.ESPO_API_USER_ID: User(
                cfg.ESPO_API_USER_ID,
                cfg.ESPO_API_USER_NAME,
                "Sync API",
                cfg.ESPO_API_KEY,
                cfg.ESPO_API_SECRET,
                False,
                "api",
            ),
            cfg.ESPO_HUMAN_USER_ID: User(
                cfg.ESPO_HUMAN_USER_ID,
                cfg.ESPO_HUMAN_USER_NAME,
                "Anna Admin",
                cfg.ESPO_HUMAN_KEY,
                None,
                True,
                "admin",
            ),
        }
        self.by_key = {u.api_key: u for u in self.users.values()}
        self.by_user_name = {u.user_name.lower(): u for u in self.users.values()}

    def reset(self, seed: int | None = None, records: int | None = None, demo: bool | None = None) -> None:
        c = self.config
        data = build_seed(
            c.seed if seed is None else seed,
            demo=c.demo if demo is None else demo,
            records=c.records if records is None else records,
            tz=c.advo_timezone,
            first_betnr=cfg.ADVO_FIRST_BETNR,
        )
        self.records = {}
        self.by_betnr = {}
        for rec in data.espo:
            self.records[rec["id"]] = rec
            self._index(rec)
        self._sorted.clear()
        self.notes.clear()
        self.notifications.clear()
        self.manifest = data.manifest

    def _index(self, rec: dict[str, Any]) -> None:
        if rec.get("betnr") is not None:
            self.by_betnr.setdefault(rec["betnr"], set()).add(rec["id"])

    def _unindex(self, rec: dict[str, Any]) -> None:
        bn = rec.get("betnr")
        if bn is not None and bn in self.by_betnr:
            self.by_betnr[bn].discard(rec["id"])
            if not self.by_betnr[bn]:
                del self.by_betnr[bn]

    def authenticate(self, request: Request) -> User | None:
        key = request.headers.get("x-api-key")
        if key:
            return self.by_key.get(key)
        hmac_header = request.headers.get("x-hmac-authorization")
        if hmac_header:
            try:
                decoded = base64.b64decode(hmac_header, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return None
            api_key, sep, given = decoded.partition(":")
            user = self.by_key.get(api_key)
            if not sep or user is None or not user.secret:
                return None
            path = request.url.path.split("/api/v1/", 1)[-1]
            message = f"{request.method} /{path}"
            expected = hmac.new(user.secret.encode(), message.encode(), hashlib.sha256).hexdigest()
            return user if hmac.compare_digest(expected, given) else None
        return None

    # --- reading -----------------------------------------------------------------------------
    def get(self, rid: str) -> dict[str, Any]:
        rec = self.records.get(rid)
        if rec is None:
            raise EspoError(404, f"Record {rid} not found.")
        return rec

    @staticmethod
    def full(rec: dict[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(rec.get(k)) for k in ATTRIBUTES}
        out["emailAddressData"] = copy.deepcopy(rec.get("emailAddressData") or [])
        out["phoneNumberData"] = copy.deepcopy(rec.get("phoneNumberData") or [])
        return out

    def sorted_ids(self, order_by: str, desc: bool) -> list[str]:
        cache_key = (order_by, desc)
        ids = self._sorted.get(cache_key)
        if ids is None:
            recs = self.records
            ids = sorted(recs, key=lambda i: _sort_key(recs[i], order_by), reverse=desc)
            self._sorted[cache_key] = ids
        return ids

    def search(self, params: dict[str, Any], no_total: bool) -> dict[str, Any]:
        max_size = _int_param(params.get("maxSize"), MAX_SIZE, "maxSize")
        if max_size > MAX_SIZE:
            raise EspoError(403, "Max size should not exceed 200. Use offset and limit.")
        offset = _int_param(params.get("offset"), 0, "offset")
        order_by = params.get("orderBy") or params.get("sortBy") or "createdAt"
        if order_by not in ATTRIBUTES:
            raise EspoError(400, f"Bad orderBy '{order_by}'.")
        order = str(params.get("order") or ("desc" if "orderBy" not in params else "asc")).lower()
        if params.get("asc") is not None and "order" not in params:
            order = "asc" if str(params["asc"]).lower() in ("true", "1") else "desc"
        if order not in ("asc", "desc"):
            raise EspoError(400, "Bad order.")
        where = params.get("where")
        pred = compile_where(where)
        candidates = self._candidates(where)
        if candidates is not None:
            recs = self.records
            ids = sorted(candidates, key=lambda i: _sort_key(recs[i], order_by), reverse=order == "desc")
        else:
            ids = self.sorted_ids(order_by, order == "desc")
        matched = [i for i in ids if pred(self.records[i])]
        page = matched[offset : offset + max_size] if max_size > 0 else []
        select = params.get("select")
        if isinstance(select, str):
            fields = [s.strip() for s in select.split(",") if s.strip()]
        elif isinstance(select, list):
            fields = [str(s) for s in select]
        else:
            fields = []
        rows = []
        for i in page:
            rec = self.records[i]
            if fields:
                attrs = ["id", *[f for f in fields if f in ATTRIBUTES and f != "id"]]
            else:
                attrs = ATTRIBUTES
            rows.append({a: copy.deepcopy(rec.get(a)) for a in attrs})
        total = len(matched)
        if no_total:
            total = -1 if offset + len(page) < len(matched) else -2
        return {"total": total, "list": rows}

    def _candidates(self, where: Any) -> set[str] | None:
        """Index fast path: a top-level equals/in on betnr or id."""
        items = (
            where if isinstance(where, list) else (list(where.values()) if isinstance(where, dict) else [])
        )
        for item in items:
            if not isinstance(item, dict) or item.get("type") not in ("equals", "in"):
                continue
            values = item.get("value")
            values = values if isinstance(values, list) else [values]
            if item.get("attribute") == "betnr":
                out: set[str] = set()
                for v in values:
                    try:
                        out |= self.by_betnr.get(int(v), set())
                    except (TypeError, ValueError):
                        continue
                return out
            if item.get("attribute") == "id":
                return {str(v) for v in values if str(v) in self.records}
        return None

    # --- writing -----------------------------------------------------------------------------
    def save(
        self, data: Any, user: User, rid: str | None = None, skip_duplicate_check: bool = True
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Create (rid None) or update. Returns (record, webhook item or None)."""
        if not isinstance(data, dict):
            raise EspoError(400, "Bad request data.")
        old = self.get(rid) if rid is not None else None
        clean = validate_input(data)
        new: dict[str, Any] = copy.deepcopy(old) if old else dict(DEFAULTS)
        for k, v in clean.items():
            if k not in DATA_ATTRS and k not in ("emailAddress", "phoneNumber"):
                new[k] = v
        if old is None and "beteiligterTyp" not in clean:
            new["beteiligterTyp"] = "Firma" if new.get("rechtsform") else "Person"
        _apply_multi(new, clean, "emailAddress", "emailAddressData")
        _apply_multi(new, clean, "phoneNumber", "phoneNumberData")
        if (
            new.get("beteiligterTyp") == "Person"
            and not clean.get("name")
            and (old is None or "firstName" in clean or "lastName" in clean)
        ):
            computed = " ".join(p for p in (new.get("firstName"), new.get("lastName")) if p)
            if computed:
                new["name"] = computed
        if not new.get("name"):
            raise validation_error("name", "required")
        stamp = now_espo()
        new["modifiedAt"] = stamp
        new["modifiedById"], new["modifiedByName"] = user.id, user.name
        if old is None:
            if not skip_duplicate_check:
                dups = self.duplicates(new)
                if dups:
                    raise EspoError(409, "duplicate", dups)
            new["id"] = new_id()
            while new["id"] in self.records:
                new["id"] = new_id()
            new["createdAt"] = stamp
            new["createdById"], new["createdByName"] = user.id, user.name
            new["deleted"] = False
            item = {
                k: copy.deepcopy(new[k])
                for k in ATTRIBUTES
                if k in new
                and (
                    k in clean
                    or k in DEFAULTS
                    or k in SYSTEM_DROPPED
                    or k in ("name", "beteiligterTyp", "emailAddress", "phoneNumber")
                )
            }
            for attr in DATA_ATTRS:
                if attr in clean:
                    item[attr] = copy.deepcopy(new[attr])
            self.records[new["id"]] = new
            self._index(new)
            self._sorted.clear()
            return new, item
        assert rid is not None
        changed = [k for k in ATTRIBUTES if old.get(k) != new.get(k)]
        meaningful = [k for k in changed if k not in NO_UPDATE_EVENT]
        self._unindex(old)
        self.records[rid] = new
        self._index(new)
        self._sorted.clear()
        if not meaningful and not any(a in clean and old.get(a) != new.get(a) for a in DATA_ATTRS):
            return new, None
        item = {
            k: copy.deepcopy(new.get(k)) for k in changed if k not in ("modifiedAt", "versionNumber", "id")
        }
        for attr in DATA_ATTRS:
            if attr in clean and old.get(attr) != new.get(attr):
                item[attr] = copy.deepcopy(new[attr])
        item["id"] = rid
        return new, item

    def duplicates(self, new: dict[str, Any]) -> list[dict[str, Any]]:
        name = (new.get("name") or "").strip().lower()
        email = (new.get("emailAddress") or "").strip().lower()
        out = []
        for rec in self.records.values():
            if (name and (rec.get("name") or "").strip().lower() == name) or (
                email and (rec.get("emailAddress") or "").lower() == email
            ):
                out.append({k: rec.get(k) for k in ("id", "name", "emailAddress", "betnr", "createdAt")})
                if len(out) >= 5:
                    break
        return out

    def delete(self, rid: str) -> None:
        rec = self.get(rid)
        self._unindex(rec)
        del self.records[rid]
        self._sorted.clear()


def _sort_key(rec: dict[str, Any], attr: str) -> tuple[bool, Any, str]:
    value = rec.get(attr)
    return (value is not None, value if value is not None else "", rec["id"])


def _int_param(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise EspoError(400, f"Bad {name}.")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        result = int(value)
    else:
        raise EspoError(400, f"Bad {name}.")
    if result < 0:
        raise EspoError(400, f"Bad {name}.")
    return result


def validate_input(data: dict[str, Any]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if key in SYSTEM_DROPPED or (key not in WRITABLE and key not in DATA_ATTRS):
            continue  # silently dropped, like EspoCRM
        if key in ENUMS:
            if value is None:
                clean[key] = None
            elif value == "" and "" not in ENUMS[key]:
                clean[key] = None
            elif not isinstance(value, str) or value not in ENUMS[key]:
                raise validation_error(key)
            else:
                clean[key] = value
        elif key in DATETIME_FIELDS:
            clean[key] = _validate_datetime(key, value)
        elif key in DATE_FIELDS:
            if value in (None, ""):
                clean[key] = None
            elif not isinstance(value, str) or not DATE_RE.match(value) or not _valid_date(value):
                raise validation_error(key)
            else:
                clean[key] = value
        elif key in INT_FIELDS:
            if value in (None, ""):
                clean[key] = None
            elif isinstance(value, bool):
                raise validation_error(key)
            elif isinstance(value, int):
                clean[key] = value
            elif isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
                clean[key] = int(value)
            else:
                raise validation_error(key)
        elif key in DATA_ATTRS:
            clean[key] = _validate_data(key, value)
        else:  # varchar
            if value is None or isinstance(value, str):
                clean[key] = value if value != "" or key in ("name",) else None
                if key in ("emailAddress",) and clean[key] and not EMAIL_RE.match(clean[key]):
                    raise validation_error("emailAddress")
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                clean[key] = str(value)
            else:
                raise validation_error(key)
    return clean


def _valid_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        return False
    return True


def _validate_datetime(key: str, value: Any) -> str | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise validation_error(key)
    m = DT_RE.match(value)
    if not m:
        raise validation_error(key)
    text = value if m.group(6) is not None else value + ":00"
    try:
        datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
    except ValueError as exc:
        raise validation_error(key) from exc
    return text


def _validate_data(key: str, value: Any) -> list[dict[str, Any]]:
    scalar = "emailAddress" if key == "emailAddressData" else "phoneNumber"
    if value is None:
        return []
    if not isinstance(value, list):
        raise validation_error(scalar)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get(scalar), str) or not entry[scalar].strip():
            raise validation_error(scalar)
        text = entry[scalar].strip()
        norm = text.lower()
        if norm in seen:
            continue
        seen.add(norm)
        item: dict[str, Any] = {scalar: text}
        if key == "emailAddressData":
            if not EMAIL_RE.match(text):
                raise validation_error(scalar)
            item["lower"] = norm
        else:
            ptype = entry.get("type") or "Mobile"
            if ptype not in PHONE_TYPES:
                raise validation_error(scalar)
            item["type"] = ptype
        item["primary"] = bool(entry.get("primary", False))
        item["optOut"] = bool(entry.get("optOut", False))
        item["invalid"] = bool(entry.get("invalid", False))
        out.append(item)
    primaries = [i for i in out if i["primary"]]
    for i in out:
        i["primary"] = False
    if out:
        (primaries[0] if primaries else out[0])["primary"] = True
        out.sort(key=lambda i: not i["primary"])  # primary first, like EspoCRM
    return out


def _apply_multi(new: dict[str, Any], clean: dict[str, Any], scalar: str, data_attr: str) -> None:
    if data_attr in clean:
        new[data_attr] = clean[data_attr]
        primary = next((i for i in clean[data_attr] if i["primary"]), None)
        new[scalar] = primary[scalar] if primary else None
        return
    if scalar not in clean:
        new.setdefault(data_attr, [])
        return
    value = clean[scalar]
    entries = [dict(e) for e in (new.get(data_attr) or [])]
    rest = [e for e in entries if not e["primary"] and (value is None or e[scalar].lower() != value.lower())]
    if value:
        primary = {scalar: value, "primary": True, "optOut": False, "invalid": False}
        if scalar == "emailAddress":
            primary = {
                scalar: value,
                "lower": value.lower(),
                "primary": True,
                "optOut": False,
                "invalid": False,
            }
        else:
            old_primary = next((e for e in entries if e["primary"]), None)
            primary["type"] = (old_primary or {}).get("type") or "Mobile"
            primary = {
                scalar: value,
                "type": primary["type"],
                "primary": True,
                "optOut": False,
                "invalid": False,
            }
        entries = [primary, *rest]
    else:
        entries = rest
        if entries:
            entries[0]["primary"] = True
    new[data_attr] = entries
    first = next((e for e in entries if e["primary"]), None)
    new[scalar] = first[scalar] if first else None


# --- the app ------------------------------------------------------------------------------------
class EspoSimulator:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.store = EspoStore(sandbox_config)
        self.harness = Harness("espocrm", sandbox_config.latency_ms, sandbox_config.timeout_fault_seconds)
        self.dispatcher = Dispatcher(
            DispatcherSettings(
                interval=sandbox_config.webhook_interval,
                retry_delay=sandbox_config.webhook_retry_delay,
                timeout=sandbox_config.webhook_timeout,
                max_attempts=sandbox_config.webhook_max_attempts,
                batch_size=sandbox_config.webhook_batch_size,
                shuffle=sandbox_config.webhook_shuffle,
                seed=sandbox_config.seed,
            )
        )
        self.reset()
        routes = [
            Route("/api/v1/CBeteiligte", self.list_or_create, methods=["GET", "POST"]),
            Route("/api/v1/CBeteiligte/{id}", self.one, methods=["GET", "PUT", "PATCH", "DELETE"]),
            Route("/api/v1/Webhook", self.webhooks, methods=["GET", "POST"]),
            Route("/api/v1/Webhook/{id}", self.webhook_one, methods=["GET", "DELETE"]),
            Route("/api/v1/Note", self.notes, methods=["GET", "POST"]),
            Route("/api/v1/Notification", self.notification, methods=["GET", "POST"]),
            Route("/api/v1/App/user", self.app_user, methods=["GET"]),
            *admin_routes(self.harness, self.admin_reset, self.admin_records, self.admin_extra()),
        ]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        self.app = HarnessMiddleware(self.starlette, self.harness, espo_fault_response)

    def reset(self, seed: int | None = None, records: int | None = None, demo: bool | None = None) -> None:
        self.store.reset(seed, records, demo)
        for wid in list(self.dispatcher.webhooks):
            self.dispatcher.remove(wid)
        self.dispatcher.log.clear()
        self.dispatcher.delivered.clear()
        if self.config.webhooks_enabled:
            api = self.store.users[cfg.ESPO_API_USER_ID]
            for event, (wid, secret) in cfg.WEBHOOKS.items():
                self.dispatcher.add(
                    Webhook(
                        id=wid,
                        event=f"{ENTITY}.{event}",
                        url=self.config.webhook_url(event),
                        user_id=api.id,
                        user_name=api.user_name,
                        secret_key=secret,
                        skip_own=True,
                        created_at=now_espo(),
                    )
                )

    def _lifespan(self, app: Starlette) -> Any:
        sim = self

        class _Ctx:
            async def __aenter__(self) -> None:
                sim.dispatcher.start()

            async def __aexit__(self, *exc: object) -> None:
                await sim.dispatcher.stop()

        return _Ctx()

    # --- helpers -----------------------------------------------------------------------------
    def auth(self, request: Request) -> User:
        user = self.store.authenticate(request)
        if user is None:
            raise EspoError(401)
        info = request.scope.get("sandbox")
        if isinstance(info, dict):
            info["user"] = user.user_name
        return user

    @staticmethod
    async def body(request: Request) -> Any:
        raw = await request.body()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise EspoError(400, "Bad request body.") from exc

    async def handle(self, request: Request, fn: Callable[[Request], Any]) -> Response:
        try:
            result = await fn(request)
        except EspoError as exc:
            return espo_response(exc.status, exc.body, exc.reason)
        return result if isinstance(result, Response) else JSONResponse(result)

    # --- CBeteiligte ---------------------------------------------------------------------------
    async def list_or_create(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if req.method == "GET":
                params = parse_nested_query(list(req.query_params.multi_items()))
                sp = params.pop("searchParams", None)
                if sp:
                    try:
                        loaded = json.loads(sp)
                    except ValueError as exc:
                        raise EspoError(400, "Bad searchParams.") from exc
                    if not isinstance(loaded, dict):
                        raise EspoError(400, "Bad searchParams.")
                    params.update(loaded)
                no_total = req.headers.get("x-no-total", "").lower() in ("true", "1")
                return self.store.search(params, no_total)
            data = await self.body(req)
            skip = req.headers.get("x-skip-duplicate-check", "").lower() in ("true", "1")
            rec, item = self.store.save(data, user, skip_duplicate_check=skip)
            if item is not None:
                self.dispatcher.enqueue(f"{ENTITY}.create", item, user.id)
            return self.store.full(rec)

        return await self.handle(request, run)

    async def one(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            rid = req.path_params["id"]
            if req.method == "GET":
                return self.store.full(self.store.get(rid))
            if req.method == "DELETE":
                self.store.delete(rid)
                self.dispatcher.enqueue(f"{ENTITY}.delete", {"id": rid}, user.id)
                return True
            data = await self.body(req)
            rec, item = self.store.save(data, user, rid=rid)
            if item is not None:
                self.dispatcher.enqueue(f"{ENTITY}.update", item, user.id)
                for key in item:
                    if key != "id":
                        self.dispatcher.enqueue(
                            f"{ENTITY}.fieldUpdate.{key}", {"id": rid, key: item[key]}, user.id
                        )
            return self.store.full(rec)

        return await self.handle(request, run)

    # --- Webhook -------------------------------------------------------------------------------
    async def webhooks(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if user.type not in ("api", "admin"):
                raise EspoError(403, "No access.")
            if req.method == "GET":
                own = [
                    w.public(with_secret=False)
                    for w in self.dispatcher.webhooks.values()
                    if user.is_admin or w.user_id == user.id
                ]
                return {"total": len(own), "list": own}
            data = await self.body(req)
            if not isinstance(data, dict):
                raise EspoError(400, "Bad request data.")
            event, url = data.get("event"), data.get("url")
            if not isinstance(event, str) or not re.fullmatch(
                rf"{ENTITY}\.(create|update|delete|fieldUpdate\.[A-Za-z0-9]+)", event
            ):
                raise EspoError(
                    400,
                    "Field validation failure; entityType: Webhook, field: event, type: valid.",
                    {
                        "messageTranslation": {
                            "label": "validationFailure",
                            "scope": None,
                            "data": {"field": "event", "type": "valid"},
                        }
                    },
                )
            if not isinstance(url, str) or not re.match(r"^https?://", url):
                raise EspoError(
                    400,
                    "Field validation failure; entityType: Webhook, field: url, type: valid.",
                    {
                        "messageTranslation": {
                            "label": "validationFailure",
                            "scope": None,
                            "data": {"field": "url", "type": "valid"},
                        }
                    },
                )
            if (
                not user.is_admin
                and sum(1 for w in self.dispatcher.webhooks.values() if w.user_id == user.id) >= 50
            ):
                raise EspoError(403, "Webhook number limit reached.")
            wh = self.dispatcher.add(
                Webhook(
                    id=new_id(),
                    event=event,
                    url=url,
                    user_id=user.id,
                    user_name=user.user_name,
                    secret_key=self.dispatcher.new_secret(),
                    skip_own=bool(data.get("skipOwn", False)),
                    is_active=bool(data.get("isActive", True)),
                    created_at=now_espo(),
                )
            )
            return JSONResponse(wh.public(), status_code=201)

        return await self.handle(request, run)

    async def webhook_one(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            wid = req.path_params["id"]
            wh = self.dispatcher.webhooks.get(wid)
            if wh is None or (not user.is_admin and wh.user_id != user.id):
                raise EspoError(404, f"Record {wid} not found.")
            if req.method == "GET":
                return wh.public(with_secret=False)
            self.dispatcher.remove(wid)
            return True

        return await self.handle(request, run)

    # --- Note / Notification ---------------------------------------------------------------------
    async def notes(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if req.method == "GET":
                params = parse_nested_query(list(req.query_params.multi_items()))
                notes = [
                    n
                    for n in self.store.notes
                    if not params.get("parentId") or n["parentId"] == params["parentId"]
                ]
                return {"total": len(notes), "list": notes}
            data = await self.body(req)
            if not isinstance(data, dict) or data.get("type", "Post") != "Post":
                raise EspoError(403, "No create access.")
            post = data.get("post")
            if not isinstance(post, str) or not post.strip():
                raise EspoError(
                    400,
                    "Field validation failure; entityType: Note, field: post, type: required.",
                    {
                        "messageTranslation": {
                            "label": "validationFailure",
                            "scope": None,
                            "data": {"field": "post", "type": "required"},
                        }
                    },
                )
            parent_type, parent_id = data.get("parentType"), data.get("parentId")
            if parent_type is not None:
                if parent_type != ENTITY:
                    raise EspoError(403, "No access.")
                self.store.get(str(parent_id))
            note = {
                "id": new_id(),
                "type": "Post",
                "post": post,
                "parentType": parent_type,
                "parentId": parent_id,
                "createdAt": now_espo(),
                "createdById": user.id,
                "createdByName": user.name,
                "deleted": False,
            }
            self.store.notes.append(note)
            for mention in re.findall(r"@([A-Za-z0-9_.\-]*[A-Za-z0-9_])", post):
                target = self.store.by_user_name.get(mention.lower())
                if target is not None and target.id != user.id:
                    self.store.notifications.append(
                        {
                            "id": new_id(),
                            "type": "MentionInPost",
                            "userId": target.id,
                            "read": False,
                            "noteId": note["id"],
                            "relatedType": "Note",
                            "relatedId": note["id"],
                            "relatedParentType": parent_type,
                            "relatedParentId": parent_id,
                            "createdAt": note["createdAt"],
                            "createdById": user.id,
                        }
                    )
            return note

        return await self.handle(request, run)

    async def notification(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            if req.method == "GET":
                own = [n for n in self.store.notifications if n["userId"] == user.id]
                return {"total": len(own), "list": own}
            if not user.is_admin:
                raise EspoError(403, "No create access.")
            data = await self.body(req)
            if not isinstance(data, dict) or data.get("userId") not in self.store.users:
                raise validation_error("userId", "required")
            note = {
                "id": new_id(),
                "type": str(data.get("type") or "Message"),
                "userId": data["userId"],
                "message": data.get("message"),
                "read": False,
                "createdAt": now_espo(),
                "createdById": user.id,
            }
            self.store.notifications.append(note)
            return note

        return await self.handle(request, run)

    async def app_user(self, request: Request) -> Response:
        async def run(req: Request) -> Any:
            user = self.auth(req)
            return {
                "user": {
                    "id": user.id,
                    "userName": user.user_name,
                    "name": user.name,
                    "type": user.type,
                    "isAdmin": user.is_admin,
                }
            }

        return await self.handle(request, run)

    # --- admin ---------------------------------------------------------------------------------
    def admin_reset(self, data: dict[str, Any]) -> None:
        self.reset(data.get("seed"), data.get("records"), data.get("demo"))

    def admin_records(self) -> dict[str, Any]:
        return {
            "records": [self.store.full(r) for r in self.store.records.values()],
            "manifest": self.store.manifest,
        }

    def admin_extra(self) -> list[Route]:
        async def webhooks_state(request: Request) -> Response:
            d = self.dispatcher
            limit = int(request.query_params.get("log", "200"))
            return JSONResponse(
                {
                    "webhooks": [w.public() for w in d.webhooks.values()],
                    "pending": d.pending(),
                    "retrying": len(d.retries),
                    "stats": d.stats,
                    "settings": vars(d.settings),
                    "log": list(d.log)[-limit:],
                }
            )

        async def webhooks_flush(request: Request) -> Response:
            data = await json_or_empty(request)
            results = await self.dispatcher.tick(force_retries=bool(data.get("force_retries", False)))
            return JSONResponse(
                {
                    "deliveries": results,
                    "pending": self.dispatcher.pending(),
                    "retrying": len(self.dispatcher.retries),
                }
            )

        async def webhooks_redeliver(request: Request) -> Response:
            data = await json_or_empty(request)
            return JSONResponse({"requeued": self.dispatcher.redeliver(int(data.get("last", 1)))})

        async def webhooks_settings(request: Request) -> Response:
            data = await json_or_empty(request)
            s = self.dispatcher.settings
            for key in (
                "interval",
                "retry_delay",
                "timeout",
                "max_attempts",
                "batch_size",
                "shuffle",
                "shuffle_items",
                "paused",
            ):
                if key in data:
                    setattr(s, key, type(getattr(s, key))(data[key]))
            return JSONResponse(vars(s))

        async def notes_dump(request: Request) -> Response:
            return JSONResponse({"notes": self.store.notes, "notifications": self.store.notifications})

        return [
            Route("/__sandbox/webhooks", webhooks_state, methods=["GET"]),
            Route("/__sandbox/webhooks/flush", webhooks_flush, methods=["POST"]),
            Route("/__sandbox/webhooks/redeliver", webhooks_redeliver, methods=["POST"]),
            Route("/__sandbox/webhooks/settings", webhooks_settings, methods=["POST"]),
            Route("/__sandbox/notes", notes_dump, methods=["GET"]),
        ]


async def espo_fault_response(fault: Fault, send: Send) -> None:
    status = 503 if fault.kind == "503_nicht_angemeldet" else int(fault.kind)
    headers = {"X-Status-Reason": f"Sandbox fault {status}"}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(fault.retry_after)
    await send_json(send, status, None, headers)
