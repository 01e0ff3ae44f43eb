from __future__ import annotations

import base64

import pytest

from services.errors import SyncServiceError
from services.espocrm.webhook import (
    WebhookSignatureError,
    expected_legacy_signature,
    expected_signature,
    verify_signature,
)

# Published vector: shared/docs/espocrm-api.md §1.2
WID = "6650a1b2c3d4e5f67"
SECRET = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
BODY = (
    b'[{"id":"6650aaa0000000001","name":"M\\u00fcller \\/ S\\u00f6hne","createdAt":"2026-07-01 10:15:00",'
    b'"emailAddressData":[{"emailAddress":"a@b.de","lower":"a@b.de","primary":true,"optOut":false,'
    b'"invalid":false}],"amount":10.5,"isActive":true,"assignedUserId":null},{"id":"6650aaa0000000002"}]'
)
SIGNATURE = (
    "NjY1MGExYjJjM2Q0ZTVmNjc6ODNiMzc1ZjQ3ZGNmZDZjMzM5M2ZkZDU4OTYzZDZlMDkxMzE3MTc1ZmRjZTc1ZGNjNzFmZWVk"
    "YmE3YmI4Y2ZhYQ=="
)
X_SIGNATURE = "NjY1MGExYjJjM2Q0ZTVmNjc6g7N19H3P1sM5P91Ylj1uCRMXF1/c513Mcf7tunu4z6o="
SECRETS = {"other0000000000001": "ffffffffffffffffffffffffffffffff", WID: SECRET}


def test_expected_signatures_match_published_vector() -> None:
    assert expected_signature(WID, SECRET, BODY) == SIGNATURE
    assert expected_legacy_signature(WID, SECRET, BODY) == X_SIGNATURE
    assert (
        base64.b64decode(SIGNATURE)
        .decode()
        .endswith("83b375f47dcfd6c3393fdd58963d6e091317175fdce75dcc71feedba7bb8cfaa")
    )


def test_verify_signature_header() -> None:
    assert verify_signature(BODY, {"Signature": SIGNATURE, "X-Signature": X_SIGNATURE}, SECRETS) == WID


@pytest.mark.parametrize("name", ["signature", "SIGNATURE", "Signature"])
def test_header_names_case_insensitive(name: str) -> None:
    assert verify_signature(BODY, {name: SIGNATURE}, SECRETS) == WID


def test_legacy_x_signature_fallback() -> None:
    assert verify_signature(BODY, {"x-signature": X_SIGNATURE}, SECRETS) == WID


def test_secret_values_may_be_secretstr() -> None:
    from pydantic import SecretStr

    assert verify_signature(BODY, {"Signature": SIGNATURE}, {WID: SecretStr(SECRET)}) == WID


def test_httpx_headers_mapping_works() -> None:
    import httpx

    assert verify_signature(BODY, httpx.Headers({"SiGnAtUrE": SIGNATURE}), SECRETS) == WID


def test_rotation_several_active_secrets() -> None:
    new_id, new_secret = "7777a1b2c3d4e5f67", "0123456789abcdef0123456789abcdef"
    sig = expected_signature(new_id, new_secret, BODY)
    both = {WID: SECRET, new_id: new_secret}
    assert verify_signature(BODY, {"Signature": sig}, both) == new_id
    assert verify_signature(BODY, {"Signature": SIGNATURE}, both) == WID


def reason(raw: bytes, headers: dict[str, str], secrets: dict[str, str] = SECRETS) -> str:
    with pytest.raises(WebhookSignatureError) as info:
        verify_signature(raw, headers, secrets)
    assert isinstance(info.value, SyncServiceError)
    return info.value.reason


def test_missing_signature() -> None:
    assert reason(BODY, {"Content-Type": "application/json"}) == "missing signature"


@pytest.mark.parametrize(
    "value",
    [
        "not base64 !!!",
        base64.b64encode(b"no-colon-here").decode(),
        base64.b64encode(b"abc:tooshort").decode(),
        base64.b64encode(b":" + b"0" * 64).decode(),
    ],
)
def test_malformed_signature(value: str) -> None:
    assert reason(BODY, {"Signature": value}) == "malformed signature"


def test_malformed_legacy_signature() -> None:
    assert reason(BODY, {"X-Signature": base64.b64encode(b"abc:short").decode()}) == "malformed signature"


def test_unknown_webhook_id() -> None:
    assert reason(BODY, {"Signature": SIGNATURE}, {"someoneelse": SECRET}) == "unknown webhook id"
    assert reason(BODY, {"X-Signature": X_SIGNATURE}, {"someoneelse": SECRET}) == "unknown webhook id"


def test_signature_mismatch_on_tampered_body() -> None:
    tampered = BODY.replace(b"10.5", b"99.5")
    assert reason(tampered, {"Signature": SIGNATURE}) == "signature mismatch"
    assert reason(tampered, {"X-Signature": X_SIGNATURE}) == "signature mismatch"


def test_reserialised_json_does_not_verify() -> None:
    import json

    reserialised = json.dumps(json.loads(BODY)).encode()
    assert reason(reserialised, {"Signature": SIGNATURE}) == "signature mismatch"


def test_wrong_secret_is_mismatch() -> None:
    assert reason(BODY, {"Signature": SIGNATURE}, {WID: "0" * 32}) == "signature mismatch"


def test_bad_signature_does_not_fall_back_to_legacy() -> None:
    bad = expected_signature(WID, "0" * 32, BODY)
    assert reason(BODY, {"Signature": bad, "X-Signature": X_SIGNATURE}) == "signature mismatch"


def test_error_text_has_no_secret() -> None:
    with pytest.raises(WebhookSignatureError) as info:
        verify_signature(BODY, {"Signature": expected_signature(WID, "0" * 32, BODY)}, SECRETS)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
