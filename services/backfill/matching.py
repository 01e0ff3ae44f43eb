"""Matching: sort both databases into linked-by-betnr, linked-by-identity, ambiguous,
EspoCRM-only, Advoware-only and conflicts (pure, no I/O; the rule is docs/backfill.md).

`match_records` runs four small steps, each a function below:

1. `_link_by_betnr`: an EspoCRM betnr naming an existing Advoware record is a link; one naming
   no record, or named by several EspoCRM records, is a conflict (reported, not touched).
2. `_identity_edges` + `_link_mutual`: the rest by identity. A link needs exactly one STRONG
   candidate on each side (mutual).
3. `_group_candidates` + `_group_duplicates`: any other candidate (several, only WEAK ones, or
   one already linked) makes the records ambiguous, and so do STRONG matches within one system
   among records without a counterpart (neither is copied twice).
4. `_collect`: ambiguous groups; records without any candidate are EspoCRM-only / Advoware-only.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from services.beteiligte.identity import (
    Identity,
    Match,
    Strength,
    compare,
    identity_of_advo,
    identity_of_espo,
    lookup_keys,
)
from services.sync.model import as_int


@dataclass(frozen=True)
class Link:
    espo_id: str
    betnr: int
    rule: str


@dataclass
class Ambiguity:
    """Records that might be the same party: nothing is linked or created for them."""

    espo_ids: list[str]
    betnrs: list[int]
    reasons: list[str]


@dataclass
class LinkConflict:
    """A betnr in EspoCRM that cannot be a link as it stands."""

    betnr: int
    espo_ids: list[str]
    reason: str


@dataclass
class MatchReport:
    linked_by_betnr: list[Link] = field(default_factory=list)
    linked_by_identity: list[Link] = field(default_factory=list)
    ambiguous: list[Ambiguity] = field(default_factory=list)
    espo_only: list[str] = field(default_factory=list)  # to create in Advoware
    advo_only: list[int] = field(default_factory=list)  # report (EspoCRM only on request)
    conflicts: list[LinkConflict] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "linked_by_betnr": len(self.linked_by_betnr),
            "linked_by_identity": len(self.linked_by_identity),
            "ambiguous": len(self.ambiguous),
            "ambiguous_espocrm_records": sum(len(a.espo_ids) for a in self.ambiguous),
            "espo_only": len(self.espo_only),
            "advo_only": len(self.advo_only),
            "conflicts": len(self.conflicts),
        }

    def ambiguous_espo_ids(self) -> dict[str, Ambiguity]:
        return {i: a for a in self.ambiguous for i in a.espo_ids}


class _Groups:
    """Union-find over node names ("e:<id>", "a:<betnr>")."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


Edges = dict[tuple[str, int], Match]


@dataclass
class _Work:
    """Both databases with their identities, and what the steps found so far."""

    espo: dict[str, Mapping[str, Any]]
    advo: dict[int, Mapping[str, Any]]
    e_id: dict[str, Identity]
    a_id: dict[int, Identity]
    report: MatchReport = field(default_factory=MatchReport)
    linked_espo: dict[str, int] = field(default_factory=dict)  # by betnr
    free_espo: set[str] = field(default_factory=set)  # without betnr
    free_advo: set[int] = field(default_factory=set)  # named by no EspoCRM betnr
    resolved: set[str] = field(default_factory=set)  # nodes linked by betnr or identity
    cand_e: dict[str, list[tuple[int, Match]]] = field(default_factory=lambda: defaultdict(list))
    cand_a: dict[int, list[tuple[str, Match]]] = field(default_factory=lambda: defaultdict(list))
    groups: _Groups = field(default_factory=_Groups)
    reasons: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def match_records(
    espo_rows: Iterable[Mapping[str, Any]],
    advo_rows: Iterable[Mapping[str, Any]],
    *,
    espo_identities: Mapping[str, Identity] | None = None,
    advo_identities: Mapping[int, Identity] | None = None,
) -> MatchReport:
    """Sort both databases into the backfill's categories (see the module docstring)."""
    w = _index(espo_rows, advo_rows, espo_identities, advo_identities)
    _link_by_betnr(w)
    edges = _identity_edges(w)
    _link_mutual(w, edges)
    _group_candidates(w, edges)
    _group_duplicates(w)
    _collect(w)
    return w.report


def _index(
    espo_rows: Iterable[Mapping[str, Any]],
    advo_rows: Iterable[Mapping[str, Any]],
    espo_identities: Mapping[str, Identity] | None,
    advo_identities: Mapping[int, Identity] | None,
) -> _Work:
    espo = {str(r["id"]): r for r in espo_rows}
    advo: dict[int, Mapping[str, Any]] = {}
    for r in advo_rows:
        b = as_int(r.get("betNr"))
        if b is not None:
            advo[b] = r
    e_id = dict(espo_identities or {})
    a_id = dict(advo_identities or {})
    for rid, row in espo.items():
        if rid not in e_id:
            e_id[rid] = identity_of_espo(row)
    for b, row in advo.items():
        if b not in a_id:
            a_id[b] = identity_of_advo(row)
    return _Work(espo=espo, advo=advo, e_id=e_id, a_id=a_id)


def _link_by_betnr(w: _Work) -> None:
    by_betnr: dict[int, list[str]] = defaultdict(list)
    for rid, row in w.espo.items():
        b = as_int(row.get("betnr"))
        if b is None:
            w.free_espo.add(rid)
        else:
            by_betnr[b].append(rid)
    for b, ids in sorted(by_betnr.items()):
        if b not in w.advo:
            w.report.conflicts.append(LinkConflict(b, sorted(ids), "betnr not found in Advoware"))
        elif len(ids) > 1:
            w.report.conflicts.append(LinkConflict(b, sorted(ids), "betnr used by several EspoCRM records"))
        else:
            w.report.linked_by_betnr.append(Link(ids[0], b, "betnr"))
            w.linked_espo[ids[0]] = b
            w.resolved.update({f"e:{ids[0]}", f"a:{b}"})
    claimed = {b for b in by_betnr if b in w.advo}  # conflicting ones stay out of identity matching
    w.free_advo = {b for b in w.advo if b not in claimed}


def _identity_edges(w: _Work) -> Edges:
    """Every pair of records that `compare` finds related, looked up by bucket (linear cost)."""
    buckets: dict[str, tuple[list[str], list[int]]] = defaultdict(lambda: ([], []))
    for rid in w.espo:
        if w.e_id[rid].usable:
            for bk in lookup_keys(w.e_id[rid]):
                buckets[bk][0].append(rid)
    for b in w.advo:
        if w.a_id[b].usable:
            for bk in lookup_keys(w.a_id[b]):
                buckets[bk][1].append(b)
    edges: Edges = {}
    for e_ids, a_ids in buckets.values():
        for rid in e_ids:
            for b in a_ids:
                if (rid, b) in edges:
                    continue
                m = compare(w.e_id[rid], w.a_id[b])
                if m:
                    edges[(rid, b)] = m
    for (rid, b), m in edges.items():
        if w.linked_espo.get(rid) == b:
            continue  # the pair itself
        w.cand_e[rid].append((b, m))
        w.cand_a[b].append((rid, m))
    return edges


def _strong(cands: Sequence[tuple[Any, Match]]) -> list[Any]:
    return [n for n, m in cands if m.strength is Strength.STRONG]


def _link_mutual(w: _Work, edges: Edges) -> None:
    """Link a free EspoCRM record to its only STRONG candidate if that one has only it."""
    for rid in sorted(w.free_espo):
        s = _strong(w.cand_e[rid])
        if len(s) == 1 and s[0] in w.free_advo:
            b = s[0]
            if _strong(w.cand_a[b]) == [rid]:
                w.report.linked_by_identity.append(Link(rid, b, edges[(rid, b)].rule))
                w.resolved.update({f"e:{rid}", f"a:{b}"})


def _group_candidates(w: _Work, edges: Edges) -> None:
    """Group the records of every open candidate pair, with the reason each is unclear."""
    for (rid, b), m in edges.items():
        if w.linked_espo.get(rid) == b or (f"e:{rid}" in w.resolved and f"a:{b}" in w.resolved):
            continue
        w.groups.union(f"e:{rid}", f"a:{b}")
        for node, other in ((f"e:{rid}", f"a:{b}"), (f"a:{b}", f"e:{rid}")):
            if node in w.resolved:
                continue
            if other in w.resolved:
                w.reasons[node].add(f"candidate already linked ({m.rule})")
            elif m.strength is Strength.WEAK:
                w.reasons[node].add(m.rule)
            else:
                w.reasons[node].add(f"several candidates ({m.rule})")


def _duplicates(nodes: Iterable[Any], ident: Mapping[Any, Identity]) -> list[tuple[Any, Any, Match]]:
    """STRONG matches among records of one system (bucketed by name)."""
    same: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for n in nodes:
        if ident[n].usable:
            same[(ident[n].kind, ident[n].name)].append(n)
    out: list[tuple[Any, Any, Match]] = []
    for members in same.values():
        members.sort(key=str)
        for i, x in enumerate(members):
            for y in members[i + 1 :]:
                m = compare(ident[x], ident[y])
                if m.strength is Strength.STRONG:
                    out.append((x, y, m))
    return out


def _group_duplicates(w: _Work) -> None:
    """Duplicates within one system, among records without any counterpart."""
    sides: tuple[tuple[str, list[Any], Mapping[Any, Identity]], ...] = (
        ("e", [i for i in w.free_espo if not w.cand_e[i]], w.e_id),
        ("a", [b for b in w.free_advo if not w.cand_a[b]], w.a_id),
    )
    for side, nodes, ident in sides:
        system = "EspoCRM" if side == "e" else "Advoware"
        for x, y, m in _duplicates(nodes, ident):
            w.groups.union(f"{side}:{x}", f"{side}:{y}")
            w.reasons[f"{side}:{x}"].add(f"duplicate within {system} ({m.rule})")
            w.reasons[f"{side}:{y}"].add(f"duplicate within {system} ({m.rule})")


def _collect(w: _Work) -> None:
    components: dict[str, list[str]] = defaultdict(list)
    for node in list(w.groups.parent):
        components[w.groups.find(node)].append(node)
    ambiguous_nodes: set[str] = set()
    for members in components.values():
        open_nodes = [n for n in members if n not in w.resolved and w.reasons.get(n)]
        if not open_nodes:
            continue
        ambiguous_nodes.update(open_nodes)
        w.report.ambiguous.append(
            Ambiguity(
                espo_ids=sorted(n[2:] for n in open_nodes if n.startswith("e:")),
                betnrs=sorted(int(n[2:]) for n in members if n.startswith("a:")),
                reasons=sorted({r for n in open_nodes for r in w.reasons[n]}),
            )
        )
    w.report.ambiguous.sort(key=lambda a: (a.espo_ids, a.betnrs))
    done = w.resolved | ambiguous_nodes
    w.report.espo_only = sorted(i for i in w.free_espo if f"e:{i}" not in done)
    w.report.advo_only = sorted(b for b in w.free_advo if f"a:{b}" not in done)
    w.report.linked_by_identity.sort(key=lambda link: link.espo_id)
