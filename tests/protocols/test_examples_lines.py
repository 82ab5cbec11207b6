"""The examples, run as users run them with the emitters on: nothing they print poisons a legacy
parser, and they leave no files behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .test_final_record import AIMANAGE_LEGACY

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_prints_nothing_a_legacy_parser_reads(store_dir, tmp_path):
    before = set(os.listdir(tmp_path))
    env = {**os.environ, "EPOCHLINE_EMIT": "kogu,progress", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py"), "--epochs", "2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert sum(l.startswith("PROGRESS:") for l in lines) == 3
    assert lines[-1].startswith("PROGRESS:") and '"status": "completed"' in lines[-1]  # the last line
    for line in lines:
        for pattern in AIMANAGE_LEGACY:
            assert not pattern.search(line), (pattern.pattern, line)
    assert set(os.listdir(tmp_path)) - before - {"store"} == set()  # only the store; no temp files
