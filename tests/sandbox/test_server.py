"""Real servers: run_in_thread, `python -m sandbox` as a subprocess, drop/timeout faults, seed, 10k records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sandbox import config as cfg
from sandbox.advoware import AdvoSimulator
from sandbox.espocrm import EspoSimulator
from sandbox.seed import build_seed
from sandbox.server import SandboxHandle, run_in_thread
from tests.support.processes import PROJECT_ROOT, free_port, stop_process_group, wait_for_port
from tests.support.stack import sandbox_command

from .conftest import API, HUMAN, asgi_client


@pytest.fixture(scope="module")
def live() -> Iterator[SandboxHandle]:
    config = cfg.SandboxConfig(
        espo_port=free_port(),
        advo_port=free_port(),
        webhook_base=f"http://127.0.0.1:{free_port()}/hook",
        webhook_interval=60,
    )
    with run_in_thread(config) as handle:
        yield handle


def test_live_servers_and_drop_and_timeout_faults(live: SandboxHandle) -> None:
    espo, advo = live.config.espo_url, live.config.advo_url
    r = httpx.get(f"{espo}/api/v1/CBeteiligte", params={"maxSize": 5}, headers=API)
    assert r.status_code == 200 and len(r.json()["list"]) == 5
    httpx.post(f"{advo}/__sandbox/faults", json={"kind": "drop", "match": {"path": "Beteiligte"}})
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{advo}/api/v1/advonet/Beteiligte")
    assert httpx.get(f"{advo}/api/v1/advonet/Beteiligte").status_code == 401  # fault consumed
    httpx.post(f"{espo}/__sandbox/faults", json={"kind": "timeout", "sleep_s": 1.0})
    with pytest.raises(httpx.TimeoutException):
        httpx.get(f"{espo}/api/v1/CBeteiligte", headers=API, timeout=0.2)
    calls = httpx.get(f"{advo}/__sandbox/calls").json()["calls"]
    assert calls[0]["fault"] == "drop"


def test_a_lost_answer_carries_the_request_out_and_answers_nothing(live: SandboxHandle) -> None:
    espo = live.config.espo_url
    httpx.post(f"{espo}/__sandbox/faults", json={"kind": "lost_answer", "match": {"method": "POST"}})
    body = {"beteiligterTyp": "Person", "firstName": "Lotte", "lastName": "Verloren"}
    with pytest.raises(httpx.TransportError):
        httpx.post(f"{espo}/api/v1/CBeteiligte", headers=API, json=body)
    made = [r for r in live.espo.store.records.values() if r.get("lastName") == "Verloren"]
    assert len(made) == 1, "the request was carried out"
    # The POST's own entry, not the log's last: the previous test's timeout fault (a 1 s sleep on
    # the same server) is logged when its sleep ends, usually after this POST.
    calls = httpx.get(f"{espo}/__sandbox/calls").json()["calls"]
    last = [c for c in calls if c["method"] == "POST"][-1]
    assert last["fault"] == "lost_answer" and last["status"] == 200


def test_live_webhook_to_unreachable_receiver_is_retried(live: SandboxHandle) -> None:
    espo = live.config.espo_url
    rid = next(iter(live.espo.store.records))
    httpx.put(f"{espo}/api/v1/CBeteiligte/{rid}", headers=HUMAN, json={"titel": "Dr."})
    deliveries = httpx.post(f"{espo}/__sandbox/webhooks/flush", json={}).json()["deliveries"]
    assert deliveries[0]["status"] == 0 and deliveries[0]["outcome"] == "retry"


def test_python_m_sandbox_ready_line_and_sigterm(tmp_path: Path) -> None:
    espo_port, advo_port = free_port(), free_port()
    env_file = tmp_path / "s.env"
    subprocess.run(
        sandbox_command(espo_port, advo_port, "--write-env", str(env_file), python=sys.executable),
        cwd=PROJECT_ROOT,
        check=True,
    )
    assert f"ESPOCRM_API_BASE_URL=http://127.0.0.1:{espo_port}/api/v1" in env_file.read_text()
    proc = subprocess.Popen(
        sandbox_command(
            espo_port,
            advo_port,
            "--records",
            "50",
            "--latency-ms",
            "1",
            "--token-ttl",
            "5",
            python=sys.executable,
        ),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        wait_for_port(advo_port, 15, proc)
        assert proc.stdout is not None
        line = proc.stdout.readline().decode()
        assert line.startswith("sandbox ready:") and f"127.0.0.1:{espo_port}" in line
        os.killpg(os.getpgid(proc.pid), signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        stop_process_group(proc)


def test_sandbox_env_matches_config() -> None:
    text = (PROJECT_ROOT / "sandbox" / "sandbox.env").read_text()
    assert text == cfg.render_env()
    assert "ADVOWARE_API_KEY=c2FuZGJveC1hZHZvd2FyZS1hcGkta2V5LTMyYnl0ZXM=" in text


def test_seed_is_deterministic_and_realistic() -> None:
    a, b = build_seed(7), build_seed(7)
    assert a.espo == b.espo and a.advo == b.advo
    assert build_seed(8).espo != a.espo
    m = a.manifest
    parties = len(m["linked_equal"]) + len(m["linked_diff"]) + len(m["espo_only"]) + len(m["advo_only"])
    assert parties >= 30 and m["espo_only"] and m["advo_only"] and m["linked_diff"]
    names = " ".join(r["name"] for r in a.espo)
    assert any(ch in names for ch in "äöüß")
    titles = {r["titel"] for r in a.espo + a.advo}
    assert {"Dr.", "Prof. Dr."} <= titles
    firms = [r for r in a.espo if r["beteiligterTyp"] == "Firma"]
    assert any(
        r["handelsregisterNummer"] and r["handelsregisterNummer"].startswith("HRB") and r["registergericht"]
        for r in firms
    )
    assert all(len(r["emailAddressData"]) >= 2 and len(r["phoneNumberData"]) >= 2 for r in firms)
    assert all(r["betnr"] is None for r in a.espo if r["id"] in {x["id"] for x in m["espo_only"]})
    advo_by_nr = {r["betNr"]: r for r in a.advo}
    assert all(x["betNr"] in advo_by_nr for x in m["linked_diff"])


async def test_10k_records_list_fast() -> None:
    started = time.process_time()  # CPU time: the bound holds however busy the machine is
    sim = EspoSimulator(cfg.SandboxConfig(records=10_000, demo=False, webhooks_enabled=False))
    assert len(sim.store.records) == 10_000
    seen = 0
    async with asgi_client(sim.app, "http://e") as c:
        offset = 0
        while True:
            r = await c.get(
                "/api/v1/CBeteiligte", headers=API, params={"maxSize": 200, "offset": offset, "orderBy": "id"}
            )
            rows = r.json()["list"]
            seen += len(rows)
            if len(rows) < 200:
                break
            offset += 200
        some = next(iter(sim.store.records.values()))["betnr"]
        for _ in range(200):  # lookups by betnr use the index
            r = await c.get(
                "/api/v1/CBeteiligte",
                headers=API,
                params={
                    "where[0][type]": "equals",
                    "where[0][attribute]": "betnr",
                    "where[0][value]": str(some),
                },
            )
            assert r.json()["total"] == 1
    assert seen == 10_000
    advo = AdvoSimulator(cfg.SandboxConfig(records=10_000, demo=False))
    rows = advo.store.list(0, 100, None)
    stamp = rows[0]["geaendertAm"]
    total = sum(len(advo.store.list(skip, 100, stamp)) for skip in range(0, 10_000, 100))
    assert total == 10_000
    assert time.process_time() - started < 10
