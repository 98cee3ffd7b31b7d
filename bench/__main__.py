"""Run every benchmark, print the figures and ratios, exit 1 when a target is missed.

.venv/bin/python -m bench
    [--only webhook,webhook-gthread,loop,loop-bulk,sending,fanout,contacts,fanout-page]
    [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import contacts_list, fanout, loop, sending, webhook
from bench.common import Target, idle_share, log, print_table

BENCHMARKS = (
    "webhook",
    "webhook-gthread",
    "loop",
    "loop-bulk",
    "sending",
    "fanout",
    "contacts",
    "fanout-page",
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--seconds", type=int, default=30, help="length of each wrk run")
    parser.add_argument(
        "--contacts", type=int, default=100_000, help="fan-out and contacts list contacts"
    )
    parser.add_argument("--rows", type=int, default=2000, help="rows for the sending benchmark")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")

    idle = idle_share()
    print(f"Machine before the run: {idle:.0%} idle over 2 s, {os.cpu_count()} cores")
    if idle < 0.9:
        print("  WARNING: something else is using the CPU; figures and ratios will be unreliable")
    started = time.monotonic()
    targets: list[Target] = []
    for name in chosen:
        try:
            if name == "webhook":
                targets += webhook.run(seconds=args.seconds)
            elif name == "webhook-gthread":
                targets += webhook.run(seconds=args.seconds, settings=webhook.GTHREAD_ARGS)
            elif name == "loop":
                targets += loop.run(seconds=min(args.seconds, 20))
            elif name == "loop-bulk":
                targets += loop.run_beside_bulk(seconds=min(args.seconds, 20))
            elif name == "sending":
                targets += sending.run(rows=args.rows)
            elif name == "contacts":
                targets += contacts_list.run(contacts=args.contacts)
            elif name == "fanout-page":
                targets += fanout.run_page(contacts=args.contacts)
            else:
                targets += fanout.run(contacts=args.contacts)
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            log(f"{name}: {type(exc).__name__}: {exc}")
            targets.append(Target(f"{name} ran", False, f"{type(exc).__name__}: {exc}"))

    elapsed = time.monotonic() - started
    print(f"\nMachine after the run: {idle_share():.0%} idle over 2 s")
    print_table(
        f"Targets ({elapsed / 60:.1f} min)",
        ["", "target", "measured"],
        [("PASS" if t.passed else "FAIL", t.name, t.detail) for t in targets],
    )
    missed = [t for t in targets if not t.passed]
    print(f"\n{len(targets) - len(missed)} passed, {len(missed)} failed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
