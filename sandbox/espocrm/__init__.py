"""EspoCRM simulator: CBeteiligte CRUD, list/search, auth, webhooks, notes and notifications.

Faithful to shared/docs/espocrm-api.md. Everything lives in memory; the app is a Starlette app.
One module per concern:

- `schema`     what every part shares: system attributes, formats, users, `EspoError`, ids
- `metadata`   the live entity definition (the project's one schema, or none with --no-entity)
- `query`      PHP-style query strings, search parameters, the `where` compiler
- `validation` input validation and the email/phone multi-value merge
- `store`      records, the betnr index, search, save/delete, authentication
- `notes`      stream notes with @mentions, notifications
- `routes`     the /api/v1 REST handlers
- `admin_api`  the administration API: Entity Manager, Field Manager, Metadata
- `app`        `EspoSimulator`: the Starlette app with the webhook dispatcher and admin endpoints
"""

from sandbox.espocrm.app import EspoSimulator, espo_fault_response
from sandbox.espocrm.query import compile_where, parse_nested_query
from sandbox.espocrm.schema import ENTITY, EspoError, User
from sandbox.espocrm.store import EspoStore
from sandbox.espocrm.validation import validate_input

__all__ = [
    "ENTITY",
    "EspoError",
    "EspoSimulator",
    "EspoStore",
    "User",
    "compile_where",
    "espo_fault_response",
    "parse_nested_query",
    "validate_input",
]
