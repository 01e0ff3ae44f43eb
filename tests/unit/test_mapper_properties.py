"""Property tests (hypothesis) of the mapper over the synced domain.

Records: persons and companies, umlauts and ß, names up to 200 characters, empty and missing values,
0–4 e-mails and phones in several spellings, companies with and without Handelsregister data,
Advoware entries the sync does not own (Internet, EPost, beA), unmapped fields (zusatz, unknown keys).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.beteiligte import mapper
from services.beteiligte.normalize import RECHTSFORMEN, email_key, phone_key

ALL = mapper.CANONICAL_FIELDS
READ_ONLY = ("betNr", "geaendertAm", "angelegtAm")

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The two tests that draw a record from each side: fewer examples, same coverage per record kind.
PAIR_SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------- building blocks

_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZäöüÄÖÜßéèçñ"
name_text = st.text(alphabet=_LETTERS + " -'.&", min_size=1, max_size=200).filter(
    lambda s: s.strip(" ") != ""
)
padded = st.builds(
    lambda pre, s, post: pre + s + post,
    st.sampled_from(["", " ", "  "]),
    name_text,
    st.sampled_from(["", " ", "\t"]),
)
opt_text = st.one_of(st.none(), st.just(""), padded)

dates = st.dates(
    min_value=__import__("datetime").date(1900, 1, 1), max_value=__import__("datetime").date(2026, 12, 31)
)
opt_date = st.one_of(st.none(), st.just(""), dates.map(lambda d: d.isoformat()))
advo_date = st.one_of(
    st.none(),
    dates.map(lambda d: d.isoformat()),
    dates.map(lambda d: d.isoformat() + "T00:00:00"),
)

hrb = st.one_of(
    st.none(),
    st.just(""),
    st.builds(
        lambda kind, n: f"{kind} {n}",
        st.sampled_from(["HRB", "HRA", "GnR", "VR", "PR"]),
        st.integers(1, 999999),
    ),
)
court = st.one_of(
    st.none(), st.just(""), st.sampled_from(["Amtsgericht München", "Amtsgericht Köln", "AG Düsseldorf"])
)

_local = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789._-", min_size=1, max_size=20
).filter(lambda s: s[0] not in "." and s[-1] not in ".")
email = st.builds(
    lambda lp, dom, tld: f"{lp}@{dom}.{tld}",
    _local,
    st.text("abcdefghijkmnopqrstuvwxyz", min_size=1, max_size=12),
    st.sampled_from(["de", "com", "org", "eu"]),
)


def _phone(area: int, number: int, style: int) -> str:
    a, n = str(area), str(number)
    return [
        f"+49 {a} {n}",
        f"0{a} {n}",
        f"0{a}/{n}",
        f"+49 ({a}) {n}",
        f"0{a}-{n}",
        f"0049{a}{n}",
    ][style]


phone = st.builds(
    _phone,
    st.sampled_from([30, 89, 40, 221, 69, 711, 151, 160, 171, 176, 2241, 6221]),
    st.integers(100000, 99999999),
    st.integers(0, 5),
)


def unique_emails(n_max: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(email, max_size=n_max, unique_by=email_key)


def unique_phones(n_max: int = 4) -> st.SearchStrategy[list[str]]:
    return st.lists(phone, max_size=n_max, unique_by=phone_key)


ESPO_RECHTSFORMEN = ["", *RECHTSFORMEN]
RECHTSFORM_VARIANTS = ["GmbH & Co KG", "UG haftungsbeschränkt", "e. K.", "gmbh", "e. V.", "PartGmbB"]

# --------------------------------------------------------------------------- EspoCRM records


@st.composite
def espo_records(draw: st.DrawFn) -> dict[str, Any]:
    company = draw(st.booleans())
    rec: dict[str, Any] = {"id": draw(st.text("0123456789abcdef", min_size=17, max_size=17))}
    optional: dict[str, Any] = {
        "titel": draw(opt_text),
        "geburtsdatum": draw(opt_date),
        "handelsregisterNummer": draw(hrb),
        "registergericht": draw(court),
    }
    if company:
        rec |= {
            "beteiligterTyp": "Firma",
            "name": draw(padded),
            "rechtsform": draw(st.sampled_from(ESPO_RECHTSFORMEN)),
        }
        optional |= {
            "firstName": draw(st.sampled_from([None, ""])),
            "lastName": draw(st.sampled_from([None, ""])),
        }
    else:
        first, last = draw(opt_text), draw(padded)
        rec |= {"beteiligterTyp": "Person", "lastName": last}
        optional |= {
            "firstName": first,
            "name": " ".join(p for p in (first, last) if p),
            "salutationName": draw(st.sampled_from(["", "Mr.", "Mrs.", "Ms.", "Mx."])),
            "rechtsform": "",
        }
    for key, value in optional.items():
        if draw(st.booleans()):  # present or missing
            rec[key] = value
    emails = draw(unique_emails())
    if bool(emails) or draw(st.booleans()):
        primary = draw(st.integers(-1, len(emails) - 1)) if emails else -1
        rec["emailAddressData"] = [
            {
                "emailAddress": e,
                "lower": e.lower(),
                "primary": i == primary,
                "optOut": draw(st.booleans()),
                "invalid": False,
            }
            for i, e in enumerate(emails)
        ]
    phones = draw(unique_phones())
    if bool(phones) or draw(st.booleans()):
        primary = draw(st.integers(-1, len(phones) - 1)) if phones else -1
        rec["phoneNumberData"] = [
            {
                "phoneNumber": p,
                "type": draw(st.sampled_from(["Mobile", "Office", "Home", "Fax", "Other"])),
                "primary": i == primary,
                "optOut": False,
                "invalid": False,
            }
            for i, p in enumerate(phones)
        ]
    rec["modifiedAt"] = "2026-07-01 10:15:00"
    return rec


# --------------------------------------------------------------------------- Advoware records

UNOWNED = st.builds(
    lambda kz, tlf, bem, online: {"kommKz": kz, "tlf": tlf, "bemerkung": bem, "online": online},
    st.sampled_from([5, 11, 12]),
    st.sampled_from(["https://example.de", "safe-de.justiz.123", "epost@x.de"]),
    st.one_of(st.none(), st.just("Hinweis")),
    st.booleans(),
)


@st.composite
def advo_records(draw: st.DrawFn, *, messy: bool = False) -> dict[str, Any]:
    company = draw(st.booleans())
    rec: dict[str, Any] = {"betNr": draw(st.integers(1, 10**7)), "name": draw(padded)}
    if company:
        forms = [*RECHTSFORMEN, *RECHTSFORM_VARIANTS] + (["Stiftung", "SE"] if messy else [])
        rechtsform = draw(st.sampled_from([None, *forms]))
        rec |= {
            "rechtsform": rechtsform,
            "anrede": "Firma" if rechtsform is None else draw(st.sampled_from(["Firma", None])),
        }
        rec["vorname"] = None
    else:
        anreden = ["Herr", "Frau", "Divers", None, "Herrn"] + (["Eheleute"] if messy else [])
        rec |= {
            "rechtsform": draw(st.sampled_from([None, ""])),
            "anrede": draw(st.sampled_from(anreden)),
            "vorname": draw(opt_text),
        }
    rec |= {
        "titel": draw(opt_text),
        "zusatz": draw(opt_text),
        "geburtsdatum": draw(advo_date),
        "handelsRegisterNummer": draw(hrb),
        "registergericht": draw(court),
        "geaendertAm": "2026-10-25T02:30:00.123",
        "angelegtAm": "2020-01-01T08:00:00",
    }
    if draw(st.booleans()):
        rec["unbekannt"] = {"nested": [1, "zwei"]}
    entries: list[dict[str, Any]] = []
    for e in draw(unique_emails()):
        entries.append(
            {
                "kommKz": draw(st.sampled_from([4, 8])),
                "tlf": e,
                "bemerkung": None,
                "online": draw(st.booleans()),
            }
        )
    for p in draw(unique_phones()):
        kz = draw(st.sampled_from([1, 2, 3, 6, 7, 9, 10]))
        entries.append(
            {
                "kommKz": kz,
                "tlf": p,
                "bemerkung": draw(st.one_of(st.none(), st.just("Büro"))),
                "online": False,
            }
        )
    entries += draw(st.lists(UNOWNED, max_size=3))
    if messy:
        entries += draw(
            st.lists(
                st.sampled_from(
                    [
                        {"kommKz": 1, "tlf": "siehe Zentrale", "bemerkung": None, "online": False},
                        {"kommKz": 99, "tlf": "?", "bemerkung": None, "online": False},
                        {"kommKz": 4, "tlf": "", "bemerkung": None, "online": False},
                    ]
                ),
                max_size=2,
            )
        )
        if bool(entries) and draw(st.booleans()):
            dup = draw(st.sampled_from(entries))
            entries.append(dict(dup, bemerkung="Duplikat"))
    rec["kommunikation"] = draw(st.permutations(entries))
    return rec


def without_read_only(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in READ_ONLY}


# --------------------------------------------------------------------------- properties


@SETTINGS
@given(espo_records())
def test_espo_to_advo_to_espo(espo: dict[str, Any]) -> None:
    content = mapper.from_espo(espo)
    advo = mapper.to_advo_payload(content, None)
    assert mapper.from_advo(advo) == content
    patch = mapper.to_espo_patch(mapper.from_advo(advo), ALL, current=espo)
    assert mapper.from_espo(patch) == content
    # with the current record nothing a person typed is rewritten and the flags stay
    assert [e["emailAddress"] for e in patch["emailAddressData"]] == [e["address"] for e in content["emails"]]
    typed = {email_key(e["emailAddress"]): e for e in espo.get("emailAddressData") or []}
    for entry in patch["emailAddressData"]:
        assert entry["emailAddress"] == typed[entry["lower"]]["emailAddress"]
        assert entry["optOut"] == typed[entry["lower"]]["optOut"]
    assert [p["phoneNumber"] for p in patch["phoneNumberData"]] == [p["number"] for p in content["phones"]]


@SETTINGS
@given(advo_records())
def test_advo_to_espo_to_advo(advo: dict[str, Any]) -> None:
    content = mapper.from_advo(advo)
    patch = mapper.to_espo_patch(content, ALL)
    espo_content = mapper.from_espo(patch)
    assert espo_content == content
    payload = mapper.to_advo_payload(espo_content, advo)
    assert mapper.from_advo(payload) == content
    # nothing changed → the body is the record as read, minus the read-only fields
    assert payload == without_read_only(advo)


@SETTINGS
@given(advo_records(messy=True))
def test_messy_advoware_converges(advo: dict[str, Any]) -> None:
    """Unknown Rechtsform/anrede, non-contact values, unknown kommKz, duplicates: the EspoCRM patch
    is valid, the result compares equal, and writing it back changes nothing in Advoware."""
    content = mapper.from_advo(advo)
    espo_content = mapper.from_espo(mapper.to_espo_patch(content, ALL))
    assert mapper.diff(espo_content, content) == set()
    assert mapper.content_hash(espo_content) == mapper.content_hash(content)
    assert mapper.to_advo_payload(espo_content, advo) == without_read_only(advo)


@PAIR_SETTINGS
@given(espo_records(), advo_records(messy=True))
def test_writing_espo_over_any_advoware_record(espo: dict[str, Any], advo: dict[str, Any]) -> None:
    content = mapper.from_espo(espo)
    payload = mapper.to_advo_payload(content, advo)
    assert mapper.diff(mapper.from_advo(payload), content) == set()
    assert all(k not in payload for k in READ_ONLY)
    assert payload.get("zusatz") == advo.get("zusatz")
    assert payload.get("unbekannt") == advo.get("unbekannt")
    kept = [e for e in advo["kommunikation"] if e.get("kommKz") in (5, 11, 12)]
    assert [e for e in payload["kommunikation"] if e.get("kommKz") in (5, 11, 12)] == kept


@PAIR_SETTINGS
@given(advo_records(messy=True), espo_records())
def test_writing_advoware_over_any_espo_record(advo: dict[str, Any], espo: dict[str, Any]) -> None:
    content = mapper.from_advo(advo)
    patch = mapper.to_espo_patch(content, ALL, current=espo)
    assert mapper.diff(mapper.from_espo({**espo, **patch}), content) == set()
    # opt-out flags of addresses that stay are kept
    before = {email_key(e["emailAddress"]): e["optOut"] for e in espo.get("emailAddressData") or []}
    for entry in patch["emailAddressData"]:
        if entry["lower"] in before:
            assert entry["optOut"] == before[entry["lower"]]


def _reformat(espo: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """The same content in another spelling."""
    out = dict(espo)
    for key in ("firstName", "lastName", "name", "titel"):
        if isinstance(out.get(key), str) and out[key]:
            out[key] = "  " + out[key].replace(" ", "   ") + " "
    if out.get("salutationName") in ("Mrs.", "Ms."):
        out["salutationName"] = {"Mrs.": "Ms.", "Ms.": "Mrs."}[out["salutationName"]]
    variants = {
        "GmbH & Co. KG": "GmbH & Co KG",
        "UG (haftungsbeschränkt)": "UG haftungsbeschränkt",
        "e.K.": "e. K.",
    }
    if out.get("rechtsform") in variants:
        out["rechtsform"] = variants[out["rechtsform"]]
    if out.get("handelsregisterNummer"):
        out["handelsregisterNummer"] = out["handelsregisterNummer"].replace(" ", "")
    if out.get("emailAddressData"):
        out["emailAddressData"] = [
            dict(e, emailAddress=e["emailAddress"].upper()) for e in out["emailAddressData"]
        ]
    if out.get("phoneNumberData"):
        out["phoneNumberData"] = [
            dict(
                p,
                phoneNumber=data.draw(
                    st.sampled_from([phone_key(p["phoneNumber"]), p["phoneNumber"].replace(" ", "")])
                ),
            )
            for p in out["phoneNumberData"]
        ]
        primary = next((p for p in out["phoneNumberData"] if p["primary"]), out["phoneNumberData"][0])
        rest = [p for p in out["phoneNumberData"] if p is not primary]
        out["phoneNumberData"] = [primary, *data.draw(st.permutations(rest))]
    return dict(reversed(list(out.items())))


@SETTINGS
@given(espo_records(), st.data())
def test_diff_and_hash_ignore_formatting_and_key_order(espo: dict[str, Any], data: st.DataObject) -> None:
    content = mapper.from_espo(espo)
    assert mapper.diff(content, content) == set()
    assert mapper.diff(content, dict(reversed(list(content.items())))) == set()
    other = mapper.from_espo(_reformat(espo, data))
    assert mapper.diff(content, other) == set()
    assert mapper.content_hash(content) == mapper.content_hash(other)
    assert mapper.get_changed_fields(espo, mapper.to_advo_payload(other, None)) == {}


@SETTINGS
@given(
    espo_records(), st.sampled_from(["title", "last_name", "company_name", "birth_date", "register_number"])
)
def test_a_real_change_is_one_field(espo: dict[str, Any], field: str) -> None:
    content = mapper.from_espo(espo)
    new_value = "2001-02-03" if field == "birth_date" else "Änderung ß"
    if content[field] == new_value or (field in ("last_name", "company_name") and content[field] is None):
        return
    changed = dict(content, **{field: new_value})
    assert mapper.diff(content, changed) == {field}
    assert mapper.content_hash(content) != mapper.content_hash(changed)
