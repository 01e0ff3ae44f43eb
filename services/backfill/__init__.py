"""First run: link the pairs that already exist in both systems, then create only what is
really missing (docs/backfill.md). The identity rule (when two records are the same party)
is services/beteiligte/identity.py, shared with the live sync.

    matching.py  both databases -> linked / ambiguous / only on one side / conflicts (pure)
    plan.py      read + match -> actions (an enum), per-pair dry-run plans
    items.py     the EspoCRM writes of single items (hold, release, link, create in EspoCRM)
    state.py     the backfill lock, the run record, checkpoints
    runner.py    `Backfill`: phases, checkpoints, resume; syncs through the engine
"""
