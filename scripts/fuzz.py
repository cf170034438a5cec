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
"""

from __future__ import annotations

import argparse
import json
import os
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
    args = ap.parse_args(argv)
    if args.examples < 1 or args.jobs < 1:
        ap.error("--examples and --jobs must be at least 1")
    jobs = min(args.jobs, args.examples)
    OUT.mkdir(parents=True, exist_ok=True)
    procs = []
    started = time.monotonic()
    for k in range(jobs):
        share = args.examples // jobs + (1 if k < args.examples % jobs else 0)
        stats_file = OUT / f"shard-{k}.json"
        stats_file.unlink(missing_ok=True)
        log = open(OUT / f"shard-{k}.log", "w")  # noqa: SIM115 - closed below
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
            "tests/fuzz",
            f"--hypothesis-seed={args.seed + k}",
        ]
        print(f"shard {k}: {share:,} examples per machine, seed {args.seed + k}, log {log.name}", flush=True)
        procs.append((k, subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    total: Counter = Counter()
    failed = []
    for k, proc, log in procs:
        code = proc.wait()
        log.close()
        stats_file = OUT / f"shard-{k}.json"
        if stats_file.exists():
            for machine, counts in json.loads(stats_file.read_text()).items():
                for what, n in counts.items():
                    total[(machine, what)] += n
        if code != 0:
            failed.append((k, code))
    minutes = (time.monotonic() - started) / 60
    print(f"\nstateful fuzzing, deep profile: {jobs} shard(s), {minutes:.1f} min")
    machines = sorted({m for m, _ in total})
    for m in machines:
        print(f"{m}: {total[(m, 'examples')]:,} examples, {total[(m, 'steps')]:,} steps checked")
    if failed or not machines or any(total[(m, "examples")] == 0 for m in machines):
        for k, code in failed:
            print(f"shard {k} FAILED (exit {code}): see {OUT / f'shard-{k}.log'}")
        if not machines:
            print("no machine ran")
        return 1
    print("all invariants held after every step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
