"""The alert conditions (services/conditions.py): typed where they are raised, their stored names
unchanged (Redis holds conditions raised by the previous version), a text for every kind."""

from __future__ import annotations

from services.conditions import AlertCondition, ConditionKind
from services.ops.alerts import TEXTS
from services.sync.deletions import CONDITION


def test_names_are_what_redis_already_holds() -> None:
    assert AlertCondition.system("advoware", credentials=False).name == "advoware_unreachable"
    assert AlertCondition.system("advoware", credentials=True).name == "advoware_credentials"
    assert AlertCondition.system("espocrm", credentials=False).name == "espocrm_unreachable"
    assert AlertCondition.system("espocrm", credentials=True).name == "espocrm_credentials"
    assert AlertCondition(ConditionKind.SWEEP_OVERDUE).name == "sweep_overdue"
    assert CONDITION.name == "advoware_deletions_held"
    failed = AlertCondition.record_failed("r1")
    assert failed.name == "record_failed:r1" and failed.subject == "r1"
    assert failed == AlertCondition.record_failed("r1") != AlertCondition.record_failed("r2")


def test_every_kind_has_its_alert_and_recovery_text() -> None:
    assert set(TEXTS) == set(ConditionKind)
