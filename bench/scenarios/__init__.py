"""The figures of issue 9, one module per scenario family: edits (2, 4), webhook_ack (1),
reconcile (3, 6), sweep_cost (5), deletion_scan (7); calls counts the service's API calls. Each
scenario takes a running `Bench` and returns a dict of measurements; none of them raises because
of speed (only because the setup broke)."""
