"""SIGTERM (SLURM, Kubernetes, ``timeout``): runs end ``interrupted``/``SIGTERM`` with nothing lost,
and the process then ends as it would have without epochline."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

import epochline

# The child reports each step after logging it; the parent stops it after step 50. A long flush
# interval means that, without the handler, the points since the start would all be lost.
LOOP = """
import os, signal, sys, time
import epochline
{setup}
run = epochline.init("pre", emit="progress", flush_interval=60)
print("run", run.id, flush=True)
for step in range(10**9):
    run.log({{"x": float(step)}}, step=step)
    if step == 50:
        os.kill(os.getpid(), signal.SIGTERM)  # delivered to this (main) thread before the next line
    print("step", step, flush=True)
"""


def _run(tmp_path, setup=""):
    script = tmp_path / "loop.py"
    script.write_text(LOOP.format(setup=textwrap.dedent(setup)))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
    )


def _stored(run_id):
    with epochline.open() as store:
        view = store.run(run_id)
        return view.status, view.reason, [s for _, s, _ in view.metrics("x")]


def test_sigterm_finishes_the_run_flushes_and_dies_of_sigterm(store_dir, tmp_path):
    proc = _run(tmp_path)
    assert proc.returncode == -signal.SIGTERM, proc.stderr  # as without epochline
    lines = proc.stdout.splitlines()
    run_id = lines[0].split()[1]
    assert lines[-1] == 'PROGRESS: {"epoch": 0, "status": "interrupted"}'
    assert "step 50" not in lines  # the process ended inside the signal, as the default action does
    status, reason, steps = _stored(run_id)
    assert (status, reason) == ("interrupted", "SIGTERM")
    assert steps == list(range(51))  # every point logged before the signal


def test_a_handler_installed_before_is_chained(store_dir, tmp_path):
    proc = _run(
        tmp_path,
        """
        def mine(signum, frame):
            print("user handler", flush=True)
            sys.exit(3)
        signal.signal(signal.SIGTERM, mine)
    """,
    )
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-2:] == ['PROGRESS: {"epoch": 0, "status": "interrupted"}', "user handler"]
    assert _stored(lines[0].split()[1])[:2] == ("interrupted", "SIGTERM")


def test_an_ignored_sigterm_stays_ignored(store_dir, tmp_path):
    script = tmp_path / "ign.py"
    script.write_text(
        "import os, signal, epochline\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "with epochline.init('ign') as run:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    run.log({'x': 1.0})\n"
        "print(run.id)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert _stored(proc.stdout.split()[-1]) == ("completed", None, [0])


LIGHTNING = """
import os, signal
import torch
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as pl
from lightning.pytorch.plugins.environments import SLURMEnvironment
from epochline.integrations.lightning import KoguLogger

class Model(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 2)
    def training_step(self, batch, i):
        if self.current_epoch == 1 and i == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the cluster preempts the job
        x, y = batch
        loss = torch.nn.functional.cross_entropy(self.layer(x), y)
        self.log("loss", loss, on_epoch=True, on_step=False)
        return loss
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

g = torch.Generator().manual_seed(0)
data = TensorDataset(torch.randn(64, 4, generator=g), torch.randint(0, 2, (64,), generator=g))
logger = KoguLogger(path="pre/lightning")
trainer = pl.Trainer(max_epochs=5, logger=logger, plugins=[SLURMEnvironment(auto_requeue=True)],
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
print("run", logger.version, flush=True)
trainer.fit(Model(), DataLoader(data, batch_size=8))
print("fit returned", flush=True)
"""


@pytest.mark.slow
def test_lightning_slurm_signal_handling_in_place(store_dir, tmp_path):
    pytest.importorskip("lightning")
    script = tmp_path / "fit.py"
    script.write_text(LIGHTNING)
    env = {
        **os.environ,
        "SLURM_JOB_ID": "1",
        "SLURM_NTASKS": "1",
        "SLURM_JOB_NAME": "train",
        "SLURM_PROCID": "0",
        "SLURM_LOCALID": "0",
        "SLURM_NODEID": "0",
    }
    proc = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    lines = proc.stdout.splitlines()
    run_id = lines[0].split()[1]
    with epochline.open() as store:
        view = store.run(run_id)
        assert (view.status, view.reason) == ("interrupted", "SIGTERM"), proc.stderr[-3000:]
        assert [e["epoch"] for e in view.epochs()] == [1]  # epoch 1 was complete; nothing lost
    progress = [json.loads(l[len("PROGRESS: ") :]) for l in lines if l.startswith("PROGRESS: ")]
    assert [p["status"] for p in progress] == ["training", "interrupted"]  # one final line
    assert sum('"fail"' in l for l in lines) == 1
    # Lightning stopped the fit gracefully (SIGTERMException, a SystemExit): the process ends as
    # it does without epochline
    assert "fit returned" not in lines
