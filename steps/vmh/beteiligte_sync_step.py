"""The one sync step: every vmh.beteiligte.* event ends here (lock, compare, write)."""

from services.events import SYNC_JOB_LOCK_SECONDS, SYNC_TOPICS
from services.logbridge import motia_logging
from services.sync.dispatch import handle_sync_event, lower_priority

config = {
    "type": "event",
    "name": "BeteiligteSync",
    "description": "Brings each party up to date on both sides: locks the record, merges changes from EspoCRM and Advoware, writes, remembers the result",
    "subscribes": list(SYNC_TOPICS),
    "emits": [],
    "virtualEmits": [{"topic": "advoware.beteiligte.write", "label": "reads, writes"}],
    "flows": ["vmh", "vmh-ops"],
    # A killed runtime's jobs are taken over when this lock runs out (services/events.py).
    "infrastructure": {"queue": {"visibilityTimeout": SYNC_JOB_LOCK_SECONDS}},
}


async def handler(data, context):
    from services.runtime import open_runtime

    lower_priority(data)  # bulk events only: they yield the CPU to webhook answers
    with motia_logging(context.logger):
        outcomes = await handle_sync_event(data, open_runtime)
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.result.value] = counts.get(o.result.value, 0) + 1
    context.logger.info(
        "sync finished",
        {
            "records": len(outcomes),
            "counts": counts,
            "results": {o.record_id: o.result.value for o in outcomes},
        },
    )
