"""Act as a human user against the running simulators (through their real HTTP APIs).

    python -m sandbox.act list [espo|advo]
    python -m sandbox.act espo-show <id>
    python -m sandbox.act espo-edit <id> field=value ...       # as anna.admin: the update webhook fires
    python -m sandbox.act espo-create field=value ...
    python -m sandbox.act espo-delete <id>
    python -m sandbox.act advo-show <betNr>
    python -m sandbox.act advo-edit <betNr> field=value ...    # GET, change, full PUT (as user ANNA)
    python -m sandbox.act advo-create field=value ...

Values are JSON when they parse (`betnr=100001`, `titel=null`, `kommunikation=[...]`), otherwise text.
`field=` (empty) sets null.  Options: --espo-url, --advo-url (or SANDBOX_ESPO_URL / SANDBOX_ADVO_URL).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox import config as cfg
from sandbox.signing import advoware_signature


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"expected field=value, got {pair!r}")
        if raw == "":
            out[key] = None
            continue
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
        if (
            isinstance(out[key], (int, float))
            and key not in ("betnr", "syncRetryCount", "kommKz")
            and not isinstance(out[key], bool)
        ):
            out[key] = raw  # phone numbers, HRB numbers... stay text
    return out


def human_token_request() -> dict[str, Any]:
    """An Advoware token request as the human user ANNA, freshly signed (new nonce and time)."""
    nonce = str(uuid.uuid4())
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return {
        "AppID": cfg.ADVO_APP_ID,
        "Kanzlei": cfg.ADVO_KANZLEI,
        "Database": cfg.ADVO_DATABASE,
        "User": cfg.ADVO_HUMAN_USER,
        "Password": cfg.ADVO_HUMAN_PASSWORD,
        "Role": cfg.ADVO_ROLE,
        "Product": cfg.ADVO_PRODUCT,
        "Nonce": nonce,
        "RequestTimeStamp": ts,
        "HMAC512Signature": advoware_signature(
            cfg.ADVO_API_KEY, cfg.ADVO_PRODUCT, cfg.ADVO_APP_ID, nonce, ts
        ),
    }


class Actor:
    def __init__(self, espo_url: str, advo_url: str) -> None:
        self.espo = httpx.Client(
            base_url=espo_url.rstrip("/") + "/api/v1/", headers={"X-Api-Key": cfg.ESPO_HUMAN_KEY}, timeout=15
        )
        self.advo = httpx.Client(base_url=advo_url.rstrip("/") + "/", timeout=15)
        self._token: str | None = None

    def advo_token(self) -> str:
        if self._token is None:
            resp = self.advo.post("api/v1/Token", json=human_token_request())
            check(resp)
            self._token = resp.json()["access_token"]
        return self._token

    def advo_call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.advo_token()}"}
        resp = self.advo.request(method, "api/v1/advonet/" + path, headers=headers, **kw)
        check(resp)
        return resp


def check(resp: httpx.Response) -> None:
    if resp.status_code >= 400:
        reason = resp.headers.get("x-status-reason", "")
        raise SystemExit(f"HTTP {resp.status_code} {reason} {resp.text}".strip())


def show(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


COMMANDS = [
    "list",
    "espo-show",
    "espo-edit",
    "espo-create",
    "espo-delete",
    "advo-show",
    "advo-edit",
    "advo-create",
]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m sandbox.act",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--espo-url", default=os.environ.get("SANDBOX_ESPO_URL", f"http://{cfg.HOST}:{cfg.ESPO_PORT}")
    )
    p.add_argument(
        "--advo-url", default=os.environ.get("SANDBOX_ADVO_URL", f"http://{cfg.HOST}:{cfg.ADVO_PORT}")
    )
    p.add_argument("command", choices=COMMANDS)
    p.add_argument("args", nargs="*")
    a = p.parse_args(argv)
    actor = Actor(a.espo_url, a.advo_url)
    cmd, args = a.command, a.args
    if cmd == "list":
        side = args[0] if args else "both"
        if side in ("espo", "both"):
            list_espo(actor)
        if side in ("advo", "both"):
            list_advo(actor)
    elif cmd.startswith("espo-"):
        espo_command(actor, cmd, args)
    else:
        advo_command(actor, cmd, args)


def list_espo(actor: Actor) -> None:
    offset = 0
    print("EspoCRM CBeteiligte (id, betnr, syncStatus, name):")
    while True:
        resp = actor.espo.get(
            "CBeteiligte",
            params={
                "select": "name,betnr,syncStatus",
                "orderBy": "name",
                "order": "asc",
                "maxSize": 200,
                "offset": offset,
            },
        )
        check(resp)
        rows = resp.json()["list"]
        for r in rows:
            print(f"  {r['id']}  {r.get('betnr') or '-':>8}  {r.get('syncStatus') or '-':<20} {r['name']}")
        if len(rows) < 200:
            break
        offset += 200


def list_advo(actor: Actor) -> None:
    print("Advoware Beteiligte (betNr, geaendertAm, name):")
    skip = 0
    while True:
        rows = actor.advo_call("GET", "Beteiligte", params={"skip": skip, "take": 100}).json()
        for r in rows:
            name = " ".join(x for x in (r.get("titel"), r.get("vorname"), r.get("name")) if x)
            print(f"  {r['betNr']}  {r.get('geaendertAm')}  {name}")
        if len(rows) < 100:
            break
        skip += 100


def espo_command(actor: Actor, cmd: str, args: list[str]) -> None:
    if cmd in ("espo-show", "espo-edit", "espo-delete") and not args:
        raise SystemExit(f"{cmd} needs a record id")
    if cmd == "espo-show":
        resp = actor.espo.get(f"CBeteiligte/{args[0]}")
    elif cmd == "espo-edit":
        resp = actor.espo.put(f"CBeteiligte/{args[0]}", json=parse_assignments(args[1:]))
    elif cmd == "espo-create":
        resp = actor.espo.post(
            "CBeteiligte", json=parse_assignments(args), headers={"X-Skip-Duplicate-Check": "true"}
        )
    else:  # espo-delete
        resp = actor.espo.delete(f"CBeteiligte/{args[0]}")
    check(resp)
    show(resp.json())


def advo_command(actor: Actor, cmd: str, args: list[str]) -> None:
    if cmd == "advo-show":
        show(actor.advo_call("GET", f"Beteiligte/{int(args[0])}").json())
    elif cmd == "advo-edit":
        betnr = int(args[0])
        current = actor.advo_call("GET", f"Beteiligte/{betnr}").json()
        current.update(parse_assignments(args[1:]))
        show(actor.advo_call("PUT", f"Beteiligte/{betnr}", json=current).json())
    else:  # advo-create
        show(actor.advo_call("POST", "Beteiligte", json=parse_assignments(args)).json())


if __name__ == "__main__":
    main(sys.argv[1:])
