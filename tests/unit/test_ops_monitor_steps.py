"""The operations steps (flow vmh-ops): valid configs, admin token where detail is shown."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.steps import load_step
from tests.unit.test_ops_cli import ALLOWED_API_KEYS, Ctx

ROOT = Path(__file__).resolve().parents[2]
STEPS = sorted((ROOT / "steps" / "vmh").glob("monitor_*_step.py"))


def test_configs() -> None:
    assert {p.stem for p in STEPS} == {
        "monitor_health_api_step",
        "monitor_metrics_api_step",
        "monitor_history_api_step",
        "monitor_watch_cron_step",
    }
    for path in STEPS:
        config = load_step(path).config
        assert config["flows"] == ["vmh-ops"]
        if config["type"] == "api":
            assert set(config) <= ALLOWED_API_KEYS and config["method"] == "GET"
            assert config["path"].startswith("/vmh/")
        else:
            assert config["type"] == "cron" and config["cron"] == "*/5 * * * *"


@pytest.mark.parametrize("name", ["monitor_metrics_api_step", "monitor_history_api_step"])
async def test_detail_needs_the_admin_token(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = SimpleNamespace(SYNC_ADMIN_TOKEN=SimpleNamespace(get_secret_value=lambda: "t0ken"))
    monkeypatch.setattr("services.settings.get_settings", lambda: settings)
    mod = load_step(ROOT / "steps" / "vmh" / f"{name}.py")
    for headers in ({}, {"authorization": "Bearer wrong"}):
        resp = await mod.handler({"headers": headers, "queryParams": {"id": "x"}}, Ctx([]))
        assert resp["status"] == 401


async def test_health_without_settings_is_a_bare_503(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.errors import ConfigurationError

    def broken() -> Any:
        raise ConfigurationError("configuration error: REDIS_URL is invalid")

    monkeypatch.setattr("services.settings.get_settings", broken)
    mod = load_step(ROOT / "steps" / "vmh" / "monitor_health_api_step.py")
    assert await mod.handler({"headers": {}}, Ctx([])) == {"status": 503, "body": {"healthy": False}}


def test_every_step_of_a_flow_has_its_place_in_the_workbench_layout() -> None:
    """A step missing from motia-workbench.json is drawn by Motia far off the others; the
    Workbench's fit-to-view then shrinks every label of the flow below legibility (the restore
    and forget steps did: 5 px, tests/e2e/test_workbench_view.py)."""
    placed = {f["id"]: set(f["config"]) for f in json.loads((ROOT / "motia-workbench.json").read_text())}
    for path in sorted((ROOT / "steps" / "vmh").glob("*_step.py")):
        for flow in load_step(path).config.get("flows", []):
            assert f"steps/vmh/{path.name}" in placed.get(flow, set()), (flow, path.name)
