"""The alert conditions: what can be wrong long enough to tell a person (services/ops/alerts.py
sends one notice when a condition starts to matter and one when it is over). Who detects one -
the circuit breakers and the deletion guard (services/sync/), the health watch and the sync
recorder (services/ops/) - names it here. Imports nothing of the project.

A condition is a kind and, for a record's condition, its subject (the EspoCRM id); its `name`
(`advoware_unreachable`, `record_failed:<id>`) is how Redis keeps it (services/store/keys.py
`alert_condition`, the active set) and how `status` shows it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum


class ConditionKind(StrEnum):
    ESPOCRM_UNREACHABLE = "espocrm_unreachable"
    ESPOCRM_CREDENTIALS = "espocrm_credentials"
    ADVOWARE_UNREACHABLE = "advoware_unreachable"
    ADVOWARE_CREDENTIALS = "advoware_credentials"
    SWEEP_OVERDUE = "sweep_overdue"
    DELETIONS_HELD = "advoware_deletions_held"  # the bulk-404 guard holds deletions for a person
    RECORD_FAILED = "record_failed"  # subject: the record that failed permanently


@dataclass(frozen=True)
class AlertCondition:
    kind: ConditionKind
    subject: str | None = None  # the EspoCRM id of a record's condition

    @property
    def name(self) -> str:
        return self.kind.value if self.subject is None else f"{self.kind.value}:{self.subject}"

    @classmethod
    def system(cls, system: str, *, credentials: bool) -> AlertCondition:
        """A system's condition: unreachable, or refusing the service's credentials."""
        return cls(ConditionKind(f"{system}_{'credentials' if credentials else 'unreachable'}"))

    @classmethod
    def record_failed(cls, record_id: str) -> AlertCondition:
        return cls(ConditionKind.RECORD_FAILED, record_id)


# (condition, detail, active) -> None: an alert condition starts (active) or ends. The
# composition root maps it to the ops alerts (services/runtime.py).
Alert = Callable[[AlertCondition, str, bool], Awaitable[None]]
