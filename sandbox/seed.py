"""Deterministic demo data (random.Random(seed)) and fast synthetic linked pairs for benchmarks.

A *party* is one real-world Beteiligter (sandbox/parties.py); it becomes an EspoCRM record, an
Advoware record, or both (a linked pair: EspoCRM ``betnr`` == Advoware ``betNr``). The manifest
says which is which. The order of the random draws is part of the data: keep it when editing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox import config as cfg
from sandbox.parties import (
    BASE_TIME,
    FIRST_NAMES,
    LAST_NAMES,
    SALUTATION_TO_ANREDE,
    Party,
    advo_dt,
    advo_record,
    espo_dt,
    espo_id,
    espo_record,
    make_company,
    make_person,
    phone_number,
    slug,
)

# The one field each linked-but-different demo pair differs in ("side:field"; side changed last).
DEMO_DIFFS = ["advo:titel", "advo:phone", "advo:name", "espo:email", "espo:registergericht", "advo:zusatz"]


@dataclass
class SeedData:
    espo: list[dict[str, Any]]
    advo: list[dict[str, Any]]
    next_betnr: int
    manifest: dict[str, Any]


def build_seed(
    seed: int = 42,
    *,
    demo: bool = True,
    records: int = 0,
    tz: str = "Europe/Berlin",
    first_betnr: int = 100001,
    human: tuple[str, str] = ("6650000000000hum1", "anna.admin"),
    api: tuple[str, str] = ("6650000000000api1", "sync-api"),
) -> SeedData:
    b = _Builder(random.Random(seed), tz, human, api, first_betnr)
    if demo:
        b.demo()
    if records:
        b.betnr = _synthetic(records, b.rng, b.espo, b.advo, b.betnr, tz, api)
        b.manifest["synthetic"] = records
    return SeedData(espo=b.espo, advo=b.advo, next_betnr=b.betnr, manifest=b.manifest)


def seed_for(
    config: cfg.SandboxConfig, seed: int | None = None, records: int | None = None, demo: bool | None = None
) -> SeedData:
    """The data both simulators start from: the configured seed, unless a reset overrides a part."""
    return build_seed(
        config.seed if seed is None else seed,
        demo=config.demo if demo is None else demo,
        records=config.records if records is None else records,
        tz=config.advo_timezone,
        first_betnr=cfg.ADVO_FIRST_BETNR,
    )


@dataclass
class _Builder:
    rng: random.Random
    tz: str
    human: tuple[str, str]
    api: tuple[str, str]
    betnr: int
    espo: list[dict[str, Any]] = field(default_factory=list)
    advo: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] = field(
        default_factory=lambda: {
            "linked_equal": [],
            "linked_diff": [],
            "espo_only": [],
            "advo_only": [],
            "synthetic": 0,
        }
    )
    n: int = 0

    def next_id(self, when: datetime) -> str:
        self.n += 1
        return espo_id(self.rng, when, self.n)

    def next_betnr(self) -> int:
        bn, self.betnr = self.betnr, self.betnr + 1
        return bn

    def demo(self) -> None:
        """39 hand-made parties: 20 linked and equal, 6 linked with one difference, 7 only in
        EspoCRM, the rest only in Advoware."""
        parties: list[Party] = []
        for i in range(22):
            parties.append(make_person(self.rng, f"p{i}", i))
        for i in range(17):
            parties.append(make_company(self.rng, f"c{i}", i))
        self.rng.shuffle(parties)
        last_sync = BASE_TIME - timedelta(days=2)
        for i, p in enumerate(parties[:20]):
            self.linked_equal(p, last_sync, phone_formatting_only=i == 0)
        for p, what in zip(parties[20:26], DEMO_DIFFS, strict=True):
            self.linked_diff(p, last_sync, what)
        for p in parties[26:33]:
            self.espo_only(p)
        for p in parties[33:]:
            self.advo_only(p)

    def linked_equal(self, p: Party, last_sync: datetime, phone_formatting_only: bool) -> None:
        bn = self.next_betnr()
        rid = self.next_id(p.created)
        e = espo_record(
            p, rid, betnr=bn, sync_status="clean", last_sync=last_sync, modified=last_sync, user=self.api
        )
        a = advo_record(p, bn, modified=last_sync - timedelta(seconds=5), tz=self.tz)
        if phone_formatting_only and a["kommunikation"]:
            for k in a["kommunikation"]:
                if k["kommKz"] in (1, 3, 6) and k["tlf"].startswith("+49 "):
                    k["tlf"] = "0" + k["tlf"][4:].replace(" ", "")
                    break
        self.espo.append(e)
        self.advo.append(a)
        note = "phone formatting only" if phone_formatting_only else None
        self.manifest["linked_equal"].append({"id": rid, "betNr": bn, "name": e["name"], "note": note})

    def linked_diff(self, p: Party, last_sync: datetime, what: str) -> None:
        """Linked, one field changed on one side since the last sync."""
        bn = self.next_betnr()
        rid = self.next_id(p.created)
        side, _field = what.split(":")
        changed = last_sync + timedelta(hours=self.rng.randint(2, 30))
        e = espo_record(
            p,
            rid,
            betnr=bn,
            sync_status="clean",
            last_sync=last_sync,
            modified=changed if side == "espo" else last_sync,
            user=self.api,
        )
        advo_modified = changed if side == "advo" else last_sync - timedelta(seconds=5)
        a = advo_record(p, bn, modified=advo_modified, tz=self.tz)
        if side == "advo":
            self._change_advo(p, a, what)
        else:
            self._change_espo(p, e, what)
        self.espo.append(e)
        self.advo.append(a)
        self.manifest["linked_diff"].append({"id": rid, "betNr": bn, "name": e["name"], "changed": what})

    def _change_advo(self, p: Party, a: dict[str, Any], what: str) -> None:
        if what == "advo:titel":
            a["titel"] = "Dr." if a["titel"] != "Dr." else "Prof. Dr."
        elif what == "advo:phone":
            a["kommunikation"].append(
                {
                    "kommKz": 3,
                    "tlf": phone_number(self.rng, "030", mobile=True),
                    "bemerkung": "neu",
                    "online": False,
                }
            )
        elif what == "advo:name":
            a["name"] = (a["name"] or "") + "-Löwenstein" if p.typ == "Person" else a["name"] + " i.L."
        elif what == "advo:zusatz":
            a["zusatz"] = "Insolvenzverwalter: RA Dr. Stößel"

    def _change_espo(self, p: Party, e: dict[str, Any], what: str) -> None:
        if what == "espo:email":
            extra = f"neu.{slug(p.display_name)[:12]}@example.net"
            e["emailAddressData"].insert(
                0,
                {"emailAddress": extra, "lower": extra, "primary": True, "optOut": False, "invalid": False},
            )
            for item in e["emailAddressData"][1:]:
                item["primary"] = False
            e["emailAddress"] = extra
        elif what == "espo:registergericht":
            e["registergericht"] = (
                "Amtsgericht Köln" if e["registergericht"] != "Amtsgericht Köln" else "Amtsgericht Bonn"
            )
        e["syncStatus"] = "dirty"
        e["modifiedById"], e["modifiedByName"] = self.human

    def espo_only(self, p: Party) -> None:
        """Only in EspoCRM (no betnr yet)."""
        rid = self.next_id(p.created)
        e = espo_record(
            p,
            rid,
            betnr=None,
            sync_status="pending_sync",
            last_sync=None,
            modified=p.created + timedelta(days=1),
            user=self.human,
        )
        self.espo.append(e)
        self.manifest["espo_only"].append({"id": rid, "name": e["name"]})

    def advo_only(self, p: Party) -> None:
        bn = self.next_betnr()
        a = advo_record(p, bn, modified=p.created + timedelta(days=3), tz=self.tz)
        self.advo.append(a)
        self.manifest["advo_only"].append({"betNr": bn, "name": a["name"]})


def _synthetic(
    count: int,
    rng: random.Random,
    espo: list[dict[str, Any]],
    advo: list[dict[str, Any]],
    betnr: int,
    tz: str,
    api: tuple[str, str],
) -> int:
    """N linked, equal pairs; cheap enough for 10,000+ (no per-record zoneinfo work)."""
    created = BASE_TIME - timedelta(days=10)
    stamp_espo = espo_dt(created)
    stamp_advo = advo_dt(created, tz)
    seconds = int(created.timestamp())
    firsts = [f for f, _s in FIRST_NAMES]
    sal = dict(FIRST_NAMES)
    for i in range(count):
        first = firsts[i % len(firsts)]
        pair = _SyntheticPair(
            betnr=betnr + i,
            first=first,
            last=f"{LAST_NAMES[(i // len(firsts)) % len(LAST_NAMES)]}-{i:06d}",
            salutation=sal[first],
            mail=f"{slug(first)}.{i:06d}@bench.example.org",
            phone=f"+49 30 {1000000 + i}",
        )
        rid = f"{seconds:08x}{(i + 0x80000) % 0x100000:05x}{rng.getrandbits(16):04x}"
        espo.append(pair.espo(rid, stamp_espo, api))
        advo.append(pair.advo(stamp_advo))
    return betnr + count


@dataclass(frozen=True)
class _SyntheticPair:
    betnr: int
    first: str
    last: str
    salutation: str
    mail: str
    phone: str

    def espo(self, rid: str, stamp: str, api: tuple[str, str]) -> dict[str, Any]:
        return {
            "id": rid,
            "name": f"{self.first} {self.last}",
            "deleted": False,
            "salutationName": self.salutation,
            "firstName": self.first,
            "lastName": self.last,
            "beteiligterTyp": "Person",
            "titel": None,
            "geburtsdatum": None,
            "rechtsform": "",
            "handelsregisterNummer": None,
            "registergericht": None,
            "emailAddress": self.mail,
            "phoneNumber": self.phone,
            "betnr": self.betnr,
            "syncStatus": "clean",
            "advowareLastSync": stamp,
            "advowareDeletedAt": None,
            "syncErrorMessage": None,
            "syncRetryCount": 0,
            "createdAt": stamp,
            "modifiedAt": stamp,
            "createdById": api[0],
            "createdByName": api[1],
            "modifiedById": api[0],
            "modifiedByName": api[1],
            "emailAddressData": [
                {
                    "emailAddress": self.mail,
                    "lower": self.mail,
                    "primary": True,
                    "optOut": False,
                    "invalid": False,
                }
            ],
            "phoneNumberData": [
                {
                    "phoneNumber": self.phone,
                    "type": "Office",
                    "primary": True,
                    "optOut": False,
                    "invalid": False,
                }
            ],
        }

    def advo(self, stamp: str) -> dict[str, Any]:
        return {
            "betNr": self.betnr,
            "rechtsform": None,
            "anrede": SALUTATION_TO_ANREDE.get(self.salutation),
            "titel": None,
            "vorname": self.first,
            "name": self.last,
            "zusatz": None,
            "geburtsdatum": None,
            "handelsRegisterNummer": None,
            "registergericht": None,
            "kommunikation": [
                {"kommKz": 8, "tlf": self.mail, "bemerkung": None, "online": False},
                {"kommKz": 1, "tlf": self.phone, "bemerkung": None, "online": False},
            ],
            "angelegtAm": stamp,
            "geaendertAm": stamp,
        }
