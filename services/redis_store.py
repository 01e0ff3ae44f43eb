"""Deprecated: use services/store (keys, connection). Kept until engine.py, backfill.py,
advoware/token.py and advoware/client.py (being split/reworked this session) move over."""

from __future__ import annotations

from services.store.connection import connect
from services.store.keys import PREFIX as KEY_PREFIX
from services.store.keys import _key as key

__all__ = ["KEY_PREFIX", "connect", "key"]
