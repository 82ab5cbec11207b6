"""Three seeds of two configurations of the quickstart model, then their aggregate.

    python examples/seeds.py                 # 2 learning rates x 3 seeds into ./epochline-runs
    epochline aggregate --path quickstart --metric val_accuracy
    epochline plot quickstart --metric val_accuracy --x epoch --group -o seeds.png

Each run is ``examples/quickstart.py`` in its own process, as a sweep script would start them.
The quickstart marks ``seed`` as a param that does not count (``ignore_params``), so runs that
differ only by seed share a fingerprint and ``epochline aggregate`` groups them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

QUICKSTART = Path(__file__).with_name("quickstart.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.1, 0.02])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--store", default=None, help="store directory (default ./epochline-runs)")
    args = parser.parse_args()
    for lr in args.lr:
        for seed in args.seeds:
            command = [
                sys.executable,
                str(QUICKSTART),
                "--lr",
                str(lr),
                "--seed",
                str(seed),
                "--epochs",
                str(args.epochs),
            ]
            if args.store:
                command += ["--store", args.store]
            print(f"lr={lr} seed={seed}", flush=True)
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
