"""The published vectors of shared/docs/espocrm-api.md and the Advoware token signature."""

from __future__ import annotations

import base64
import hashlib
import hmac

from sandbox import config as cfg
from sandbox.signing import (
    advoware_signature,
    espo_hmac_header,
    php_json,
    webhook_signature,
    webhook_x_signature,
)
from tests.support.records import espo_email
from tests.support.vectors import ESPO_HMAC_HEADER, ESPO_HMAC_REQUEST

VECTOR_BODY = (
    b'[{"id":"6650aaa0000000001","name":"M\\u00fcller \\/ S\\u00f6hne","createdAt":"2026-07-01 10:15:00",'
    b'"emailAddressData":[{"emailAddress":"a@b.de","lower":"a@b.de","primary":true,"optOut":false,'
    b'"invalid":false}],"amount":10.5,"isActive":true,"assignedUserId":null},{"id":"6650aaa0000000002"}]'
)


def test_php_json_reproduces_the_vector_body() -> None:
    items = [
        {
            "id": "6650aaa0000000001",
            "name": "Müller / Söhne",
            "createdAt": "2026-07-01 10:15:00",
            "emailAddressData": [espo_email("a@b.de")],
            "amount": 10.5,
            "isActive": True,
            "assignedUserId": None,
        },
        {"id": "6650aaa0000000002"},
    ]
    assert php_json(items) == VECTOR_BODY


def test_webhook_signature_vector() -> None:
    wid, secret = "6650a1b2c3d4e5f67", "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert hmac.new(secret.encode(), VECTOR_BODY, hashlib.sha256).hexdigest() == (
        "83b375f47dcfd6c3393fdd58963d6e091317175fdce75dcc71feedba7bb8cfaa"
    )
    assert webhook_signature(wid, secret, VECTOR_BODY) == (
        "NjY1MGExYjJjM2Q0ZTVmNjc6ODNiMzc1ZjQ3ZGNmZDZjMzM5M2ZkZDU4OTYzZDZlMDkxMzE3MTc1ZmRjZTc1ZGNjNzFmZWVkYmE3YmI4Y2ZhYQ=="
    )
    assert webhook_x_signature(wid, secret, VECTOR_BODY) == (
        "NjY1MGExYjJjM2Q0ZTVmNjc6g7N19H3P1sM5P91Ylj1uCRMXF1/c513Mcf7tunu4z6o="
    )


def test_espo_hmac_auth_vector() -> None:
    header = espo_hmac_header(*ESPO_HMAC_REQUEST)
    assert header == ESPO_HMAC_HEADER
    assert (
        base64.b64decode(header)
        .decode()
        .endswith("41a18254c9dc4d06de1fa85f755ed32e4cdf7b08c0af0094df1026884610d317")
    )


def test_advoware_signature_formula() -> None:
    assert base64.b64decode(cfg.ADVO_API_KEY) == b"sandbox-advoware-api-key-32bytes"
    ts, nonce = "2021-01-29T14:04:26.7955547Z", "76f895f8-3d7b-447b-825b-7b1ff67dc637"
    expected = base64.b64encode(
        hmac.new(
            b"sandbox-advoware-api-key-32bytes", f"64:sandbox-app:{nonce}:{ts}".encode(), hashlib.sha512
        ).digest()
    )
    sig = advoware_signature(cfg.ADVO_API_KEY, 64, "sandbox-app", nonce, ts)
    assert sig == expected.decode()
    assert len(base64.b64decode(sig)) == 64
