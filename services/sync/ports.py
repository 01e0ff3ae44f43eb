"""What the service needs from the two systems (ports), as Protocols: the engine, sweep,
watch, backfill, health checks and ops tools are typed against these, not against the concrete
clients (services/espocrm/client.py, services/advoware/client.py) - so a fake in a test or a
simulator satisfies them, and mypy says when a client and its users drift apart.

One place for all of them: a new need is a new method here first. Each user names the
narrowest Protocol it needs; the composition root (services/runtime.py) carries the two
combined ones, `EspoCrm` and `Advoware`, which the real clients satisfy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol


class EspoApi(Protocol):
    """EspoCRM as the per-record sync uses it."""

    async def get(self, entity: str, record_id: str) -> dict[str, Any]: ...
    async def create(self, entity: str, data: Mapping[str, Any]) -> dict[str, Any]: ...
    async def update(
        self, entity: str, record_id: str, data: dict[str, Any], *, version_number: int | None = None
    ) -> dict[str, Any]: ...
    # Paged reads: the betnr uniqueness check (services/sync/linking.py) queries by betnr.
    def iterate(
        self,
        entity: str,
        *,
        where: Sequence[Mapping[str, Any]] | None = None,
        select: str | Sequence[str] | None = None,
    ) -> AsyncIterator[dict[str, Any]]: ...


class EspoLister(Protocol):
    """One page of an EspoCRM query with its total (health checks, status, the sweep's probe)."""

    async def list(
        self,
        entity: str,
        *,
        where: Sequence[Mapping[str, Any]] | None = None,
        select: str | Sequence[str] | None = None,
        order_by: str | None = None,
        order: str = "asc",
        offset: int = 0,
        max_size: int = 200,
    ) -> tuple[int, list[dict[str, Any]]]: ...


class EspoListingApi(EspoApi, EspoLister, Protocol):
    """EspoCRM with paged reads and creates (backfill, sweep, status, ops tools)."""

    async def create(
        self, entity: str, data: Mapping[str, Any], *, skip_duplicate_check: bool = False
    ) -> dict[str, Any]: ...


class EspoSetupReader(EspoLister, Protocol):
    """How the instance is set up, as the API user sees it (services/ops/espocrm_check.py)."""

    async def get(self, entity: str, record_id: str) -> dict[str, Any]: ...
    async def metadata(self) -> dict[str, Any]: ...
    async def webhooks(self) -> list[dict[str, Any]]: ...


class EspoCrm(EspoListingApi, EspoSetupReader, Protocol):
    """Everything the service needs from EspoCRM: what services/runtime.py carries."""


class AdvowareApi(Protocol):
    async def get_beteiligter(self, betnr: int) -> dict[str, Any]: ...
    async def create_beteiligter(self, payload: dict[str, Any]) -> dict[str, Any]: ...
    async def update_beteiligter(self, betnr: int, payload: dict[str, Any]) -> dict[str, Any]: ...
    def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = 100, start: int = 0
    ) -> AsyncIterator[dict[str, Any]]: ...


class Tokens(Protocol):
    """The Advoware client's bearer token provider (services/advoware/token.py)."""

    async def get(self) -> str: ...


class AdvoProbe(Protocol):
    """Advoware as the health check probes it: a token, then one listing page."""

    @property
    def tokens(self) -> Tokens: ...

    def iter_beteiligte(
        self, *, changed_since_local: str | None = None, take: int = 100
    ) -> AsyncIterator[dict[str, Any]]: ...


class Advoware(AdvowareApi, AdvoProbe, Protocol):
    """Everything the service needs from Advoware: what services/runtime.py carries."""
