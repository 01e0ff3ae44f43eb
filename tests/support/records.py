"""Builders of EspoCRM record parts that many tests need in the shape EspoCRM sends them."""

from __future__ import annotations

from typing import Any


def espo_email(address: str, *, primary: bool = True, opt_out: bool = False) -> dict[str, Any]:
    """One entry of `emailAddressData`, as EspoCRM returns it (valid, `lower` filled in)."""
    return {
        "emailAddress": address,
        "lower": address.lower(),
        "primary": primary,
        "optOut": opt_out,
        "invalid": False,
    }


def espo_phone(number: str, kind: str = "Office", *, primary: bool = True) -> dict[str, Any]:
    """One entry of `phoneNumberData`, as EspoCRM returns it (valid, not opted out)."""
    return {"phoneNumber": number, "type": kind, "primary": primary, "optOut": False, "invalid": False}
