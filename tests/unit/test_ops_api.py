"""The shared shape of the API steps (services/intake/ops_api.py, `webhook_route`): configs Motia
accepts, one route table entry per operators' step, and `answer`'s status mapping."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from services.errors import OperationError
from services.events import WEBHOOK_TOPICS as TOPICS
from services.intake.handler import webhook_route
from services.intake.ops_api import ROUTES, answer, ops_route
from tests.support.steps import load_step
from tests.unit.test_ops_cli import ALLOWED_API_KEYS, ROOT

REQUIRED_API_KEYS = {"type", "name", "path", "method", "emits"}
API_STEPS = {
    path.stem: config
    for path in sorted((ROOT / "steps").rglob("*_step.py"))
    if (config := load_step(path).config)["type"] == "api"
}


def assert_motia_accepts(config: Any) -> None:
    """Motia's zod schema is strict: a plain JSON object, the required keys, no other key."""
    assert type(config) is dict
    assert REQUIRED_API_KEYS <= set(config) <= ALLOWED_API_KEYS, set(config) - ALLOWED_API_KEYS
    assert json.loads(json.dumps(config)) == config
    assert config["method"] in {"GET", "POST"} and config["path"].startswith("/vmh/")


@pytest.mark.parametrize("name", sorted(API_STEPS))
def test_every_api_step_config_is_what_motia_accepts(name: str) -> None:
    assert_motia_accepts(API_STEPS[name])


def test_every_operators_step_serves_one_route_of_the_table() -> None:
    served = {}
    for name, config in API_STEPS.items():
        if name.startswith("webhook_"):
            continue
        assert config == ops_route(config["path"], emits=config["emits"]), name
        served[config["path"]] = name
    assert set(served) == set(ROUTES)
    assert len({c["name"] for c in API_STEPS.values()}) == len(API_STEPS)


def test_ops_route_fields() -> None:
    history = ops_route("/vmh/beteiligte/sync/history")
    assert history["flows"] == ["vmh-ops"] and history["emits"] == []
    assert [q["name"] for q in history["queryParams"]] == ["id", "betnr"]
    assert "queryParams" not in ops_route("/vmh/metrics")
    sweep = ops_route("/vmh/beteiligte/sync/sweep", emits=["vmh.beteiligte.sync_check"])
    assert sweep["flows"] == ["vmh"] and sweep["emits"] == ["vmh.beteiligte.sync_check"]
    with pytest.raises(KeyError):
        ops_route("/vmh/not-a-route")


@pytest.mark.parametrize("event", sorted(TOPICS))
def test_webhook_route(event: Any) -> None:
    config = webhook_route(event)
    assert_motia_accepts(config)
    assert config == API_STEPS[f"webhook_{event}_step"]
    assert config["emits"] == [TOPICS[event]] and config["path"] == f"/vmh/webhook/beteiligte/{event}"


class Logger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda msg, *args: self.lines.append((level, msg))


class Opened(list[str]):
    factory: Any = None


@pytest.fixture
def opened() -> Opened:
    """A runtime factory that records that the runtime was opened and closed."""
    events = Opened()

    @asynccontextmanager
    async def open_runtime(settings: Any = None) -> AsyncIterator[Any]:
        events.append("open")
        try:
            yield SimpleNamespace(name="rt")
        finally:
            events.append("close")

    events.factory = open_runtime
    return events


async def test_answer_returns_the_work_as_200_with_its_logs_under_the_trace(opened: Opened) -> None:
    context = SimpleNamespace(logger=Logger())

    async def work(rt: Any) -> dict[str, Any]:
        logging.getLogger("services.ops.test").info("working on %s", rt.name)
        return {"done": True}

    assert await answer(context, work, runtime=opened.factory) == {"status": 200, "body": {"done": True}}
    assert opened == ["open", "close"]
    assert ("info", "working on rt") in context.logger.lines
    text = await answer(
        context, lambda rt: _value("# HELP"), headers={"Content-Type": "text/plain"}, runtime=opened.factory
    )
    assert text == {"status": 200, "body": "# HELP", "headers": {"Content-Type": "text/plain"}}


@pytest.mark.parametrize(
    ("error", "status"), [(OperationError("bad input"), 400), (OperationError("gone", 404), 404)]
)
async def test_answer_maps_an_ops_error_to_its_status(
    opened: Opened, error: OperationError, status: int
) -> None:
    async def work(rt: Any) -> Any:
        raise error

    resp = await answer(SimpleNamespace(logger=Logger()), work, runtime=opened.factory)
    assert resp == {"status": status, "body": {"error": str(error)}}
    assert opened == ["open", "close"]


async def test_answer_lets_other_errors_propagate(opened: Opened) -> None:
    async def work(rt: Any) -> Any:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        await answer(SimpleNamespace(logger=Logger()), work, runtime=opened.factory)
    assert opened == ["open", "close"]


async def _value(value: Any) -> Any:
    return value
