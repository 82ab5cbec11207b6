"""A run the user never finished: uncaught exceptions, Ctrl-C and plain exits (real subprocesses)."""

import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, epochline
    run = epochline.init("exit/" + sys.argv[1])
    run.log({"loss": 1.0})
    mode = sys.argv[1]
    if mode == "raise":
        raise RuntimeError("diverged")
    if mode == "ctrl-c":
        raise KeyboardInterrupt
    if mode == "swallowed":
        run.phase("fit")  # as an adapter does while fit runs
        try:
            raise RuntimeError("caught by the user")
        except RuntimeError:
            pass
    # "plain": exits without finish()
""")


@pytest.mark.parametrize(
    "mode,status,reason",
    [
        ("raise", "failed", "RuntimeError: diverged"),
        ("ctrl-c", "interrupted", "KeyboardInterrupt"),
        ("swallowed", "failed", "fit did not reach its end"),
        ("plain", "completed", "finish() was not called"),
    ],
)
def test_unfinished_runs_end_with_the_right_status(store_dir, store, tmp_path, mode, status, reason):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        env={**os.environ, "EPOCHLINE_STORE": str(store_dir)},
        timeout=60,
    )
    if mode in ("raise", "ctrl-c"):
        assert proc.returncode != 0 and ("diverged" in proc.stderr or "KeyboardInterrupt" in proc.stderr)
    view = store().run(f"exit/{mode}")
    assert view.status == status and reason in view.reason
    assert view.metrics("loss")[0][2] == 1.0


def test_import_is_light():
    code = (
        "import sys, epochline; heavy = [m for m in ('torch', 'lightning', 'pytorch_lightning', "
        "'transformers', 'keras', 'numpy', 'PIL', 'rich') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_import_loads_the_package_on_first_use():
    """`import epochline` (and `epochline --help`) load nothing of the package's machinery; the
    first use of a name loads what it needs (benchmarks/bench_import.py measures the times)."""
    machinery = ("msgspec", "pluggy", "epochline.lifecycle", "epochline.store.reader")
    code = (
        f"import sys, epochline; print([m for m in {machinery!r} if m in sys.modules]); "
        f"epochline.init; epochline.open; print(sorted(m for m in {machinery!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", str(sorted(machinery))]
