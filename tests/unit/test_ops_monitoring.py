"""Operations stores and rules: history, metrics, alerts, notices, health, field directions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import fakeredis
import pytest
from prometheus_client.parser import text_string_to_metric_families

from services.beteiligte.fieldmap import Direction, effective_directions, parse_directions
from services.conditions import AlertCondition, ConditionKind
from services.errors import AuthError, UnavailableError
from services.ops.alerts import Alerts
from services.ops.health import HealthDeps, conditions, run_checks
from services.ops.history import HistoryEntry, HistoryStore
from services.ops.metrics import render
from services.ops.recorder import entry_for_outcome
from services.store import keys
from services.store.counters import MetricName, Metrics, counter_value, stored
from services.sync.decide import FieldConflict, decide
from services.sync.notify import OUTBOX, Notifier, conflict_text, outbox_summary, record_label
from tests.support.fakes import FAKE_USER_NAME, FakeAdvo, FakeEspo
from tests.support.retry import default_retry
from tests.support.runtime import World, fake_world


@pytest.fixture
def redis() -> Any:
    return fakeredis.FakeAsyncRedis(decode_responses=True)


# --------------------------------------------------------------------------- history


async def test_history_is_bounded_by_count_and_age(redis: Any) -> None:
    store = HistoryStore(redis, limit=3, max_age=timedelta(days=1))
    now = datetime.now(UTC)
    await store.add(
        "r1", HistoryEntry(at=(now - timedelta(days=2)).isoformat(), trigger="update", result="x")
    )
    for i in range(4):
        await store.add("r1", HistoryEntry(at=now.isoformat(), trigger="update", result=f"r{i}"))
    entries = await store.entries("r1")
    assert [e["result"] for e in entries] == ["r3", "r2", "r1"]
    assert 0 < await redis.ttl(keys.history("r1")) <= 86400


async def test_a_history_entry_without_a_readable_time_counts_as_too_old(redis: Any) -> None:
    store = HistoryStore(redis, limit=3, max_age=timedelta(days=1))
    await store.add("r1", HistoryEntry(at="yesterday", trigger="update", result="old"))
    assert await redis.llen(keys.history("r1")) == 0  # dropped on write
    now = datetime.now(UTC)
    await store.add(
        "r1", HistoryEntry(at=now.replace(tzinfo=None).isoformat(), trigger="update", result="new")
    )
    await redis.rpush(keys.history("r1"), json.dumps({"at": None, "result": "broken"}))
    assert [e["result"] for e in await store.entries("r1")] == ["new"]  # naive = UTC; no time: dropped


def test_history_entry_names_old_and_new_values_and_the_winner() -> None:
    espo, advo, snap = {"last_name": "Meier"}, {"last_name": "Schulze"}, {"last_name": "Alt"}
    plan = decide(espo, advo, snap, diff=_diff)
    outcome = SimpleNamespace(record_id="r1", result="updated", plan=plan, betnr=7, reason=None)
    entry = entry_for_outcome(outcome, "update", datetime(2026, 7, 1, tzinfo=UTC))
    assert entry.direction == "to_advoware" and entry.winner == "espocrm"
    assert entry.changes == ({"field": "last_name", "system": "advoware", "old": "Schulze", "new": "Meier"},)
    assert entry.conflicts[0]["advoware_overwritten"] == "Schulze"


# --------------------------------------------------------------------------- metrics


async def test_metrics_parse_with_the_prometheus_parser_and_add_up_across_processes(redis: Any) -> None:
    for _ in range(2):  # two handler processes, each with its own buffer
        m = Metrics(redis)
        m.inc(MetricName.SYNCS, trigger="update", result="updated")
        m.observe("advoware", "GET", "2xx", 0.07)
        m.observe("espocrm", "PUT", "error", 12.0)
        await m.flush()
    assert await counter_value(redis, MetricName.SYNCS, trigger="update", result="updated") == 2
    text = render(await stored(redis), {"vmh_queue_depth": ("depth", {(): 3}, ())}).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    syncs = families[MetricName.SYNCS].samples
    assert any(s.labels == {"trigger": "update", "result": "updated"} and s.value == 2 for s in syncs)
    hist = {
        (s.name, s.labels.get("le"), s.labels["system"]): s.value
        for s in families["vmh_api_call_duration_seconds"].samples
    }
    assert hist[("vmh_api_call_duration_seconds_bucket", "0.1", "advoware")] == 2
    assert hist[("vmh_api_call_duration_seconds_bucket", "10.0", "espocrm")] == 0
    assert hist[("vmh_api_call_duration_seconds_count", None, "espocrm")] == 2
    assert families["vmh_queue_depth"].samples[0].value == 3


def test_labels_are_checked() -> None:
    with pytest.raises(ValueError):
        Metrics(fakeredis.FakeAsyncRedis()).inc(MetricName.SYNCS, trigger="x")


# --------------------------------------------------------------------------- alerts


class Told:
    def __init__(self) -> None:
        self.notices: list[tuple[str | None, str]] = []

    async def notify(self, record_id: str | None, message: str) -> bool:
        self.notices.append((record_id, message))
        return True


async def test_one_alert_per_condition_past_the_threshold_and_one_recovery(redis: Any) -> None:
    now = [datetime(2026, 7, 1, 10, 0, tzinfo=UTC)]
    told = Told()
    alerts = Alerts(redis, told, after=timedelta(minutes=30), clock=lambda: now[0])
    assert not await alerts.raise_condition(AlertCondition.system("advoware", credentials=False), "timeout")
    now[0] += timedelta(minutes=29)
    assert not await alerts.raise_condition(AlertCondition.system("advoware", credentials=False), "timeout")
    now[0] += timedelta(minutes=2)
    assert await alerts.raise_condition(AlertCondition.system("advoware", credentials=False), "timeout")
    for _ in range(3):
        assert not await alerts.raise_condition(
            AlertCondition.system("advoware", credentials=False), "timeout"
        )
    assert len(told.notices) == 1 and "Advoware ist seit" in told.notices[0][1]
    assert [a["name"] for a in await alerts.active()] == ["advoware_unreachable"]
    assert await alerts.clear_condition(AlertCondition.system("advoware", credentials=False))
    assert not await alerts.clear_condition(AlertCondition.system("advoware", credentials=False))
    assert len(told.notices) == 2 and "wieder erreichbar" in told.notices[1][1]
    assert await alerts.active() == []


async def test_a_short_outage_clears_silently_and_immediate_conditions_alert_at_once(redis: Any) -> None:
    told = Told()
    alerts = Alerts(redis, told, after=timedelta(minutes=30))
    await alerts.raise_condition(AlertCondition.system("espocrm", credentials=False), "x")
    assert not await alerts.clear_condition(AlertCondition.system("espocrm", credentials=False))
    assert await alerts.raise_condition(AlertCondition.record_failed("r1"), "Text", after=timedelta(0))
    assert told.notices == [("r1", "Text")]


# --------------------------------------------------------------------------- notices


async def test_notice_looks_up_the_user_name_once_and_posts_on_the_record(redis: Any) -> None:
    espo = FakeEspo()
    rid = espo.add({"name": "X"})
    notifier = Notifier(espo, redis, "u1", None)
    assert await notifier.notify(rid, "Bitte prüfen")
    assert await notifier.notify(rid, "Noch einmal")
    assert espo.notifications == [
        (rid, f"@{FAKE_USER_NAME} Bitte prüfen"),
        (rid, f"@{FAKE_USER_NAME} Noch einmal"),
    ]
    assert espo.calls["get_user"] == 1  # cached in Redis


async def test_override_name_and_a_deleted_record_goes_to_the_users_stream(redis: Any) -> None:
    espo = FakeEspo()
    notifier = Notifier(espo, redis, "u1", "anna")
    assert await notifier.notify("gone", "gelöscht")
    assert espo.notifications == [("u1", "@anna gelöscht")] and espo.calls["get_user"] == 0


async def test_an_undelivered_notice_waits_in_the_outbox_and_is_retried(
    redis: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    espo = FakeEspo()
    rid = espo.add({"name": "X"})
    espo.fail_next["notify"] = [UnavailableError("down", system="espocrm", status_code=503)]
    metrics = Metrics(redis)
    notifier = Notifier(espo, redis, "u1", None, metrics=metrics)
    assert not await notifier.notify(rid, "Konflikt")
    summary = await outbox_summary(redis)
    assert summary["waiting"] == 1 and summary["records"] == [rid] and "Konflikt" not in json.dumps(summary)
    assert await notifier.retry_pending("other") == 0
    assert await notifier.retry_pending(rid) == 1
    await metrics.flush()
    assert await redis.hlen(OUTBOX) == 0
    assert await counter_value(redis, MetricName.NOTICES, result="failed") == 1
    assert await counter_value(redis, MetricName.NOTICES, result="sent") == 1
    assert espo.notifications == [(rid, f"@{FAKE_USER_NAME} Konflikt")]
    assert rid in caplog.text and "Konflikt" not in caplog.text  # ids in logs, never the text


async def test_channel_check_names_what_is_missing(redis: Any) -> None:
    assert await Notifier(FakeEspo(), redis, None).check_channel() == [
        "ESPOCRM_NOTIFY_USER_ID is not set: nobody can be notified"
    ]

    class Forbidden(FakeEspo):
        async def get(self, entity: str, record_id: str) -> dict[str, Any]:
            raise AuthError("forbidden", system="espocrm", status_code=403)

    problems = await Notifier(Forbidden(), redis, "u1").check_channel()
    assert "ESPOCRM_NOTIFY_USER_NAME" in problems[0] and "read Users" in problems[0]
    assert not await Notifier(Forbidden(), redis, "u1").notify(None, "x")
    assert (await outbox_summary(redis))["waiting"] == 1


def test_conflict_text_is_german_and_names_record_field_and_both_values() -> None:
    label = record_label("r1", name="Jürgen Meier", betnr=7)
    text = conflict_text(label, [FieldConflict("last_name", "Meier", "Schulze")])
    assert "„Jürgen Meier“" in text and "Advoware-Nr. 7" in text and "Nachname" in text
    assert "EspoCRM „Meier“ übernommen" in text and "Advoware-Wert „Schulze“ überschrieben" in text


# --------------------------------------------------------------------------- health


def deps(redis: Any, espo: FakeEspo, advo: FakeAdvo) -> HealthDeps:
    return HealthDeps(
        redis=redis,
        espo=espo,
        advo=advo,
        notifier=Notifier(espo, redis, "u1"),
        sweep_overdue=timedelta(minutes=30),
    )


async def test_health_is_healthy_without_a_sweep_yet_and_fails_when_advoware_refuses(redis: Any) -> None:
    espo, advo = FakeEspo(), FakeAdvo()
    espo.add({"name": "X", "syncStatus": "permanently_failed"})
    report = await run_checks(deps(redis, espo, advo))
    assert report.healthy and report.checks["sweep"].state == "warn"
    assert report.checks["espocrm"].detail["records"]["permanently_failed"] == 1
    assert conditions(report)[AlertCondition.system("advoware", credentials=False)] is None
    advo.tokens.fail = AuthError("token refused", system="advoware", status_code=401)
    report = await run_checks(deps(redis, espo, advo))
    assert not report.healthy and report.checks["advoware"].detail["problem"] == "credentials"
    assert conditions(report)[AlertCondition.system("advoware", credentials=True)] == "401"


async def test_an_old_sweep_is_unhealthy(redis: Any) -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    await redis.set(keys.SWEEP_LAST, json.dumps({"at": old}))
    report = await run_checks(deps(redis, FakeEspo(), FakeAdvo()))
    assert not report.healthy and report.checks["sweep"].state == "fail"
    assert conditions(report)[AlertCondition(ConditionKind.SWEEP_OVERDUE)]


# --------------------------------------------------------------------------- field directions


def test_directions_parse_by_canonical_or_espocrm_name_and_refuse_nonsense() -> None:
    assert parse_directions("geburtsdatum:advoware, titel:both,phones:none") == {
        "birth_date": Direction.TO_ESPO,
        "title": Direction.BOTH,
        "phones": Direction.NONE,
    }
    assert effective_directions({"title": Direction.TO_ADVO})["title"] is Direction.TO_ADVO
    for bad in ("nofield:both", "titel", "titel:sideways", "beteiligterTyp:advoware"):
        with pytest.raises(ValueError):
            parse_directions(bad)


def _diff(a: Mapping[str, Any], b: Mapping[str, Any]) -> set[str]:
    return {k for k in set(a) | set(b) if a.get(k) != b.get(k)}


@pytest.mark.parametrize(
    ("direction", "espo", "advo", "to_advo", "to_espo", "merged"),
    [
        # Advoware is the source: its value wins, whichever side changed; never written to Advoware.
        (Direction.TO_ESPO, "E", "S", set(), {"f"}, "S"),
        (Direction.TO_ESPO, "S", "A", set(), {"f"}, "A"),
        (Direction.TO_ESPO, "E", "A", set(), {"f"}, "A"),
        # EspoCRM is the source.
        (Direction.TO_ADVO, "S", "A", {"f"}, set(), "S"),
        (Direction.TO_ADVO, "E", "A", {"f"}, set(), "E"),
        # Not synced: nothing is written, Advoware keeps its value.
        (Direction.NONE, "E", "A", set(), set(), "A"),
    ],
)
def test_one_way_fields_are_never_written_the_other_way(
    direction: Direction, espo: str, advo: str, to_advo: set[str], to_espo: set[str], merged: str
) -> None:
    plan = decide({"f": espo}, {"f": advo}, {"f": "S"}, diff=_diff, directions={"f": direction})
    assert plan.to_advo == to_advo and plan.to_espo == to_espo and plan.conflicts == ()
    assert plan.merged["f"] == merged


def test_two_way_fields_keep_the_merge_table() -> None:
    plan = decide(
        {"f": "E", "g": "x"},
        {"f": "A", "g": "x"},
        {"f": "S", "g": "x"},
        diff=_diff,
        directions={"g": Direction.NONE},
    )
    assert plan.to_advo == {"f"} and [c.field for c in plan.conflicts] == ["f"]


async def test_http_retries_and_sweep_durations_are_counted(redis: Any) -> None:
    from services.http.observe import set_observer

    m = Metrics(redis)
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise UnavailableError("busy", system="advoware", status_code=503)
        return "ok"

    async def no_sleep(_: float) -> None:
        return None

    set_observer(m)
    try:
        assert await default_retry(sleep=no_sleep).run(flaky, idempotent=True) == "ok"
    finally:
        set_observer(None)
    m.record(MetricName.SWEEP_DURATION, 42.0)
    await m.flush()
    families = {f.name: f for f in text_string_to_metric_families(render(await stored(redis), {}).decode())}
    assert [
        (s.labels, s.value) for s in families["vmh_retries"].samples if s.name == "vmh_retries_total"
    ] == [({"system": "advoware"}, 2.0)]
    sweep = {
        s.labels.get("le"): s.value
        for s in families["vmh_sweep_duration_seconds"].samples
        if s.name.endswith("_bucket")
    }
    assert sweep["30.0"] == 0 and sweep["60.0"] == 1


# --------------------------------------------------------------------------- the engine with the recorder


@pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")
async def test_every_sync_is_recorded_and_a_permanent_failure_alerts_once_and_recovers(
    world: World,
) -> None:
    from services.errors import ValidationError
    from services.sync.model import Trigger
    from tests.unit.test_engine import PERSON_ESPO

    espo, advo, engine = world.espo, world.advo, world.engine
    rid = espo.add(dict(PERSON_ESPO))
    advo.fail_next["create"] = [
        ValidationError("refused", system="advoware", status_code=400, reason="Pflichtfeld")
    ]
    await engine.sync_record(rid, Trigger.WEBHOOK_CREATE)
    await engine.sync_record(rid, Trigger.SWEEP)  # parked: no second notice
    failed = [m for _, m in espo.notifications if "endgültig fehlgeschlagen" in m]
    assert len(failed) == 1 and "Pflichtfeld" in failed[0]
    espo.edit(rid, syncStatus="pending_sync")
    assert (await engine.sync_record(rid, Trigger.WEBHOOK_UPDATE)).betnr is not None
    assert sum("wieder erfolgreich" in m for _, m in espo.notifications) == 1
    entries = await world.history.entries(rid)
    assert [e["result"] for e in entries] == ["created", "skipped", "permanently_failed"]
    assert "Pflichtfeld" in entries[-1]["error"]["reason"]
    await world.metrics.flush()
    assert (
        await counter_value(world.redis, MetricName.SYNCS, trigger="create", result="permanently_failed") == 1
    )


@pytest.mark.world(ESPOCRM_NOTIFY_USER_ID="u1")
async def test_an_excluded_record_is_never_written_and_its_delete_erases_its_history(
    world: World,
) -> None:
    from services.sync.model import Trigger
    from tests.unit.test_engine import PERSON_ESPO

    espo, advo, engine = world.espo, world.advo, world.engine
    rid = espo.add({**PERSON_ESPO, "syncStatus": "excluded"})
    for trigger in (Trigger.WEBHOOK_CREATE, Trigger.WEBHOOK_UPDATE, Trigger.SWEEP, Trigger.MANUAL):
        out = await engine.sync_record(rid, trigger)
        assert out.reason == "excluded by a person"
    assert not advo.records and not espo.updates
    assert len(await world.history.entries(rid)) == 4  # each decision recorded
    del espo.records[rid]
    out = await engine.handle_espo_delete(rid)
    assert out.result.value == "unlinked"
    # The record is gone from EspoCRM: the service forgets its copies, the history included.
    assert await world.history.entries(rid) == []


async def test_history_by_betnr_answers_404_for_an_unknown_and_409_for_an_ambiguous_betnr() -> None:
    from services.errors import OperationError
    from services.ops.monitor import history_request

    world = fake_world()
    rt = world.rt
    with pytest.raises(OperationError) as unknown:
        await history_request(rt, {"betnr": "424242"})
    assert unknown.value.status == 404 and "no EspoCRM record is linked to betnr 424242" in str(unknown.value)
    for _ in range(2):
        world.espo.add({"firstName": "Doppelt", "lastName": "Vorhanden", "betnr": 777})
    with pytest.raises(OperationError) as ambiguous:
        await history_request(rt, {"betnr": ["777", "1"]})  # a repeated parameter: the first counts
    assert ambiguous.value.status == 409 and "several EspoCRM records" in str(
        ambiguous.value
    )  # as the actions
    with pytest.raises(OperationError) as neither:
        await history_request(rt, {})
    assert neither.value.status == 400
