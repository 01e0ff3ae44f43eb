"""The names of the fields of `CBeteiligte` the service itself keeps (its status and
bookkeeping), spelled once. Their definitions (type, options, labels) are in
services/espocrm/schema.py; the party's own fields are named by the field map
(services/beteiligte/fieldmap.py). Imports nothing: every layer may use it.
"""

from __future__ import annotations

SYNC_STATUS = "syncStatus"  # the state machine's value (services/sync/states.py)
SYNC_ERROR_MESSAGE = "syncErrorMessage"  # German text for staff
SYNC_RETRY_COUNT = "syncRetryCount"
SYNC_FINGERPRINT = "syncFingerprint"
ADVOWARE_LAST_SYNC = "advowareLastSync"
ADVOWARE_DELETED_AT = "advowareDeletedAt"
