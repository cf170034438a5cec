"""`make fuzz`: the deep profile of the stateful machines (tests/fuzz),
split into one shard per core.

Each shard is a pytest process with its own hypothesis seed and
``FUZZ_EXAMPLES = examples / jobs``, so together they run `examples` per
machine. Each shard writes its counts (tests/fuzz/stats.py) to
``out/fuzz/shard-K.json``; the summary adds them up and says whether every
invariant held. Exit status: 0 only if every shard passed and every machine
ran.

    .venv/bin/python scripts/fuzz.py                 # 2,000 examples per machine, one shard per core
    .venv/bin/python scripts/fuzz.py --examples 200  # a shorter run
    .venv/bin/python scripts/fuzz.py --jobs 1        # one process
    .venv/bin/python scripts/fuzz.py --time-limit 60 # stop after an hour, report what finished

The counts are rewritten after every test, so a run stopped midway (time
limit, Ctrl-C) still reports the tests that finished; it exits 1 all the same.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out" / "fuzz"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--examples",
        type=int,
        default=int(os.environ.get("FUZZ_EXAMPLES", "2000")),
        help="examples per machine, over all shards (default 2,000, or $FUZZ_EXAMPLES)",
    )
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel shards (default: cores)")
    ap.add_argument("--seed", type=int, default=0, help="shard k uses hypothesis seed SEED + k")
    ap.add_argument("--time-limit", type=float, help="minutes; then stop the shards and report what finished")
    ap.add_argument(
        "--out", type=Path, default=OUT, help=f"logs and counts (default {OUT.relative_to(ROOT)})"
    )
    ap.add_argument("pytest_args", nargs="*", help="test paths or selectors (default tests/fuzz)")
    args = ap.parse_args(argv)
    if args.examples < 1 or args.jobs < 1:
        ap.error("--examples and --jobs must be at least 1")
    if args.time_limit is not None and args.time_limit <= 0:
        ap.error("--time-limit must be positive")
    jobs = min(args.jobs, args.examples)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    procs = []
    started = time.monotonic()
    for k in range(jobs):
        share = args.examples // jobs + (1 if k < args.examples % jobs else 0)
        stats_file = out / f"shard-{k}.json"
        stats_file.unlink(missing_ok=True)
        Path(f"{stats_file}.progress").unlink(missing_ok=True)  # live counts, tests/fuzz/stats.py
        log = open(out / f"shard-{k}.log", "w")  # noqa: SIM115 - closed below
        env = os.environ | {
            "HYPOTHESIS_PROFILE": "deep",
            "FUZZ_EXAMPLES": str(share),
            "FUZZ_STATS_FILE": str(stats_file),
        }
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            *(args.pytest_args or ["tests/fuzz"]),
            f"--hypothesis-seed={args.seed + k}",
        ]
        print(f"shard {k}: {share:,} examples per machine, seed {args.seed + k}, log {log.name}", flush=True)
        procs.append((k, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    deadline = started + args.time_limit * 60 if args.time_limit is not None else None
    stopped = False
    try:
        while any(proc.poll() is None for _, proc, _ in procs):
            if deadline is not None and time.monotonic() > deadline:
                stopped = True
                break
            time.sleep(1)
    except KeyboardInterrupt:
        stopped = True
    if stopped:
        for _, proc, _ in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
    total: Counter = Counter()
    outcomes: dict[str, Counter] = {}
    failed = []
    for k, proc, log in procs:
        code = proc.wait()
        log.close()
        stats_file = out / f"shard-{k}.json"
        if stats_file.exists():
            for machine, counts in json.loads(stats_file.read_text()).items():
                if machine == "_tests":
                    for test, outcome in counts.items():
                        outcomes.setdefault(test, Counter())[outcome] += 1
                    continue
                for what, n in counts.items():
                    total[(machine, what)] += n
        if code != 0 and not stopped:
            failed.append((k, code))
    minutes = (time.monotonic() - started) / 60
    print(f"\nstateful fuzzing, deep profile: {jobs} shard(s), {minutes:.1f} min")
    for test, seen in sorted(outcomes.items()):
        print(f"  {test}: " + ", ".join(f"{what} on {n} shard(s)" for what, n in sorted(seen.items())))
    machines = sorted({m for m, _ in total})
    for m in machines:
        print(f"{m}: {total[(m, 'examples')]:,} examples, {total[(m, 'steps')]:,} steps checked")
    broken = any("passed" not in seen or len(seen) > 1 for seen in outcomes.values())
    if stopped:
        print(
            f"STOPPED after {minutes:.1f} min: the counts above are the tests that finished, not a full run"
        )
        return 1
    if failed or broken or not machines or any(total[(m, "examples")] == 0 for m in machines):
        for k, code in failed:
            print(f"shard {k} FAILED (exit {code}): see {out / f'shard-{k}.log'}")
        if not machines:
            print("no machine ran")
        return 1
    print("all invariants held after every step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
