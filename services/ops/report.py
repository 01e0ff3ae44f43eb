"""Text output of the operations commands (`status`'s health part, `history`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

MARK = {"ok": "ok  ", "warn": "WARN", "fail": "FAIL"}


def print_health(report: Mapping[str, Any], out: TextIO) -> None:
    out.write(
        f"Health: {'healthy' if report['healthy'] else 'UNHEALTHY'} (checked {report['checked_at'][:19]})\n"
    )
    for name, check in report["checks"].items():
        detail = {k: v for k, v in check.items() if k != "state"}
        out.write(f"  {MARK.get(check['state'], check['state'])} {name:<9} {_short(detail)}\n")


def _short(detail: Mapping[str, Any]) -> str:
    return ", ".join(
        f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in detail.items() if v not in (None, {})
    )


def print_history(record_id: str, entries: Sequence[Mapping[str, Any]], out: TextIO) -> None:
    out.write(f"History of {record_id} (newest first, {len(entries)} entries)\n")
    if not entries:
        out.write("  none\n")
    for e in entries:
        who = f" winner={e['winner']}" if e.get("winner") else ""
        out.write(
            f"- {str(e['at'])[:19]} {e['trigger']:<11} {e['result']:<18} {e.get('direction', '')}{who}\n"
        )
        for c in e.get("changes") or []:
            out.write(
                f"    {c['field']} in {c['system']}: {json.dumps(c.get('old'), ensure_ascii=False)}"
                f" -> {json.dumps(c.get('new'), ensure_ascii=False)}\n"
            )
        for c in e.get("conflicts") or []:
            out.write(
                f"    conflict {c['field']}: EspoCRM {json.dumps(c.get('espocrm'), ensure_ascii=False)} won, "
                f"Advoware {json.dumps(c.get('advoware_overwritten'), ensure_ascii=False)} overwritten\n"
            )
        if e.get("error"):
            err = e["error"]
            out.write(
                f"    error {err.get('system', '')} status={err.get('status_code')} {err.get('reason') or err.get('message', '')}\n"
            )
        elif e.get("reason"):
            out.write(f"    reason: {e['reason']}\n")
