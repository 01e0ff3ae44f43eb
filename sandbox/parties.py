"""The people and companies of the simulators' seed data: name pools, one `Party` per real-world
Beteiligter, and how a party looks as an EspoCRM and as an Advoware record."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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


def phone_number(rng: random.Random, prefix: str, mobile: bool = False) -> str:
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
    phones = [(phone_number(rng, prefix, mobile=True), "Mobile"), (phone_number(rng, prefix), "Home")]
    if rng.random() < 0.4:
        phones.append((phone_number(rng, prefix), "Office"))
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
    phones = [(phone_number(rng, prefix), "Office"), (phone_number(rng, prefix), "Fax")]
    if rng.random() < 0.5:
        phones.append((phone_number(rng, prefix, mobile=True), "Mobile"))
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
