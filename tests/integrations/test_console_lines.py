"""Protocol lines stay whole and at column 0 while another thread prints (issue 13).

The transformers Trainer prints ``{'loss': ...}`` dicts from the training loop while the emitters
print from the dispatcher thread; ``print`` is two writes, so a line could land between them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import epochline

PROTOCOL_MARKERS = ("PROGRESS:", '{"metric"', '{"parameters"', '{"plot"', '{"name"', '{"tag"')


def check_whole(out: str) -> int:
    """Every protocol text starts a line and is valid JSON; returns how many there were."""
    count = 0
    for line in out.splitlines():
        for marker in PROTOCOL_MARKERS:
            at = line.find(marker)
            assert at in (-1, 0), f"protocol text not at column 0: {line!r}"
        if line.startswith("PROGRESS: "):
            json.loads(line[len("PROGRESS: ") :])
            count += 1
        elif line.startswith('{"'):
            json.loads(line)
            count += 1
    return count


def test_lines_are_whole_while_another_thread_prints(store_dir, capsys):
    for _ in range(20):
        stop = threading.Event()

        def chatter(stop=stop):
            while not stop.is_set():
                print({"loss": "0.15", "epoch": "10.5"})

        thread = threading.Thread(target=chatter)
        try:
            with epochline.init("console/lines", emit="kogu,progress", total_epochs=5) as run:
                thread.start()  # the training prints once the run has started
                for epoch in range(1, 6):
                    run.log({"loss": 1.0 / epoch}, step=epoch)
                    run.end_epoch(epoch, {"loss": 1.0 / epoch, "val_accuracy": 0.5})
        finally:
            stop.set()
            thread.join()
        assert check_whole(capsys.readouterr().out) >= 6


SCRIPT = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, os.path.dirname({tests!r}))  # tests/: linecheck, and integrations as a package
    from integrations.test_transformers import make_trainer
    from pathlib import Path
    from epochline.integrations.transformers import TrackerCallback
    trainer = make_trainer(Path({tmp!r}), [TrackerCallback(path="console/hf")], n_train=32, n_val=16,
                           num_train_epochs=2, logging_steps=1, per_device_train_batch_size=8)
    for i in range(20):
        trainer.train()  # each train() is a run of its own
""")


@pytest.mark.slow
def test_transformers_trainer_prints_between_our_lines(store_dir, tmp_path):
    pytest.importorskip("transformers")
    pytest.importorskip("accelerate")
    tests = os.path.dirname(__file__)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EPOCHLINE_STORE": str(store_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(tests=tests, tmp=str(tmp_path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "{'loss'" in proc.stdout  # the Trainer did print between our lines
    assert check_whole(proc.stdout) >= 20 * 3
    assert len(epochline.open(store_dir).runs()) == 20
