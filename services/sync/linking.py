"""Links between the two systems: one party, one Advoware record, one EspoCRM record.

Two checks, both before anything is written to Advoware:

* **before every create** (`Linker.before_create`): the record's identity is looked up in the
  identity index (services/sync/identity_index.py; Redis only) and the candidates are judged by the
  identity rule (services/beteiligte/identity.py), as the backfill does:

  | candidates (STRONG / WEAK)                      | decision                                  |
  |-------------------------------------------------|-------------------------------------------|
  | index not built yet                             | wait (record stays pending_sync)          |
  | none                                            | create                                    |
  | exactly one STRONG (WEAK others allowed), it    | link: write its betnr, then the first     |
  | exists in Advoware and no other record holds it | sync rules (services/sync/decide.py)      |
  | one STRONG, already linked to another record    | hold (`conflict`): a duplicate in EspoCRM |
  | several STRONG, or only WEAK ones               | hold (`conflict`), note lists betNrs/rule |
  | a candidate answers 404 (deleted there)         | dropped from the index, not counted       |

  Every candidate is read from Advoware before deciding (usually none or one GET).

* **before the first sync of a pair** (`Linker.unique_link`: no snapshot for this record and this
  betnr, e.g. a copied or typed-in betnr): one EspoCRM query for other records with that betnr.
  Another record holds it → hold this one (`conflict`), Advoware untouched, a note on both.

The decisions carry the German text for `syncErrorMessage` and the notes; the caller writes the
status through `states.transition` (services/sync/outcomes.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from services.beteiligte.identity import Match, Strength, identity_of_content
from services.errors import NotFoundError
from services.sync.identity_index import IdentityIndex
from services.sync.model import ENTITY
from services.sync.ports import AdvowareApi, EspoApi

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

# How long a create that finds no identity index spends building it before it waits.
INLINE_BUILD_SECONDS = 20.0
# A held record's syncErrorMessage starts with this (the ops docs and `status` refer to it).
HOLD_PREFIX = "Verknüpfung:"


class Action(StrEnum):
    CREATE = "create"
    LINK = "link"
    HOLD = "hold"
    WAIT = "wait"


@dataclass(frozen=True)
class LinkDecision:
    action: Action
    betnr: int | None = None
    advo: dict[str, Any] | None = None  # the party as read, for a link
    rule: str = ""  # what matched (a link), for the log
    message: str = ""  # German, for syncErrorMessage and the note (hold)
    related: tuple[str, ...] = ()  # other EspoCRM records the note goes to as well
    candidates: tuple[tuple[int, str], ...] = field(default=())


def choose(candidates: Sequence[tuple[int, Match]]) -> LinkDecision:
    """The pure part of the table above (before the Advoware read and the ownership check)."""
    strong = [(b, m) for b, m in candidates if m.strength is Strength.STRONG]
    listed = tuple(sorted((b, m.rule) for b, m in candidates))
    if not candidates:
        return LinkDecision(Action.CREATE)
    if len(strong) == 1:
        betnr, match = strong[0]
        return LinkDecision(Action.LINK, betnr=betnr, rule=match.rule, candidates=listed)
    what = "mehrere mögliche Treffer" if strong else "nur unsichere Treffer"
    return LinkDecision(Action.HOLD, message=_hold_text(what, listed), candidates=listed)


def _hold_text(what: str, listed: Sequence[tuple[int, str]]) -> str:
    shown = "; ".join(f"Nr. {b} ({rule})" for b, rule in listed)
    return (
        f"{HOLD_PREFIX} nicht in Advoware angelegt – {what} für denselben Beteiligten: {shown}. "
        "Bitte die richtige Advoware-Nr. in betnr eintragen (oder `relink`); "
        "ist es wirklich ein neuer Beteiligter: `python -m services.ops sync <id>` legt ihn an."
    )


class Linker:
    def __init__(self, *, espo: EspoApi, advo: AdvowareApi, index: IdentityIndex, tz: ZoneInfo) -> None:
        self.espo = espo
        self.advo = advo
        self.index = index
        self.tz = tz

    async def before_create(self, record_id: str, content: Mapping[str, Any]) -> LinkDecision:
        """Create, link to an existing party, hold for a person, or wait for the index."""
        if not await self.index.ready():
            # The first create after a start with an empty Redis builds the index itself (a few
            # seconds for a small firm); a large one is finished by the next runs and the cron.
            state = await self.index.build(self.advo, budget_seconds=INLINE_BUILD_SECONDS)
            if not state.ready:
                return LinkDecision(
                    Action.WAIT, message=f"create waits for the identity index: {state.describe()}"
                )
        else:
            # Parties entered in Advoware since the last poll (one listing call, few rows).
            await self.index.refresh(self.advo, self.tz)
        records: dict[int, dict[str, Any]] = {}
        candidates = []
        # Each candidate is read (usually none or one): the index does not see deletions.
        for betnr, match in await self.index.candidates(identity_of_content(content)):
            try:
                records[betnr] = await self.advo.get_beteiligter(betnr)
            except NotFoundError:
                log.info("identity index: betnr %s is gone from Advoware; dropped", betnr)
                await self.index.remove(betnr)
                continue
            candidates.append((betnr, match))
        decision = choose(candidates)
        if decision.action is not Action.LINK:
            return decision
        assert decision.betnr is not None
        owners = await self.other_holders(record_id, decision.betnr)
        if owners:
            return LinkDecision(
                Action.HOLD,
                betnr=decision.betnr,
                message=(
                    f"{HOLD_PREFIX} nicht in Advoware angelegt – derselbe Beteiligte existiert dort schon "
                    f"(Nr. {decision.betnr}, {decision.rule}) und ist mit dem EspoCRM-Datensatz "
                    f"{', '.join(owners)} verknüpft: vermutlich ein Duplikat in EspoCRM."
                ),
                related=tuple(owners),
                candidates=decision.candidates,
            )
        return replace(decision, advo=records[decision.betnr])

    async def unique_link(self, record_id: str, betnr: int) -> LinkDecision:
        """Before the first sync of (record, betnr): is that betnr already another record's link?"""
        owners = await self.other_holders(record_id, betnr)
        if not owners:
            return LinkDecision(Action.LINK, betnr=betnr)
        return LinkDecision(
            Action.HOLD,
            betnr=betnr,
            message=(
                f"{HOLD_PREFIX} die Advoware-Nr. {betnr} ist schon mit dem EspoCRM-Datensatz "
                f"{', '.join(owners)} verknüpft (kopiert?). Advoware wurde nicht geändert. Bitte die "
                "richtige Nr. eintragen oder betnr leeren."
            ),
            related=tuple(owners),
        )

    async def other_holders(self, record_id: str, betnr: int) -> list[str]:
        """Other EspoCRM records carrying `betnr` (one EspoCRM query: EspoCRM is the truth about
        links; a snapshot may be lost or belong to a record relinked since)."""
        where = [{"type": "equals", "attribute": "betnr", "value": betnr}]
        holders = {str(row["id"]) async for row in self.espo.iterate(ENTITY, where=where, select="id")}
        return sorted(holders - {record_id})
