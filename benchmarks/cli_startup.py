"""How long `collabkit` takes before it does anything: --version, --help, a light command.

    .venv/bin/python benchmarks/cli_startup.py            # 7 runs each, prints a table
    .venv/bin/python benchmarks/cli_startup.py --runs 11 --json

Issue 8's target: ``--version`` and ``--help`` under 0.5 s (torch used to be imported before
the arguments were parsed: 5-10 s per call). Each command runs as a fresh process, the way a
user types it; the table gives the median and the fastest of the runs, and each median as a
multiple of a bare ``python -c pass`` (the interpreter's own start-up) and of the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

TARGET_S = 0.5
ROOT = Path(__file__).resolve().parent.parent
COMMANDS: tuple[tuple[str, list[str]], ...] = (
    ("python -c pass", ["-c", "pass"]),
    ("collabkit --version", ["-m", "collabkit", "--version"]),
    ("collabkit --help", ["-m", "collabkit", "--help"]),
    ("collabkit train --help", ["-m", "collabkit", "train", "--help"]),
    ("collabkit datasets path ml-latest-small", ["-m", "collabkit", "datasets", "path",
                                                 "ml-latest-small"]),
    ("collabkit datasets list", ["-m", "collabkit", "datasets", "list"]),
)


def _time(args: list[str], runs: int) -> list[float]:
    env = {**os.environ, "COLUMNS": "100"}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - t0)
    return times


def run(runs: int = 7) -> dict[str, Any]:
    """Median and best wall clock of each command over ``runs`` fresh processes."""
    _time(COMMANDS[1][1], 1)  # warm the file cache once
    rows = []
    for label, args in COMMANDS:
        times = _time(args, runs)
        rows.append({"command": label, "median_s": statistics.median(times),
                     "best_s": min(times), "runs": runs})
    base = rows[0]["median_s"]
    for row in rows:
        row["x_python"] = row["median_s"] / base
        row["x_target"] = row["median_s"] / TARGET_S
    return {"rows": rows, "target_s": TARGET_S, "load_average": os.getloadavg()[0]}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| command | median s | best s | × python start | × 0.5 s target |",
             "|---|---:|---:|---:|---:|"]
    for r in result["rows"]:
        lines.append(f"| `{r['command']}` | {r['median_s']:.3f} | {r['best_s']:.3f} | "
                     f"{r['x_python']:.1f} | {r['x_target']:.2f} |")
    lines.append(f"\n{result['rows'][0]['runs']} fresh processes each; load average "
                 f"{result['load_average']:.1f} at the end.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.runs)
    print(json.dumps(result, indent=1) if args.json else markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
