"""A real DDP failure (issue 13): ``strategy="ddp_spawn"``, 2 CPU processes (gloo), rank 1 raises
in ``training_step`` during epoch 2. It runs as a script in a subprocess (spawned workers need an
importable ``__main__``), so what is checked is exactly what a user's process prints and stores.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

try:
    import lightning.pytorch  # noqa: F401
except ImportError:  # only the old package name is installed (tox env pl-*)
    pytest.importorskip("pytorch_lightning")

import torch.distributed  # noqa: E402

from linecheck import protocol_lines  # noqa: E402

SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {here!r})  # tests/integrations: the digits model and data
    from lightning_models import DigitsData, DigitsMLP, _L as L, trainer_kwargs
    from epochline.integrations.lightning import KoguLogger


    class BoomOnRank1(DigitsMLP):  # module level: ddp_spawn pickles it into the workers
        def training_step(self, batch, batch_idx):
            if self.global_rank == 1 and self.current_epoch == 1 and batch_idx == 2:
                raise ValueError("boom on rank 1")
            return super().training_step(batch, batch_idx)


    if __name__ == "__main__":
        L.seed_everything(0)
        trainer = L.Trainer(
            logger=KoguLogger(path="ddp/fail"),
            **trainer_kwargs(max_epochs=3, strategy="ddp_spawn", devices=2),
        )
        trainer.fit(BoomOnRank1(images=False), DigitsData())
""")


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
@pytest.mark.skipif(sys.platform == "win32", reason="gloo ddp_spawn on CPU is not run on Windows here")
def test_a_rank_failing_under_ddp_spawn_gives_one_final_set_led_by_its_cause(tmp_path, store_dir, store):
    script = tmp_path / "ddp_fail.py"
    script.write_text(SCRIPT.format(here=os.path.dirname(os.path.abspath(__file__))))
    env = {
        **os.environ,
        "EPOCHLINE_STORE": str(store_dir),
        "OMP_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    }
    env.pop("EPOCHLINE_EMIT", None)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=600, cwd=tmp_path
    )
    assert proc.returncode != 0 and "ValueError: boom on rank 1" in proc.stderr, proc.stderr[-3000:]
    kogu, progress = protocol_lines(proc.stdout)

    # one final set: one failed PROGRESS line (the last one), one Kogu -1 line, one fail
    assert [(p["epoch"], p["status"]) for p in progress] == [(1, "training"), (1, "failed")], proc.stdout
    assert [o["fail"] for o in kogu if "fail" in o] == ["failed: ValueError: boom on rank 1"], proc.stdout
    assert sum(o.get("metric", {}).get("iteration") == -1 for o in kogu) == 1, proc.stdout

    (run,) = store().runs()
    assert run.status == "failed"
    assert run.reason == "ValueError: boom on rank 1"  # the cause first and alone, not a traceback
    assert [e["epoch"] for e in run.epochs()] == [1]  # the worker's records reached the store
    (detail,) = [t for t in run.texts() if t.logger == "epochline.failure"]
    assert detail.level == "ERROR" and "Traceback" in detail.text
    assert detail.text.rstrip().endswith("ValueError: boom on rank 1")


@pytest.mark.slow
@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without distributed")
@pytest.mark.skipif(sys.platform == "win32", reason="gloo ddp_spawn on CPU is not run on Windows here")
def test_ddp_spawn_fit_then_test_adds_to_the_last_epoch_and_ends_once(store_dir, store, capfd):
    """Each ddp_spawn stage runs in new worker processes: the test stage's worker must add to the
    stored last record, never replace epoch 1's (issue 13: "state lost between stages"), and the
    script prints one final set, the test stage's, as without spawn."""
    from epochline.integrations.lightning import KoguLogger

    from .conftest import finished_output
    from .lightning_models import DigitsData, DigitsMLP, _L, trainer_kwargs

    logger = KoguLogger(path="ddp/fit-test")
    trainer = _L.Trainer(logger=logger, **trainer_kwargs(max_epochs=2, strategy="ddp_spawn", devices=2))
    model = DigitsMLP(images=False)
    trainer.fit(model, DigitsData())
    before = store().run(logger.version).epochs()
    fit_output = capfd.readouterr().out  # the fit worker has exited: its final lines are held here
    assert '"completed"' not in fit_output and '"iteration": -1' not in fit_output, fit_output
    (result,) = trainer.test(model, DigitsData(), verbose=False)
    kogu, progress = protocol_lines(fit_output + finished_output(capfd))

    run = store().run(logger.version)
    after = run.epochs()
    assert run.status == "completed" and [e["epoch"] for e in after] == [1, 2]
    assert after[0] == before[0]  # epoch 1 untouched
    added = {k: v for k, v in after[1]["values"].items() if k not in before[1]["values"]}
    assert added.keys() == {"test_loss", "test_accuracy"}
    assert added["test_accuracy"] == pytest.approx(100 * result["test_acc"], rel=1e-5)
    assert {k: after[1]["values"][k] for k in before[1]["values"]} == before[1]["values"]
    completed = [p for p in progress if p["status"] == "completed"]
    assert progress[-1] is completed[-1]  # the last line holds the real test accuracy
    assert completed[-1]["test_accuracy"] == pytest.approx(added["test_accuracy"])
    finals = sum(o.get("metric", {}).get("iteration") == -1 for o in kogu)
    # one final set for both stages: each worker hands its held lines to this (launching) process
    assert len(completed) == 1 and finals == 1
