"""Staff acting through the simulators' real APIs while faults are injected into the service's
traffic - and the fault rules that hit only the service.

The simulators match faults by method and path. The service reads and writes EspoCRM with
GET/PUT (and POSTs notes), Advoware with GET/PUT/POST on `Beteiligte[/<betNr>]` and `Token`.
People edit EspoCRM with PATCH and address Advoware records as `Beteiligte/0<betNr>` (the
simulator reads the number the same way), so the rules in `service_faults()` never hit them:
a person's edit is never delayed or lost by the test's own chaos (a delayed full-replace PUT
by a person would overwrite the service's writes - a person's edit, not the service's fault).
People read the final state through the simulators' admin dumps, which bypass faults.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from sandbox import config as cfg
from sandbox.act import human_token_request

READ_ONLY = ("betNr", "geaendertAm", "angelegtAm")
# Path patterns of the service's own calls (see the module docstring).
ADVO_SERVICE_PATHS = r"^/api/v1/(advonet/Beteiligte(/[1-9][0-9]*)?|Token)$"
# (method, path) of the service's EspoCRM calls: it reads and updates records, and POSTs
# notifications/notes; people create with POST and edit with PATCH.
ESPO_SERVICE_CALLS = (
    ("GET", r"^/api/v1/CBeteiligte"),
    ("PUT", r"^/api/v1/CBeteiligte/"),
    ("POST", r"^/api/v1/(Note|Notification)$"),
)


class People:
    def __init__(self, espo_url: str, advo_url: str) -> None:
        self.espo_url = espo_url.rstrip("/")
        self.advo_url = advo_url.rstrip("/")
        self.espo = httpx.Client(
            base_url=self.espo_url + "/api/v1/", headers={"X-Api-Key": cfg.ESPO_HUMAN_KEY}, timeout=60
        )
        self.advo = httpx.Client(base_url=self.advo_url + "/api/v1/", timeout=60)
        self.token: str | None = None

    def close(self) -> None:
        self.espo.close()
        self.advo.close()

    # ------------------------------------------------------------------ EspoCRM (as anna.admin)
    def espo_create(self, body: dict[str, Any]) -> str:
        resp = self.espo.post("CBeteiligte", json=body, headers={"X-Skip-Duplicate-Check": "true"})
        assert resp.status_code == 200, resp.text
        return str(resp.json()["id"])

    def espo_edit(self, rid: str, changes: dict[str, Any]) -> dict[str, Any]:
        resp = self.espo.patch(f"CBeteiligte/{rid}", json=changes)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def espo_delete(self, rid: str) -> None:
        resp = self.espo.delete(f"CBeteiligte/{rid}")
        assert resp.status_code == 200, resp.text

    def espo_records(self) -> dict[str, dict[str, Any]]:
        data = httpx.get(f"{self.espo_url}/__sandbox/records", timeout=60).json()
        return {r["id"]: r for r in data["records"]}

    def espo_record(self, rid: str) -> dict[str, Any]:
        return self.espo_records()[rid]

    # ------------------------------------------------------------------ Advoware (as ANNA)
    def _new_token(self) -> str:
        last: Exception | None = None
        for _ in range(20):  # the token endpoint may be faulted: a person simply tries again
            try:
                resp = self.advo.post("Token", json=human_token_request(), timeout=10)
                if resp.status_code == 200:
                    return str(resp.json()["access_token"])
                last = AssertionError(f"token {resp.status_code}")
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.3)
        raise AssertionError(f"no Advoware token for the person: {last}")

    def advo_call(self, method: str, betnr: int | None, **kw: Any) -> httpx.Response:
        path = "advonet/Beteiligte" + (f"/0{betnr}" if betnr is not None else "")
        for _ in range(3):
            if self.token is None:
                self.token = self._new_token()
            resp = self.advo.request(method, path, headers={"Authorization": f"Bearer {self.token}"}, **kw)
            if resp.status_code != 401:
                return resp
            self.token = None  # expired: log in again
        return resp

    def advo_get(self, betnr: int) -> dict[str, Any] | None:
        resp = self.advo_call("GET", betnr)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def advo_edit(
        self, betnr: int, changes: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read, change, write the full object back (as Advoware's own UI does). `changes` may
        be a function of the record as read (e.g. to edit its kommunikation list)."""
        current = self.advo_get(betnr)
        assert current is not None, f"betNr {betnr} not found"
        current.update(changes(current) if callable(changes) else changes)
        for name in READ_ONLY:
            current.pop(name, None)
        resp = self.advo_call("PUT", betnr, json=current)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    def advo_delete(self, betnr: int) -> None:
        resp = self.advo_call("DELETE", betnr)
        assert resp.status_code in (200, 204), resp.text

    def advo_records(self) -> dict[int, dict[str, Any]]:
        data = httpx.get(f"{self.advo_url}/__sandbox/records", timeout=60).json()
        return {int(r["betNr"]): r for r in data["records"]}


def service_faults(system: str, spec: dict[str, Any]) -> list[dict[str, Any]]:
    """`spec` as fault rules that hit only the service's calls to `system` ("espo"/"advo")."""
    if system == "advo":
        return [{**spec, "match": {"path": ADVO_SERVICE_PATHS, **spec.get("match", {})}}]
    wanted = spec.get("match", {}).get("method")
    return [
        {**spec, "match": {"method": method, "path": path}}
        for method, path in ESPO_SERVICE_CALLS
        if wanted is None or wanted == method
    ]


def set_faults(base_url: str, rules: list[dict[str, Any]]) -> None:
    resp = httpx.post(f"{base_url.rstrip('/')}/__sandbox/faults", json={"faults": rules}, timeout=30)
    assert resp.status_code == 200, resp.text


def clear_faults(base_url: str) -> list[dict[str, Any]]:
    """Remove every fault rule; returns the rules as they were (with their hit counts)."""
    before = httpx.get(f"{base_url.rstrip('/')}/__sandbox/faults", timeout=30).json()["faults"]
    httpx.delete(f"{base_url.rstrip('/')}/__sandbox/faults", timeout=30).raise_for_status()
    return list(before)
