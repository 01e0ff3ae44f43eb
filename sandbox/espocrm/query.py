"""List/search requests: PHP-style query strings, search parameters and the `where` compiler.

A `where` (shared/docs/espocrm-api.md) compiles once into a predicate over a stored record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sandbox.espocrm.schema import INT_RE, MAX_SIZE, EspoError

WHERE_KEYS = {"type", "attribute", "value", "dateTime", "timeZone"}

Predicate = Callable[[dict[str, Any]], bool]
Compare = Callable[[Any, Any], bool]

# Comparisons of a record value with the (coerced) where value.
ORDER_OPS: dict[str, Compare] = {
    "after": lambda a, b: a > b,
    "greaterThan": lambda a, b: a > b,
    "before": lambda a, b: a < b,
    "lessThan": lambda a, b: a < b,
    "greaterThanOrEquals": lambda a, b: a >= b,
    "lessThanOrEquals": lambda a, b: a <= b,
}
TEXT_OPS: dict[str, Callable[[str, str], bool]] = {
    "contains": lambda a, b: b.lower() in a.lower(),
    "startsWith": lambda a, b: a.lower().startswith(b.lower()),
    "endsWith": lambda a, b: a.lower().endswith(b.lower()),
}
VALUE_TESTS: dict[str, Callable[[Any], bool]] = {
    "isNull": lambda v: v is None,
    "isNotNull": lambda v: v is not None,
    "isTrue": lambda v: v is True,
    "isFalse": lambda v: v is False,
}


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


# --- search parameters --------------------------------------------------------------------------
@dataclass(frozen=True)
class Search:
    max_size: int
    offset: int
    order_by: str
    desc: bool
    where: Any
    predicate: Predicate
    select: list[str]


def parse_search(params: dict[str, Any], attributes: list[str]) -> Search:
    """Validate maxSize/offset/orderBy/order/where/select in EspoCRM's order of checks
    (`attributes`: the entity's, which orderBy must name)."""
    max_size = int_param(params.get("maxSize"), MAX_SIZE, "maxSize")
    if max_size > MAX_SIZE:
        raise EspoError(403, "Max size should not exceed 200. Use offset and limit.")
    offset = int_param(params.get("offset"), 0, "offset")
    order_by = params.get("orderBy") or params.get("sortBy") or "createdAt"
    if order_by not in attributes:
        raise EspoError(400, f"Bad orderBy '{order_by}'.")
    order = str(params.get("order") or ("desc" if "orderBy" not in params else "asc")).lower()
    if params.get("asc") is not None and "order" not in params:
        order = "asc" if str(params["asc"]).lower() in ("true", "1") else "desc"
    if order not in ("asc", "desc"):
        raise EspoError(400, "Bad order.")
    where = params.get("where")
    return Search(
        max_size=max_size,
        offset=offset,
        order_by=order_by,
        desc=order == "desc",
        where=where,
        predicate=compile_where(where),
        select=_select(params.get("select")),
    )


def _select(select: Any) -> list[str]:
    if isinstance(select, str):
        return [s.strip() for s in select.split(",") if s.strip()]
    if isinstance(select, list):
        return [str(s) for s in select]
    return []


def int_param(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise EspoError(400, f"Bad {name}.")
    if isinstance(value, int):
        result = value
    elif isinstance(value, str) and INT_RE.fullmatch(value.strip()):
        result = int(value)
    else:
        raise EspoError(400, f"Bad {name}.")
    if result < 0:
        raise EspoError(400, f"Bad {name}.")
    return result


def sort_key(rec: dict[str, Any], attr: str) -> tuple[bool, Any, str]:
    value = rec.get(attr)
    return (value is not None, value if value is not None else "", rec["id"])


# --- the where compiler -------------------------------------------------------------------------
def compile_where(items: Any) -> Predicate:
    if items in (None, "", []):
        return lambda r: True
    if isinstance(items, dict):
        items = list(items.values())
    if not isinstance(items, list):
        raise EspoError(400, "Bad where.")
    preds = [compile_item(i) for i in items]
    return lambda r: all(p(r) for p in preds)


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
        return _compile_group(wtype == "or", value)
    if not isinstance(wtype, str) or not isinstance(attr, str):
        raise EspoError(400, "Bad where item.")
    if wtype == "equals":
        return _cmp(lambda a, b: a == b, attr, value)
    if wtype == "notEquals":
        return _cmp(lambda a, b: a != b, attr, value)
    if wtype in ("in", "notIn"):
        return _compile_in(attr, value, positive=wtype == "in")
    if wtype in VALUE_TESTS:
        test = VALUE_TESTS[wtype]
        return lambda r: test(r.get(attr))
    if wtype in ORDER_OPS:
        return _cmp(ORDER_OPS[wtype], attr, _dt_value(item))
    if wtype in TEXT_OPS:
        op = TEXT_OPS[wtype]
        return lambda r: isinstance(r.get(attr), str) and op(r[attr], str(value))
    raise EspoError(400, f"Bad where item type '{wtype}'.")


def _compile_group(any_of: bool, value: Any) -> Predicate:
    subs = value if isinstance(value, list) else list((value or {}).values())
    preds = [compile_item(s) for s in subs]
    if any_of:
        return lambda r: any(p(r) for p in preds)
    return lambda r: all(p(r) for p in preds)


def _compile_in(attr: str, value: Any, positive: bool) -> Predicate:
    values = value if isinstance(value, list) else ([] if value is None else [value])

    def pred_in(r: dict[str, Any]) -> bool:
        rv = r.get(attr)
        if rv is None:
            return False
        hit = any(rv == _coerce(rv, v) for v in values)
        return hit if positive else not hit

    return pred_in


def _cmp(op: Compare, attr: str, value: Any) -> Predicate:
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
