"""`make fuzz`: the deep profile of the stateful machines (tests/fuzz),
split into one shard per core.

Each shard of each test file is its own pytest process, with its own
hypothesis seed and ``FUZZ_EXAMPLES = examples / jobs``, so together the
shards run `examples` per machine; `jobs` processes run at a time, one test
file after the other, so a crash loses only its own counts. (A machine used
to slow down after another in the same process, and each example after the
last: boa's trace of storage keys grew; `StorageKeyTrace` in
tests/utils/protocol.py now resets it at each example.) Each process writes
its counts (tests/fuzz/stats.py) to ``out/fuzz/<file>-shard-K.json`` (and
its live counts to ``<...>.json.progress``); the summary adds them up and says
whether every invariant held. Exit status: 0 only if every shard passed and
every machine ran.

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
    # one process per (test path, shard): a crash loses only its own counts
    paths = args.pytest_args or sorted(
        str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "fuzz").glob("test_*.py")
    )
    tasks = [(path, k) for path in paths for k in range(jobs)]
    started = time.monotonic()
    deadline = started + args.time_limit * 60 if args.time_limit is not None else None
    running: list = []
    done: list = []
    stopped = False
    try:
        while tasks or running:
            if deadline is not None and time.monotonic() > deadline:
                stopped = True
                break
            for task in [t for t in running if t[3].poll() is not None]:
                running.remove(task)
                done.append(task)
            while tasks and len(running) < jobs:
                path, k = tasks.pop(0)
                running.append(_start(path, k, args, jobs, out))
            time.sleep(1)
    except KeyboardInterrupt:
        stopped = True
    for task in running:
        if task[3].poll() is None:
            task[3].send_signal(signal.SIGTERM)
    done += running
    total: Counter = Counter()
    outcomes: dict[str, Counter] = {}
    failed = []
    for _path, _k, stats_file, proc, log in done:
        code = proc.wait()
        log.close()
        if stats_file.exists():
            for machine, counts in json.loads(stats_file.read_text()).items():
                if machine == "_tests":
                    for test, outcome in counts.items():
                        outcomes.setdefault(test, Counter())[outcome] += 1
                    continue
                for what, n in counts.items():
                    total[(machine, what)] += n
        if code != 0 and not stopped:
            failed.append((log.name, code))
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
        for log_name, code in failed:
            print(f"a shard FAILED (exit {code}): see {log_name}")
        if not machines:
            print("no machine ran")
        return 1
    print("all invariants held after every step")
    return 0


def _start(path: str, k: int, args, jobs: int, out: Path) -> tuple:
    """Shard `k` of the tests at `path`: a pytest process with its share of
    the examples and its own seed; (path, k, stats file, process, log)."""
    share = args.examples // jobs + (1 if k < args.examples % jobs else 0)
    name = f"{Path(path.split('::')[0]).stem}-shard-{k}"
    stats_file = out / f"{name}.json"
    stats_file.unlink(missing_ok=True)
    Path(f"{stats_file}.progress").unlink(missing_ok=True)  # live counts, tests/fuzz/stats.py
    log = open(out / f"{name}.log", "w")  # noqa: SIM115 - closed by main
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
        path,
        f"--hypothesis-seed={args.seed + k}",
    ]
    print(f"{path} shard {k}: {share:,} examples, seed {args.seed + k}, log {log.name}", flush=True)
    return (
        path,
        k,
        stats_file,
        subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT),
        log,
    )


if __name__ == "__main__":
    sys.exit(main())
