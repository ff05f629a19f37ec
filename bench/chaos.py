"""Chaos benchmark: the five chaos scenarios of the public PostgreSQL job-queue benchmark
(PostgreSQL restarted, the service's backends terminated, a worker crash, repeated worker kills,
a long transaction holding back vacuum), each measured against its own clean run.

Run it from the repository root (it needs PostgreSQL's server binaries, ``initdb`` and
``pg_ctl``; it never touches another server)::

    .venv/bin/python bench/chaos.py
    .venv/bin/python bench/chaos.py --scenarios postgres-restart --fault-s 20
    .venv/bin/python bench/chaos.py --help

For each scenario, in a new database of a PostgreSQL cluster made for the run (``initdb`` in a
temporary folder, ``pg_ctl`` on a free loopback port; as the ``nobody`` user when run as root):
``--tasks`` no-op tasks are enqueued, ``--workers`` ``python -m mediatasks worker`` processes
start, and after ``--warmup-s`` the clean window (``--clean-s``) is measured; then the fault
lasts ``--fault-s``; the window after it starts ``--settle-s`` after the fault ends and is as long
as the clean one.  Then the workers finish the backlog and the database is checked: every task
completed (lost: those that did not), each completion recorded once (twice: those recorded more),
and how many tasks were claimed again (an attempt the fault cut, run again: at-least-once).

Printed per run: the clean throughput, the throughput after the fault, their ratio (the aim
is at least 95 %), lost, twice, claimed again, the seconds from the fault's end to the first
completion (resumed) and to the first 1 s window at 95 % of the clean throughput (recovered).
With ``--repeat N`` every scenario runs N times (in rounds: each round runs every scenario once)
and a summary gives each scenario's median ratio and its range, next to the control's: a 1 s
window of no-op tasks on 2 cores moves by 10 % from one second to the next, so one 8 s window
against another can miss 95 % by chance, and the median of several runs says what the fault
costs.
The cluster and its folder are removed at the end, also on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import mediatasks  # noqa: E402
from tests.chaos import harness  # noqa: E402


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="The chaos scenarios against mediatasks worker processes on PostgreSQL.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--scenarios", nargs="+", choices=list(harness.RUNS), default=list(harness.RUNS)
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=500_000,
        help="no-op tasks per scenario (the backlog must outlast the windows on a quiet machine)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each scenario, in rounds (see above)"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--concurrency", type=int, default=50, help="tasks per worker at once")
    parser.add_argument("--sleep-s", type=float, default=0.0, help="each no-op task's sleep")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument("--clean-s", type=float, default=8.0)
    parser.add_argument("--fault-s", type=float, default=8.0)
    parser.add_argument(
        "--settle-s", type=float, default=3.0, help="from the fault's end to the window after it"
    )
    parser.add_argument("--kill-rate", type=float, default=2.0, help="backend-kill: per second")
    parser.add_argument(
        "--kill-period-s",
        type=float,
        default=2.0,
        help="repeated-kills: from a new worker's start to the next kill",
    )
    return parser.parse_args(argv)


def _s(value: float | None) -> str:
    return "never" if value is None else f"{value:.2f}"


def report(results: Sequence[harness.Result], args: argparse.Namespace, load: str) -> str:
    lines = [
        f"mediatasks {mediatasks.__version__}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; load average before the run {load}",
        f"{args.workers} worker processes x {args.concurrency}, no-op tasks"
        + (f" sleeping {args.sleep_s:g} s" if args.sleep_s else "")
        + f"; clean window {args.clean_s:g} s after {args.warmup_s:g} s of warm-up, fault "
        f"{args.fault_s:g} s, window after it {args.clean_s:g} s from {args.settle_s:g} s after "
        "its end",
        "",
        "| scenario | clean /s | after /s | ratio | lost | twice | claimed again | resumed s "
        "| recovered s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ok = "" if r.ratio >= 0.95 else " (below 95 %)"
        lines.append(
            f"| {r.scenario} | {r.clean_per_s:,.0f} | {r.after_per_s:,.0f} | {r.ratio:.0%}{ok} "
            f"| {r.lost} | {r.twice} | {r.claimed_again} | {_s(r.resumed_s)} "
            f"| {_s(r.recovered_s)} |"
        )
    if args.repeat > 1:
        lines += [
            "",
            f"Each scenario's ratio over its {args.repeat} runs:",
            "",
            "| scenario | median ratio | range | lost | twice |",
            "|---|---:|---:|---:|---:|",
        ]
        for name in dict.fromkeys(r.scenario for r in results):
            mine = [r for r in results if r.scenario == name]
            ratios = sorted(r.ratio for r in mine)
            median = statistics.median(ratios)
            ok = "" if median >= 0.95 else " (below 95 %)"
            lines.append(
                f"| {name} | {median:.0%}{ok} | {ratios[0]:.0%}-{ratios[-1]:.0%} "
                f"| {sum(r.lost for r in mine)} | {sum(r.twice for r in mine)} |"
            )
    lines.append("")
    for r in results:
        because = ", ".join(f"{n} {why}" for why, n in sorted(r.rescued_because.items()))
        lines.append(f"- {r.scenario}: {r.fault_detail}; taken back: {because or 'none'}")
        if r.backlog_left == 0:
            lines.append("  - the backlog ran out before the window ended: raise --tasks")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    config = harness.Config(
        tasks=args.tasks,
        workers=args.workers,
        concurrency=args.concurrency,
        sleep_s=args.sleep_s,
        warmup_s=args.warmup_s,
        clean_s=args.clean_s,
        fault_s=args.fault_s,
        settle_s=args.settle_s,
        kill_rate=args.kill_rate,
        kill_period_s=args.kill_period_s,
        drain_timeout_s=60 + args.tasks / 100,
    )
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="mediatasks-chaos-") as tmp,
        harness.own_cluster() as pg,
    ):
        print(f"enqueuing {args.tasks} tasks ...", file=sys.stderr, flush=True)
        backlog = harness.prepare_backlog(pg, config)
        rounds = [name for _ in range(args.repeat) for name in args.scenarios]
        for name in rounds:
            print(f"{name} ...", file=sys.stderr, flush=True)
            result = harness.run_scenario(pg, name, config, Path(tmp) / name, backlog)
            print(
                f"  clean {result.clean_per_s:.0f}/s, after {result.after_per_s:.0f}/s "
                f"({result.ratio:.0%}), lost {result.lost}, twice {result.twice}",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    after = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(report(results, args, load))
    print(f"\nload average after the run: {after}")
    return 0 if all(r.lost == 0 and r.twice == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
