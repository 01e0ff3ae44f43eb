"""The Python intake against the shared webhook vectors (the port gate runs the same file in
tests/unit/test_port_gate.py): every case's status, error text and accepted ids."""

from __future__ import annotations

from typing import Any

import pytest

from services.environment import parse_webhook_secrets
from services.intake.webhook import parse_and_verify
from tests.support import webhook_vectors

VECTORS = webhook_vectors.load()
SECRETS = parse_webhook_secrets(VECTORS["secrets"])


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[c["name"] for c in VECTORS["cases"]])
def test_intake_answers_each_vector(case: dict[str, Any]) -> None:
    result = parse_and_verify("update", webhook_vectors.body(case), case["headers"], SECRETS)
    answer = {
        "status": result.status,
        "error": result.body.get("error"),
        "ids": result.record_ids if result.status == 200 else None,
    }
    assert answer == webhook_vectors.expected(case)


def test_vectors_cover_every_answer() -> None:
    statuses = {c["status"] for c in VECTORS["cases"]}
    assert statuses == {200, 400, 401, 413, 415}
    # The known answer of shared/docs/espocrm-api.md 1.2 is in the file verbatim.
    assert VECTORS["cases"][0]["headers"]["signature"].startswith("NjY1MGExYjJjM2Q0ZTVmNjc6ODNiMzc1")
