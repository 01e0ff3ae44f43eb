"""Links between the two systems: one party, one Advoware record, one EspoCRM record.

Two checks, both before anything is written to Advoware:

* **before every try of a create** (`Linker.before_create`; the first try, and every retry after a
  lost POST answer or a failed betnr write-back): the record's identity is looked up in the
  identity index (services/sync/identity_index.py), brought up to date by one Advoware listing
  first, and the candidates are judged by the identity rule (services/beteiligte/identity.py), as
  the backfill does:

  | candidates (STRONG / WEAK)                      | decision                                  |
  |-------------------------------------------------|-------------------------------------------|
  | index not built yet                             | wait (record stays pending_sync)          |
  | exactly one made by an earlier try of this      | link it as that try's party (`ours`): its |
  | record's create (its betnr, or created since    | baseline is what was sent, so edits since |
  | the intent and matching the identity)           | flow both ways (services/sync/create.py)  |
  | none                                            | create                                    |
  | exactly one STRONG (WEAK others allowed), it    | link: write its betnr, then the first     |
  | exists in Advoware and no other record holds it | sync rules (services/sync/decide.py)      |
  | one STRONG, already linked to another record    | hold (`conflict`): a duplicate in EspoCRM |
  | several STRONG, or only WEAK ones               | hold (`conflict`), note lists betNrs/rule |
  | a candidate answers 404 (deleted there)         | dropped from the index, not counted       |

  Every candidate is read from Advoware before deciding (usually none or one GET); a retry after
  a lost answer also reads what Advoware created since the intent (one listing). An operator's
  "create it anyway" (`ours_only`) links only a party an earlier try made, else creates.

* **before the first sync of a pair** (`Linker.unique_link`: no snapshot for this record and this
  betnr, e.g. a copied or typed-in betnr): one EspoCRM query for other records with that betnr.
  Another record holds it → hold this one (`conflict`), Advoware untouched, a note on both.

Both checks run under claims (services/sync/claims.py): the create holds its identity's claims
from before the check through the POST and the betnr write-back, and a betnr is claimed before
its "linked elsewhere?" query, so two records of one party never pass the check together.

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
from services.sync.claims import Claims, HeldClaims
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
    ours: bool = False  # the party an earlier try of this record's create made (a lost answer)


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


@dataclass(frozen=True)
class EarlierTry:
    """An earlier try of this record's create (its intent, services/sync/intents.py)."""

    betnr: int | None  # what its POST answered; None: the answer was lost (or never sent)
    created_since_local: str  # Advoware local time: a party created since may be that try's
    sent: Mapping[str, Any] | None  # the content it POSTed (the record may have been renamed since)

    def made(self, betnr: int, row: Mapping[str, Any], tz: ZoneInfo) -> bool:
        """Did that try create this party? The stamps compared as instants (`tz`: Advoware's
        zone): a stamp that carries an offset or `Z` is converted, not read as local time."""
        from services.advoware.timezone import local_to_utc

        if self.betnr is not None:
            return betnr == self.betnr
        created = row.get("angelegtAm") or row.get("geaendertAm")
        return bool(created) and local_to_utc(str(created), tz) >= local_to_utc(self.created_since_local, tz)


class Linker:
    def __init__(
        self, *, espo: EspoApi, advo: AdvowareApi, index: IdentityIndex, tz: ZoneInfo, claims: Claims
    ) -> None:
        self.espo = espo
        self.advo = advo
        self.index = index
        self.tz = tz
        self.claims = claims

    async def before_create(
        self,
        record_id: str,
        content: Mapping[str, Any],
        *,
        earlier: EarlierTry | None = None,
        held: HeldClaims | None = None,
        ours_only: bool = False,
    ) -> LinkDecision:
        """Create, link to an existing party, hold for a person, or wait for the index. `held`:
        the caller's claims, to which the betnr about to be linked is added before the
        "linked elsewhere?" query."""
        waiting = await self._bring_index_up_to_date(earlier)
        if waiting is not None:
            return waiting
        records, candidates = await self._read_candidates(content, earlier)
        ours = [b for b, row in records.items() if earlier is not None and earlier.made(b, row, self.tz)]
        if len(ours) == 1:
            decision = LinkDecision(
                Action.LINK, betnr=ours[0], rule="created by an earlier try of this create", ours=True
            )
        elif ours_only:
            return LinkDecision(Action.CREATE)
        else:
            decision = choose(candidates)
        if decision.action is not Action.LINK:
            return decision
        assert decision.betnr is not None
        if held is not None:
            await held.add_betnr(decision.betnr)
        owners = await self.other_holders(record_id, decision.betnr)
        if owners and ours_only:
            return LinkDecision(Action.CREATE)
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

    async def _bring_index_up_to_date(self, earlier: EarlierTry | None) -> LinkDecision | None:
        """A fresh Advoware read into the index; a WAIT decision while it is not built yet."""
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
        if earlier is not None and earlier.betnr is None:
            # The earlier POST's answer was lost: what Advoware created since it was sent, whatever
            # the index's own clock says (one listing call, few rows).
            since = earlier.created_since_local
            await self.index.upsert(
                [row async for row in self.advo.iter_beteiligte(changed_since_local=since)]
            )
        return None

    async def _read_candidates(
        self, content: Mapping[str, Any], earlier: EarlierTry | None
    ) -> tuple[dict[int, dict[str, Any]], list[tuple[int, Match]]]:
        """The candidates of the record's identity (and of what an earlier try sent), each read
        from Advoware: the index does not see deletions, and a link needs the party as it is."""
        found: dict[int, Match] = {}
        identities = [identity_of_content(content)]
        if earlier is not None and earlier.sent:
            identities.append(identity_of_content(earlier.sent))
        for identity in identities:
            for betnr, match in await self.index.candidates(identity):
                if betnr not in found or match.strength > found[betnr].strength:
                    found[betnr] = match
        if earlier is not None and earlier.betnr is not None:
            found.setdefault(earlier.betnr, Match(Strength.STRONG, "created by an earlier try"))
        records: dict[int, dict[str, Any]] = {}
        candidates = []
        for betnr in sorted(found):
            try:
                records[betnr] = await self.advo.get_beteiligter(betnr)
            except NotFoundError:
                log.info("identity index: betnr %s is gone from Advoware; dropped", betnr)
                await self.index.remove(betnr)
                continue
            candidates.append((betnr, found[betnr]))
        return records, candidates

    async def unique_link(self, record_id: str, betnr: int) -> LinkDecision:
        """Before the first sync of (record, betnr): is that betnr already another record's link?
        Asked under the betnr's claim: a create linking the same betnr right now has either
        written it to EspoCRM before this query or queries after this record's betnr is seen."""
        async with self.claims.hold(betnrs=[betnr]):
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
        """Other EspoCRM records carrying `betnr`."""
        return [i for i in await records_with_betnr(self.espo, betnr) if i != record_id]


async def records_with_betnr(espo: EspoApi, betnr: int) -> list[str]:
    """The one betnr -> record lookup: the ids of the EspoCRM records carrying `betnr`, sorted
    (one EspoCRM query: EspoCRM is the truth about links; a snapshot may be lost or belong to a
    record relinked since). The betnr uniqueness check, the operators' tools and the backfill
    all ask here."""
    where = [{"type": "equals", "attribute": "betnr", "value": betnr}]
    return sorted({str(row["id"]) async for row in espo.iterate(ENTITY, where=where, select="id")})
