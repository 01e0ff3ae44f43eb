"""Deterministic demo data (random.Random(seed)) and fast synthetic linked pairs for benchmarks.

A *party* is one real-world Beteiligter; it becomes an EspoCRM record, an Advoware record, or both
(a linked pair: EspoCRM ``betnr`` == Advoware ``betNr``).  The manifest says which is which.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sandbox import config as cfg

BASE_TIME = datetime(2026, 3, 2, 8, 0, 0, tzinfo=UTC)

SALUTATION_TO_ANREDE = {"Mr.": "Herr", "Mrs.": "Frau", "Ms.": "Frau", "Mx.": "Divers"}
PHONE_TYPE_TO_KOMMKZ = {"Office": 1, "Fax": 2, "Mobile": 3, "Home": 6, "Other": 10}
EMAIL_KOMMKZ = {"business": 4, "private": 8}

FIRST_NAMES = [
    ("Jürgen", "Mr."),
    ("Käthe", "Mrs."),
    ("Björn", "Mr."),
    ("Sören", "Mr."),
    ("Hanna", "Ms."),
    ("Günter", "Mr."),
    ("Ursula", "Mrs."),
    ("Özlem", "Ms."),
    ("Jörg", "Mr."),
    ("Bärbel", "Mrs."),
    ("Maximilian", "Mr."),
    ("Lena", "Ms."),
    ("Friedrich", "Mr."),
    ("Anneliese", "Mrs."),
    ("Kai", "Mx."),
    ("Ömer", "Mr."),
    ("Gisela", "Mrs."),
    ("Lüder", "Mr."),
    ("Sophie", "Ms."),
    ("Hans-Jürgen", "Mr."),
    ("Marie-Luise", "Mrs."),
    ("Torben", "Mr."),
    ("Jana", "Ms."),
    ("Dörte", "Mrs."),
    ("Ulrich", "Mr."),
]
LAST_NAMES = [
    "Müller",
    "Schäfer",
    "Größer",
    "Weiß",
    "Bäcker",
    "Köhler",
    "Fröhlich",
    "Yılmaz",
    "Schröder",
    "Hoffmann",
    "Krüger",
    "Wöhler",
    "Jäger",
    "Löwenthal",
    "Brandstätter",
    "Kühn",
    "Maaß",
    "Stößel",
    "von Bülow",
    "Dürr",
    "Nußbaum",
    "Zimmermann",
    "Öztürk",
    "Strauß",
    "Lindemann",
    "Heß",
]
CITIES_COURTS = [
    ("Berlin", "Amtsgericht Charlottenburg", "030"),
    ("München", "Amtsgericht München", "089"),
    ("Hamburg", "Amtsgericht Hamburg", "040"),
    ("Köln", "Amtsgericht Köln", "0221"),
    ("Düsseldorf", "Amtsgericht Düsseldorf", "0211"),
    ("Nürnberg", "Amtsgericht Nürnberg", "0911"),
    ("Lübeck", "Amtsgericht Lübeck", "0451"),
    ("Frankfurt am Main", "Amtsgericht Frankfurt am Main", "069"),
    ("Würzburg", "Amtsgericht Würzburg", "0931"),
    ("Osnabrück", "Amtsgericht Osnabrück", "0541"),
]
COMPANY_STEMS = [
    "Müller & Söhne Bau",
    "Bäckerei Schäfer",
    "Grünwald Immobilien",
    "Nordlicht Logistik",
    "Süßwaren Köhler",
    "Weißbier Brauerei Straßberger",
    "Elbtal Energie",
    "Fröhlich Consulting",
    "Alpenblick Hotelbetriebe",
    "Rheinische Maschinenbau",
    "Schwäbische Feinwerktechnik",
    "Lüneburger Heide Reisen",
    "Ostsee Fischräucherei Wöhler",
    "Isar Software",
    "Kölner Domblick Verlag",
    "Mainfränkische Weinkellerei",
    "Bürgerstiftung Heßloch",
    "Tischlerei Dürr",
    "Gößweinstein Apotheke",
]
RECHTSFORMEN_HRB = ["GmbH", "AG", "UG (haftungsbeschränkt)", "GmbH & Co. KG"]
RECHTSFORMEN_HRA = ["KG", "OHG", "e.K."]
RECHTSFORMEN_OTHER = [("e.V.", "VR"), ("eG", "GnR"), ("PartG mbB", "PR"), ("GbR", None)]
TITLES = [None, None, None, None, "Dr.", "Prof. Dr.", "Dr. med.", "Dipl.-Ing."]
ZUSAETZE = [None, None, None, "c/o Hausverwaltung Krüger", "Geschäftsführer", "z. Hd. Buchhaltung"]
DOMAINS = ["example.org", "example.com", "example.net"]

ASCII_MAP = str.maketrans(
    {
        "ä": "ae",
        "ö": "oe",
        "ü": "ue",
        "ß": "ss",
        "Ä": "ae",
        "Ö": "oe",
        "Ü": "ue",
        "ı": "i",
        " ": "",
        "&": "",
        ".": "",
        "(": "",
        ")": "",
        "-": "-",
    }
)


def slug(text: str) -> str:
    return text.translate(ASCII_MAP).lower()


@dataclass
class Party:
    key: str
    typ: str  # "Person" | "Firma"
    salutation: str = ""
    titel: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    rechtsform: str | None = None
    hrb: str | None = None
    registergericht: str | None = None
    geburtsdatum: str | None = None
    zusatz: str | None = None
    emails: list[tuple[str, str]] = field(default_factory=list)  # (address, business|private)
    phones: list[tuple[str, str]] = field(default_factory=list)  # (number, espo type)
    created: datetime = BASE_TIME

    @property
    def display_name(self) -> str:
        if self.typ == "Firma":
            return self.company or ""
        return " ".join(p for p in (self.first_name, self.last_name) if p)


def espo_id(rng: random.Random, when: datetime, n: int) -> str:
    """17 hex like EspoCRM's default (uniqid: 8 hex seconds + 5 hex micro-seconds + 4 random hex)."""
    seconds = int(when.timestamp())
    return f"{seconds:08x}{n % 0x100000:05x}{rng.getrandbits(16):04x}"


def espo_dt(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def advo_dt(dt: datetime, tz: str) -> str:
    return dt.astimezone(ZoneInfo(tz)).strftime("%Y-%m-%dT%H:%M:%S")


def espo_record(
    p: Party,
    rid: str,
    *,
    betnr: int | None,
    sync_status: str | None,
    last_sync: datetime | None,
    modified: datetime,
    user: tuple[str, str],
) -> dict[str, Any]:
    emails = [
        {"emailAddress": a, "lower": a.lower(), "primary": i == 0, "optOut": False, "invalid": False}
        for i, (a, _k) in enumerate(p.emails)
    ]
    phones = [
        {"phoneNumber": n, "type": t, "primary": i == 0, "optOut": False, "invalid": False}
        for i, (n, t) in enumerate(p.phones)
    ]
    return {
        "id": rid,
        "name": p.display_name,
        "deleted": False,
        "salutationName": p.salutation if p.typ == "Person" else "",
        "firstName": p.first_name,
        "lastName": p.last_name,
        "beteiligterTyp": p.typ,
        "titel": p.titel,
        "geburtsdatum": p.geburtsdatum,
        "rechtsform": p.rechtsform or "",
        "handelsregisterNummer": p.hrb,
        "registergericht": p.registergericht,
        "emailAddress": emails[0]["emailAddress"] if emails else None,
        "phoneNumber": phones[0]["phoneNumber"] if phones else None,
        "betnr": betnr,
        "syncStatus": sync_status,
        "advowareLastSync": espo_dt(last_sync) if last_sync else None,
        "advowareDeletedAt": None,
        "syncErrorMessage": None,
        "syncRetryCount": 0,
        "createdAt": espo_dt(p.created),
        "modifiedAt": espo_dt(modified),
        "createdById": user[0],
        "createdByName": user[1],
        "modifiedById": user[0],
        "modifiedByName": user[1],
        "emailAddressData": emails,
        "phoneNumberData": phones,
    }


def advo_record(p: Party, betnr: int, *, modified: datetime, tz: str) -> dict[str, Any]:
    komm: list[dict[str, Any]] = []
    for addr, kind in p.emails:
        komm.append({"kommKz": EMAIL_KOMMKZ[kind], "tlf": addr, "bemerkung": None, "online": False})
    for number, ptype in p.phones:
        komm.append(
            {"kommKz": PHONE_TYPE_TO_KOMMKZ[ptype], "tlf": number, "bemerkung": None, "online": False}
        )
    person = p.typ == "Person"
    return {
        "betNr": betnr,
        "rechtsform": None if person else p.rechtsform,
        "anrede": (SALUTATION_TO_ANREDE.get(p.salutation) if person else "Firma"),
        "titel": p.titel,
        "vorname": p.first_name if person else None,
        "name": p.last_name if person else p.company,
        "zusatz": p.zusatz,
        "geburtsdatum": p.geburtsdatum,
        "handelsRegisterNummer": p.hrb,
        "registergericht": p.registergericht,
        "kommunikation": komm,
        "angelegtAm": advo_dt(p.created, tz),
        "geaendertAm": advo_dt(modified, tz),
    }


def _phone(rng: random.Random, prefix: str, mobile: bool = False) -> str:
    if mobile:
        return f"+49 1{rng.choice(['51', '60', '70', '71', '76'])} {rng.randint(1000000, 9999999)}"
    return f"+49 {prefix[1:]} {rng.randint(100000, 9999999)}"


def make_person(rng: random.Random, key: str, idx: int) -> Party:
    first, salutation = FIRST_NAMES[idx % len(FIRST_NAMES)]
    last = LAST_NAMES[(idx * 7 + 3) % len(LAST_NAMES)]
    _city, _court, prefix = rng.choice(CITIES_COURTS)
    titel = {1: "Prof. Dr.", 4: "Dr."}.get(idx, rng.choice(TITLES))
    birth = f"{rng.randint(1941, 2001)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    local = f"{slug(first)}.{slug(last)}"
    emails = [(f"{local}@{rng.choice(DOMAINS)}", "private")]
    if rng.random() < 0.6:
        emails.append(
            (
                f"{slug(first)[0]}.{slug(last)}@kanzlei-{slug(last)}.example.de".replace(
                    ".example.de", ".example.org"
                ),
                "business",
            )
        )
    phones = [(_phone(rng, prefix, mobile=True), "Mobile"), (_phone(rng, prefix), "Home")]
    if rng.random() < 0.4:
        phones.append((_phone(rng, prefix), "Office"))
    return Party(
        key=key,
        typ="Person",
        salutation=salutation,
        titel=titel,
        first_name=first,
        last_name=last,
        geburtsdatum=birth if rng.random() < 0.8 else None,
        zusatz=rng.choice(ZUSAETZE),
        emails=emails,
        phones=phones,
        created=BASE_TIME - timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399)),
    )


def make_company(rng: random.Random, key: str, idx: int) -> Party:
    stem = COMPANY_STEMS[idx % len(COMPANY_STEMS)]
    _city, court, prefix = rng.choice(CITIES_COURTS)
    roll = idx % 5
    if roll in (0, 1, 2):
        rechtsform = RECHTSFORMEN_HRB[idx % len(RECHTSFORMEN_HRB)]
        hrb: str | None = f"HRB {rng.randint(1000, 299999)}"
    elif roll == 3:
        rechtsform = RECHTSFORMEN_HRA[idx % len(RECHTSFORMEN_HRA)]
        hrb = f"HRA {rng.randint(100, 99999)}"
    else:
        rechtsform, register = RECHTSFORMEN_OTHER[idx % len(RECHTSFORMEN_OTHER)]
        hrb = f"{register} {rng.randint(100, 9999)}" if register else None
    domain = slug(stem).replace("&", "")[:20] + ".example.com"
    emails = [(f"info@{domain}", "business"), (f"buchhaltung@{domain}", "business")]
    if rng.random() < 0.5:
        emails.append((f"recht@{domain}", "business"))
    phones = [(_phone(rng, prefix), "Office"), (_phone(rng, prefix), "Fax")]
    if rng.random() < 0.5:
        phones.append((_phone(rng, prefix, mobile=True), "Mobile"))
    return Party(
        key=key,
        typ="Firma",
        company=f"{stem} {rechtsform}",
        rechtsform=rechtsform,
        hrb=hrb,
        registergericht=court if hrb else None,
        zusatz=rng.choice(ZUSAETZE),
        emails=emails,
        phones=phones,
        created=BASE_TIME - timedelta(days=rng.randint(30, 900), seconds=rng.randint(0, 86399)),
    )


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
    rng = random.Random(seed)
    espo: list[dict[str, Any]] = []
    advo: list[dict[str, Any]] = []
    manifest: dict[str, Any] = {
        "linked_equal": [],
        "linked_diff": [],
        "espo_only": [],
        "advo_only": [],
        "synthetic": 0,
    }
    betnr = first_betnr
    n = 0

    def next_id(when: datetime) -> str:
        nonlocal n
        n += 1
        return espo_id(rng, when, n)

    if demo:
        parties: list[Party] = []
        for i in range(22):
            parties.append(make_person(rng, f"p{i}", i))
        for i in range(17):
            parties.append(make_company(rng, f"c{i}", i))
        rng.shuffle(parties)
        last_sync = BASE_TIME - timedelta(days=2)
        # The first 20: linked and equal (one differs only in phone formatting).
        for i, p in enumerate(parties[:20]):
            bn, betnr = betnr, betnr + 1
            rid = next_id(p.created)
            e = espo_record(
                p, rid, betnr=bn, sync_status="clean", last_sync=last_sync, modified=last_sync, user=api
            )
            a = advo_record(p, bn, modified=last_sync - timedelta(seconds=5), tz=tz)
            if i == 0 and a["kommunikation"]:
                for k in a["kommunikation"]:
                    if k["kommKz"] in (1, 3, 6) and k["tlf"].startswith("+49 "):
                        k["tlf"] = "0" + k["tlf"][4:].replace(" ", "")
                        break
            espo.append(e)
            advo.append(a)
            manifest["linked_equal"].append(
                {
                    "id": rid,
                    "betNr": bn,
                    "name": e["name"],
                    "note": "phone formatting only" if i == 0 else None,
                }
            )
        # Next 6: linked, differing in one field (changed on one side since the last sync).
        diffs = ["advo:titel", "advo:phone", "advo:name", "espo:email", "espo:registergericht", "advo:zusatz"]
        for p, what in zip(parties[20:26], diffs, strict=True):
            bn, betnr = betnr, betnr + 1
            rid = next_id(p.created)
            side, _field = what.split(":")
            changed = last_sync + timedelta(hours=rng.randint(2, 30))
            e = espo_record(
                p,
                rid,
                betnr=bn,
                sync_status="clean",
                last_sync=last_sync,
                modified=changed if side == "espo" else last_sync,
                user=api,
            )
            a = advo_record(
                p, bn, modified=changed if side == "advo" else last_sync - timedelta(seconds=5), tz=tz
            )
            if what == "advo:titel":
                a["titel"] = "Dr." if a["titel"] != "Dr." else "Prof. Dr."
            elif what == "advo:phone":
                a["kommunikation"].append(
                    {"kommKz": 3, "tlf": _phone(rng, "030", mobile=True), "bemerkung": "neu", "online": False}
                )
            elif what == "advo:name":
                a["name"] = (a["name"] or "") + "-Löwenstein" if p.typ == "Person" else a["name"] + " i.L."
            elif what == "espo:email":
                extra = f"neu.{slug(p.display_name)[:12]}@example.net"
                e["emailAddressData"].insert(
                    0,
                    {
                        "emailAddress": extra,
                        "lower": extra,
                        "primary": True,
                        "optOut": False,
                        "invalid": False,
                    },
                )
                for item in e["emailAddressData"][1:]:
                    item["primary"] = False
                e["emailAddress"] = extra
                e["syncStatus"] = "dirty"
                e["modifiedById"], e["modifiedByName"] = human
            elif what == "espo:registergericht":
                e["registergericht"] = (
                    "Amtsgericht Köln" if e["registergericht"] != "Amtsgericht Köln" else "Amtsgericht Bonn"
                )
                e["syncStatus"] = "dirty"
                e["modifiedById"], e["modifiedByName"] = human
            elif what == "advo:zusatz":
                a["zusatz"] = "Insolvenzverwalter: RA Dr. Stößel"
            espo.append(e)
            advo.append(a)
            manifest["linked_diff"].append({"id": rid, "betNr": bn, "name": e["name"], "changed": what})
        # Next 7: only in EspoCRM (no betnr yet).
        for p in parties[26:33]:
            rid = next_id(p.created)
            e = espo_record(
                p,
                rid,
                betnr=None,
                sync_status="pending_sync",
                last_sync=None,
                modified=p.created + timedelta(days=1),
                user=human,
            )
            espo.append(e)
            manifest["espo_only"].append({"id": rid, "name": e["name"]})
        # The rest: only in Advoware.
        for p in parties[33:]:
            bn, betnr = betnr, betnr + 1
            a = advo_record(p, bn, modified=p.created + timedelta(days=3), tz=tz)
            advo.append(a)
            manifest["advo_only"].append({"betNr": bn, "name": a["name"]})

    if records:
        betnr = _synthetic(records, rng, espo, advo, betnr, tz, api)
        manifest["synthetic"] = records
    return SeedData(espo=espo, advo=advo, next_betnr=betnr, manifest=manifest)


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
        bn = betnr + i
        first = firsts[i % len(firsts)]
        last = f"{LAST_NAMES[(i // len(firsts)) % len(LAST_NAMES)]}-{i:06d}"
        mail = f"{slug(first)}.{i:06d}@bench.example.org"
        phone = f"+49 30 {1000000 + i}"
        rid = f"{seconds:08x}{(i + 0x80000) % 0x100000:05x}{rng.getrandbits(16):04x}"
        espo.append(
            {
                "id": rid,
                "name": f"{first} {last}",
                "deleted": False,
                "salutationName": sal[first],
                "firstName": first,
                "lastName": last,
                "beteiligterTyp": "Person",
                "titel": None,
                "geburtsdatum": None,
                "rechtsform": "",
                "handelsregisterNummer": None,
                "registergericht": None,
                "emailAddress": mail,
                "phoneNumber": phone,
                "betnr": bn,
                "syncStatus": "clean",
                "advowareLastSync": stamp_espo,
                "advowareDeletedAt": None,
                "syncErrorMessage": None,
                "syncRetryCount": 0,
                "createdAt": stamp_espo,
                "modifiedAt": stamp_espo,
                "createdById": api[0],
                "createdByName": api[1],
                "modifiedById": api[0],
                "modifiedByName": api[1],
                "emailAddressData": [
                    {"emailAddress": mail, "lower": mail, "primary": True, "optOut": False, "invalid": False}
                ],
                "phoneNumberData": [
                    {
                        "phoneNumber": phone,
                        "type": "Office",
                        "primary": True,
                        "optOut": False,
                        "invalid": False,
                    }
                ],
            }
        )
        advo.append(
            {
                "betNr": bn,
                "rechtsform": None,
                "anrede": SALUTATION_TO_ANREDE.get(sal[first]),
                "titel": None,
                "vorname": first,
                "name": last,
                "zusatz": None,
                "geburtsdatum": None,
                "handelsRegisterNummer": None,
                "registergericht": None,
                "kommunikation": [
                    {"kommKz": 8, "tlf": mail, "bemerkung": None, "online": False},
                    {"kommKz": 1, "tlf": phone, "bemerkung": None, "online": False},
                ],
                "angelegtAm": stamp_advo,
                "geaendertAm": stamp_advo,
            }
        )
    return betnr + count


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
