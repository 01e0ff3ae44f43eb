"""The in-memory CBeteiligte store: records, the betnr index, notes, notifications and users.

Reads (get, search) and writes (save, delete) return what the REST layer answers; a write also
returns the webhook item EspoCRM would send for it (None when nothing meaningful changed).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
from typing import Any

from starlette.requests import Request

from sandbox import config as cfg
from sandbox.espocrm.metadata import EntityDefs
from sandbox.espocrm.query import Search, parse_search, sort_key
from sandbox.espocrm.schema import (
    ENTITY,
    NO_UPDATE_EVENT,
    SYSTEM_DROPPED,
    EspoError,
    User,
    new_id,
    now_espo,
    validation_error,
)
from sandbox.espocrm.validation import apply_multi, validate_input
from sandbox.espocrm.versioning import FIELD as VERSION
from sandbox.espocrm.versioning import Versioning
from sandbox.seed import seed_for

# Written on create besides what the request set: they are always in the create webhook item.
CREATE_ITEM_ALWAYS = ("name", "beteiligterTyp", "emailAddress", "phoneNumber")


def default_users() -> dict[str, User]:
    api = User(
        cfg.ESPO_API_USER_ID,
        cfg.ESPO_API_USER_NAME,
        "Sync API",
        cfg.ESPO_API_KEY,
        cfg.ESPO_API_SECRET,
        False,
        "api",
    )
    human = User(
        cfg.ESPO_HUMAN_USER_ID,
        cfg.ESPO_HUMAN_USER_NAME,
        "Anna Admin",
        cfg.ESPO_HUMAN_KEY,
        None,
        True,
        "admin",
        cfg.ESPO_ADMIN_PASSWORD,
    )
    return {api.id: api, human.id: human}


class EspoStore:
    def __init__(self, sandbox_config: cfg.SandboxConfig) -> None:
        self.config = sandbox_config
        self.records: dict[str, dict[str, Any]] = {}
        self.by_betnr: dict[int, set[str]] = {}
        self._sorted: dict[tuple[str, bool], list[str]] = {}
        self.notes: list[dict[str, Any]] = []
        self.notifications: list[dict[str, Any]] = []
        self.versioning = Versioning()
        self.defs = EntityDefs(sandbox_config.entity_enabled)
        self.users = default_users()
        self.by_key = {u.api_key: u for u in self.users.values()}
        self.by_user_name = {u.user_name.lower(): u for u in self.users.values()}

    def reset(self, seed: int | None = None, records: int | None = None, demo: bool | None = None) -> None:
        data = seed_for(self.config, seed, records, demo)
        self.defs.reset(self.config.entity_enabled)
        self.records = {}
        self.by_betnr = {}
        for rec in data.espo if self.defs.exists else ():
            self.records[rec["id"]] = rec
            self._index(rec)
        self._sorted.clear()
        self.notes.clear()
        self.notifications.clear()
        self.manifest = data.manifest
        self.versioning.switch(False, ())

    def _index(self, rec: dict[str, Any]) -> None:
        if rec.get("betnr") is not None:
            self.by_betnr.setdefault(rec["betnr"], set()).add(rec["id"])

    def _unindex(self, rec: dict[str, Any]) -> None:
        bn = rec.get("betnr")
        if bn is not None and bn in self.by_betnr:
            self.by_betnr[bn].discard(rec["id"])
            if not self.by_betnr[bn]:
                del self.by_betnr[bn]

    def require_entity(self, entity: str = ENTITY) -> None:
        """An entity type the instance does not have: its routes do not exist (404)."""
        if entity != ENTITY or not self.defs.exists:
            raise EspoError(404, f"Controller {entity} does not exist.")

    def authenticate(self, request: Request) -> User | None:
        basic = request.headers.get("espo-authorization") or _basic(request.headers.get("authorization"))
        if basic:
            return self._password_user(basic)
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

    def _password_user(self, encoded: str) -> User | None:
        """`Espo-Authorization: base64(user:password)` (or HTTP Basic): users with a password."""
        try:
            name, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        user = self.by_user_name.get(name.lower())
        if not sep or user is None or not user.password:
            return None
        return user if hmac.compare_digest(user.password, password) else None

    # --- reading -----------------------------------------------------------------------------
    def get(self, rid: str) -> dict[str, Any]:
        rec = self.records.get(rid)
        if rec is None:
            raise EspoError(404, f"Record {rid} not found.")
        return rec

    def full(self, rec: dict[str, Any]) -> dict[str, Any]:
        out = {k: copy.deepcopy(rec.get(k)) for k in self.defs.attributes}
        if VERSION in rec:
            out[VERSION] = rec[VERSION]
        for attr in self.defs.data_attrs:
            out[attr] = copy.deepcopy(rec.get(attr) or [])
        return out

    def sorted_ids(self, order_by: str, desc: bool) -> list[str]:
        cache_key = (order_by, desc)
        ids = self._sorted.get(cache_key)
        if ids is None:
            recs = self.records
            ids = sorted(recs, key=lambda i: sort_key(recs[i], order_by), reverse=desc)
            self._sorted[cache_key] = ids
        return ids

    def search(self, params: dict[str, Any], no_total: bool) -> dict[str, Any]:
        search = parse_search(params, self.defs.attributes)
        matched = [i for i in self._ordered_ids(search) if search.predicate(self.records[i])]
        start = search.offset
        page = matched[start : start + search.max_size] if search.max_size > 0 else []
        if search.select:
            attrs = ["id", *[f for f in search.select if f in self.defs.attributes and f != "id"]]
        else:
            attrs = self.defs.attributes
        rows = [{a: copy.deepcopy(self.records[i].get(a)) for a in attrs} for i in page]
        total = len(matched)
        if no_total:
            total = -1 if start + len(page) < len(matched) else -2
        return {"total": total, "list": rows}

    def _ordered_ids(self, search: Search) -> list[str]:
        candidates = self._candidates(search.where)
        if candidates is None:
            return self.sorted_ids(search.order_by, search.desc)
        recs = self.records
        return sorted(candidates, key=lambda i: sort_key(recs[i], search.order_by), reverse=search.desc)

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
        self,
        data: Any,
        user: User,
        rid: str | None = None,
        skip_duplicate_check: bool = True,
        version: str | None = None,
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Create (rid None) or update (``version``: the ``X-Version-Number`` sent, if any).
        Returns (record, webhook item or None)."""
        if not isinstance(data, dict):
            raise EspoError(400, "Bad request data.")
        old = self.get(rid) if rid is not None else None
        clean = validate_input(data, self.defs)
        if old is not None:
            self.versioning.check(old, clean, version)
        new = _merged(old, clean, self.defs)
        self.versioning.stamp(old, new)
        stamp = now_espo()
        new["modifiedAt"] = stamp
        new["modifiedById"], new["modifiedByName"] = user.id, user.name
        if old is None:
            return self._create(new, clean, user, stamp, skip_duplicate_check)
        assert rid is not None
        return self._update(rid, old, new, clean)

    def _create(
        self, new: dict[str, Any], clean: dict[str, Any], user: User, stamp: str, skip_duplicate_check: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
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
        defaults = self.defs.defaults
        item = {
            k: copy.deepcopy(new[k])
            for k in self.defs.attributes
            if k in new and (k in clean or k in defaults or k in SYSTEM_DROPPED or k in CREATE_ITEM_ALWAYS)
        }
        for attr in self.defs.data_attrs:
            if attr in clean:
                item[attr] = copy.deepcopy(new[attr])
        self.records[new["id"]] = new
        self._index(new)
        self._sorted.clear()
        return new, item

    def _update(
        self, rid: str, old: dict[str, Any], new: dict[str, Any], clean: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        changed = [k for k in self.defs.attributes if old.get(k) != new.get(k)]
        meaningful = [k for k in changed if k not in NO_UPDATE_EVENT]
        self._unindex(old)
        self.records[rid] = new
        self._index(new)
        self._sorted.clear()
        data_attrs = self.defs.data_attrs
        if not meaningful and not any(a in clean and old.get(a) != new.get(a) for a in data_attrs):
            return new, None
        item = {
            k: copy.deepcopy(new.get(k)) for k in changed if k not in ("modifiedAt", "versionNumber", "id")
        }
        for attr in data_attrs:
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


def _basic(header: str | None) -> str | None:
    scheme, _, value = (header or "").partition(" ")
    return value.strip() if scheme.lower() == "basic" and value else None


def _merged(old: dict[str, Any] | None, clean: dict[str, Any], defs: EntityDefs) -> dict[str, Any]:
    """The record after applying the validated input `clean` to `old` (None: a new record)."""
    new: dict[str, Any] = copy.deepcopy(old) if old else dict(defs.defaults)
    multi = {scalar: data_attr for data_attr, scalar in defs.data_attrs.items()}
    for k, v in clean.items():
        if k not in defs.data_attrs and k not in multi:
            new[k] = v
    if old is None and "beteiligterTyp" not in clean and "beteiligterTyp" in defs.fields:
        new["beteiligterTyp"] = "Firma" if new.get("rechtsform") else "Person"
    for scalar, data_attr in multi.items():
        apply_multi(new, clean, scalar, data_attr)
    if (
        new.get("beteiligterTyp", "Person") == "Person"
        and not clean.get("name")
        and (old is None or "firstName" in clean or "lastName" in clean)
    ):
        computed = " ".join(p for p in (new.get("firstName"), new.get("lastName")) if p)
        if computed:
            new["name"] = computed
    if not new.get("name"):
        raise validation_error("name", "required")
    return new
