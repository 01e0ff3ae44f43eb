"""Day one, end to end (issue 22): an empty simulated EspoCRM (no entity, no webhooks) →
`python -m services.ops setup-espocrm` → a second run changes nothing → a missing enum value
stops `make serve`'s command naming it → setup again → `make serve` passes its check and starts
→ a party created in EspoCRM reaches Advoware through the webhooks the setup registered.

One sandbox and one runtime for the whole path; the finer cases (dry run, refused types, the
extension) run in-process against the simulator in tests/unit."""

from __future__ import annotations

import base64
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandbox import config as cfg
from sandbox.act import Actor
from services.espocrm.schema import ENTITY
from tests.support.processes import (
    PROJECT_ROOT,
    free_motia_port,
    free_port,
    run_redis,
    stop_process_group,
    wait_for_port,
)
from tests.support.stack import PY, Stack, _start, _wait_ready, sandbox_command, service_env, wait_linked

pytestmark = pytest.mark.e2e

ADMIN = {"ESPOCRM_ADMIN_USER": cfg.ESPO_HUMAN_USER_NAME, "ESPOCRM_ADMIN_PASSWORD": cfg.ESPO_ADMIN_PASSWORD}
ADMIN_AUTH = {
    "Espo-Authorization": base64.b64encode(
        f"{cfg.ESPO_HUMAN_USER_NAME}:{cfg.ESPO_ADMIN_PASSWORD}".encode()
    ).decode()
}


@dataclass
class DayOne:
    stack: Stack
    log_dir: Path
    cleanup: ExitStack

    def run(self, *cmd: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(cmd),
            cwd=PROJECT_ROOT,
            env={**self.stack.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )

    def setup(self, *args: str) -> subprocess.CompletedProcess[str]:
        url = self.stack.motia_url
        return self.run(PY, "-m", "services.ops", "setup-espocrm", "--url", url, *args, env=ADMIN)

    def writes_since(self, seq: int) -> list[str]:
        calls = httpx.get(f"{self.stack.espo_url}/__sandbox/calls", params={"since": seq}, timeout=30).json()
        return [f"{c['method']} {c['path']}" for c in calls["calls"] if c["method"] != "GET"]

    def seq(self) -> int:
        return int(httpx.get(f"{self.stack.espo_url}/__sandbox/calls", timeout=30).json()["seq"])


@pytest.fixture(scope="module")
def day_one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DayOne]:
    """Redis and an empty EspoCRM (plus Advoware) simulator; the service is not started yet."""
    log_dir = tmp_path_factory.mktemp("day-one")
    with ExitStack() as cleanup:
        redis = cleanup.enter_context(run_redis())
        espo_port, advo_port, motia_port = free_port(), free_port(), free_motia_port()
        env = service_env(redis.url, espo_port, advo_port)
        env.update({"PORT": str(motia_port), "WORKBENCH_USER": "", "WORKBENCH_PASSWORD": ""})
        env["ESPOCRM_WEBHOOK_SECRETS"] = "none:none"  # nothing registered yet
        stack = Stack(redis.url, espo_port, advo_port, motia_port, env, redis=redis)
        hooks = f"http://127.0.0.1:{motia_port}/vmh/webhook/beteiligte"
        args = ("--webhook-base", hooks, "--no-entity", "--no-webhooks", "--no-demo")
        sandbox = _start("sandbox", sandbox_command(espo_port, advo_port, *args), env, log_dir, stack)
        cleanup.callback(stop_process_group, sandbox)
        wait_for_port(espo_port, 60, sandbox)
        wait_for_port(advo_port, 60, sandbox)
        yield DayOne(stack, log_dir, cleanup)


def test_day_one_from_an_empty_espocrm_to_a_synced_party(day_one: DayOne) -> None:
    stack = day_one.stack
    meta = httpx.get(f"{stack.espo_url}/api/v1/Metadata", headers={"X-Api-Key": cfg.ESPO_API_KEY}, timeout=30)
    assert meta.json() == {"scopes": {}, "entityDefs": {}}

    first = day_one.setup()
    assert first.returncode == 0, first.stderr
    assert f"create entity {ENTITY}" in first.stdout and cfg.ESPO_ADMIN_PASSWORD not in first.stdout
    secrets = next(ln for ln in first.stdout.splitlines() if ln.startswith("ESPOCRM_WEBHOOK_SECRETS="))
    stack.env["ESPOCRM_WEBHOOK_SECRETS"] = secrets.split("=", 1)[1]
    stack.env["SYNC_PUBLIC_URL"] = stack.motia_url

    seq = day_one.seq()
    second = day_one.setup()
    assert second.returncode == 0 and "nothing to change" in second.stdout
    assert secrets in second.stdout and day_one.writes_since(seq) == []

    # A firm's admin removed an enum value by hand: make serve's check stops, naming it.
    status = httpx.get(f"{stack.espo_url}/api/v1/Admin/fieldManager/{ENTITY}/syncStatus", headers=ADMIN_AUTH)
    fewer = [o for o in status.json()["options"] if o != "excluded"]
    httpx.put(
        f"{stack.espo_url}/api/v1/Admin/fieldManager/{ENTITY}/syncStatus",
        json={"options": fewer},
        headers=ADMIN_AUTH,
        timeout=30,
    ).raise_for_status()
    refused = day_one.run("bash", "scripts/serve.sh")
    assert refused.returncode != 0
    assert "field syncStatus lacks the value(s) 'excluded'" in refused.stderr
    assert "Server ready" not in refused.stdout + refused.stderr

    assert day_one.setup().returncode == 0  # adds the value back
    motia = _start("motia", ["bash", "scripts/serve.sh"], stack.env, day_one.log_dir, stack)
    day_one.cleanup.callback(stop_process_group, motia)
    wait_for_port(stack.motia_port, 180, motia)
    _wait_ready(stack)
    log = stack.log_text("motia")
    assert "espocrm: set up as the service needs it" in log
    assert "advoware: WARNING fields: the server lists no Beteiligte" in log  # the check-advoware part ran

    # The same checks in /vmh/health's detail and in `status`.
    token = {"Authorization": f"Bearer {cfg.SYNC_ADMIN_TOKEN}"}
    health = httpx.get(f"{stack.motia_url}/vmh/health", headers=token, timeout=60).json()
    assert health["checks"]["espocrm_setup"] == {"state": "ok"}
    assert health["checks"]["advoware_contract"]["state"] == "warn"
    report = day_one.run(PY, "-m", "services.ops", "status")
    assert "espocrm_setup" in report.stdout and "advoware_contract" in report.stdout, report.stderr

    actor = Actor(stack.espo_url, stack.advo_url)
    created = actor.espo.post(
        ENTITY,
        json={"firstName": "Erster", "lastName": "Tag", "emailAddress": "erster.tag@example.org"},
        headers={"X-Skip-Duplicate-Check": "true"},
    )
    assert created.status_code == 200, created.text
    record = wait_linked(actor, created.json()["id"], timeout=120)
    party = actor.advo_call("GET", f"Beteiligte/{record['betnr']}").json()
    assert party["name"] == "Tag" and party["vorname"] == "Erster"
