"""What does epochline cost a script, and the CLI, before they do anything?

Each variant is a fresh interpreter, timed from start to exit; every repetition runs all variants
once, in an order that rotates from one repetition to the next (the paired protocol of paired.py),
so that the load of a shared machine hits them alike:

* baseline   - ``python -c pass``: the interpreter alone;
* import     - ``python -c "import epochline"``;
* first use  - ``import epochline; epochline.init; epochline.open``: everything a training script
               loads before its first run (the package loads its modules on first use, so this is
               where the cost of msgspec, pluggy and the store code is paid);
* cli help   - ``epochline --help`` (the console script next to this interpreter).

Reported: median milliseconds, the median over repetitions of the time added to the baseline of
the same repetition, and the median ratio to it. Targets (issue 11): ``import epochline`` adds at
most 30 ms, ``epochline --help`` takes at most 150 ms. Also printed: ``-X importtime``'s own figure
for ``import epochline`` (the module's cumulative import time, microseconds).

Run: ``python benchmarks/bench_import.py [--reps N] [--python before=/path/to/other/python]``
(CI runs ``--reps 1`` as a smoke test).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

IMPORT_TARGET_MS = 30.0
HELP_TARGET_MS = 150.0


def _variants(others: List[str]) -> Dict[str, List[str]]:
    variants = {"baseline": [sys.executable, "-c", "pass"]}
    for label, py in [("", sys.executable)] + [tuple(o.split("=", 1)) for o in others]:  # type: ignore[misc]
        script = os.path.join(os.path.dirname(py), "epochline")
        cli = [script] if os.path.exists(script) else [py, "-m", "epochline"]
        suffix = f" ({label})" if label else ""
        variants[f"import{suffix}"] = [py, "-c", "import epochline"]
        variants[f"first use{suffix}"] = [py, "-c", "import epochline; epochline.init; epochline.open"]
        variants[f"cli help{suffix}"] = [*cli, "--help"]
    return variants


def _seconds(cmd: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def _importtime_us() -> int:
    """``-X importtime``'s cumulative microseconds for ``import epochline`` (median of three)."""
    values = []
    for _ in range(3):
        err = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import epochline"],
            capture_output=True,
            text=True,
            check=True,
        ).stderr
        line = next(x for x in reversed(err.splitlines()) if x.rstrip().endswith("| epochline"))
        values.append(int(line.split("|")[1]))
    return int(statistics.median(values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument(
        "--python",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="also time another interpreter's epochline in the same run (e.g. "
        "before=/tmp/old/.venv/bin/python), paired with the same baseline",
    )
    args = parser.parse_args()
    variants = _variants(args.python)
    names = list(variants)
    for name in names:  # warm the file cache (and .pyc files): not measured
        _seconds(variants[name])
    times: Dict[str, List[float]] = {n: [] for n in names}
    for rep in range(args.reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            times[name].append(_seconds(variants[name]))
    base = times["baseline"]
    print(f"python {sys.version.split()[0]}, {args.reps} reps, paired (rotating order)")
    width = max(len(n) for n in names) + 2
    print(f"{'variant':<{width}}{'median ms':>11}{'added ms':>10}{'x baseline':>12}")
    for name in names:
        added = statistics.median((t - b) * 1000 for t, b in zip(times[name], base))
        ratio = statistics.median(t / b for t, b in zip(times[name], base))
        print(f"{name:<{width}}{statistics.median(times[name]) * 1000:>11.1f}{added:>10.1f}{ratio:>12.2f}")
    imported = statistics.median((t - b) * 1000 for t, b in zip(times["import"], base))
    helped = statistics.median(times["cli help"]) * 1000
    print(f"-X importtime, import epochline: {_importtime_us() / 1000:.1f} ms")
    print(
        f"targets: import adds <= {IMPORT_TARGET_MS:.0f} ms ({'met' if imported <= IMPORT_TARGET_MS else 'NOT met'}), "
        f"epochline --help <= {HELP_TARGET_MS:.0f} ms ({'met' if helped <= HELP_TARGET_MS else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
