"""Profile the sync handler's per-record work (pyinstrument), outside Motia:

    python_modules/bin/python -m bench.profile [--records 400] [--latency-ms 0] [--batch 100]

Starts the stack (real Redis, simulators; Motia too, but it stays idle), changes the records in
EspoCRM as a person would, then runs `services.sync.dispatch.handle_sync_event` in THIS process
for batches of `--batch` ids, exactly as the Motia step would, under pyinstrument. Prints CPU
milliseconds per record (this process, and the simulators') and the profile. Process start-up
is not in it: measure that with `python -X importtime` (see docs/performance.md).

Needs pyinstrument (dev tool, not a service dependency): python_modules/bin/pip install pyinstrument==5.1.3
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.harness import bench_stack, bulk_espo_edit, log
from bench.meters import cpu_seconds


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    p.add_argument("--records", type=int, default=400)
    p.add_argument("--latency-ms", type=int, default=0)
    p.add_argument("--batch", type=int, default=100, help="ids per handler call (SYNC_CHECK_BATCH)")
    p.add_argument("--cap", type=int, default=4)
    p.add_argument("--html", help="also write the pyinstrument HTML report here")
    a = p.parse_args()
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit(
            "pyinstrument is not installed: python_modules/bin/pip install pyinstrument==5.1.3"
        ) from None

    env = {"ADVOWARE_MAX_CONCURRENCY": str(a.cap)}
    with bench_stack(
        Path(tempfile.mkdtemp(prefix="vmh-profile-")),
        records=a.records,
        latency_ms=a.latency_ms,
        extra_env=env,
        webhooks=False,
    ) as b:
        os.environ.update({k: v for k, v in b.stack.env.items() if isinstance(v, str)})
        b.set_latency(0)
        bulk_espo_edit(b, [(rid, {"titel": "Dr.", "syncStatus": "dirty"}) for rid in b.ids])
        b.set_latency(a.latency_ms)
        from services.runtime import open_runtime
        from services.sync.dispatch import handle_sync_event

        ids = b.ids

        async def run() -> None:
            await asyncio.gather(
                *(
                    handle_sync_event({"ids": ids[i : i + a.batch], "trigger": "sync_check"}, open_runtime)
                    for i in range(0, len(ids), a.batch)
                )
            )

        sandbox_before = sum(cpu_seconds(b.stack.procs["sandbox"].pid))
        profiler = Profiler(async_mode="enabled")
        t0, c0 = time.monotonic(), time.process_time()
        profiler.start()
        asyncio.run(run())
        profiler.stop()
        wall, cpu = time.monotonic() - t0, time.process_time() - c0
        sandbox = sum(cpu_seconds(b.stack.procs["sandbox"].pid)) - sandbox_before
        n = len(ids)
        log(
            f"{n} records in {wall:.1f}s ({n / wall:.1f}/s): handler CPU {1000 * cpu / n:.1f} ms/record "
            f"(with profiler overhead), simulators {1000 * sandbox / n:.1f} ms/record"
        )
        print(profiler.output_text(unicode=False, color=False))
        if a.html:
            Path(a.html).write_text(profiler.output_html())


if __name__ == "__main__":
    main()
