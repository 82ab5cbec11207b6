"""How a process ends is how its run is stored: sys.exit(3) is failed everywhere, sys.exit(0) completed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import epochline

SCRIPTS = {
    "outside": """
        run = epochline.init("faults/exit")
        run.log({"loss": 0.5})
        sys.exit(CODE)
    """,
    "inside": """
        with epochline.init("faults/exit") as run:
            run.log({"loss": 0.5})
            sys.exit(CODE)
    """,
    "in_function": """
        def train():
            run = epochline.init("faults/exit")
            run.log({"loss": 0.5})
            sys.exit(CODE)
        train()
    """,
}


@pytest.mark.parametrize("where", sorted(SCRIPTS))
@pytest.mark.parametrize(
    "code, status, reason, exit_code",
    [
        ("3", "failed", "SystemExit: 3", 3),
        ("0", "completed", None, 0),
        ("None", "completed", None, 0),
        ("'bad config'", "failed", "SystemExit: bad config", 1),
    ],
)
def test_sys_exit_is_stored_as_the_process_ends(
    tmp_path, where, code, status, reason, exit_code, reliability
):
    store = tmp_path / "store"
    script = tmp_path / "exit.py"
    body = textwrap.dedent(SCRIPTS[where]).replace("CODE", code)
    script.write_text(f"import sys, epochline\nepochline.set_enabled(True)\n{body}")
    child = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**__import__("os").environ, "EPOCHLINE_STORE": str(store)},
    )
    assert child.returncode == exit_code, child.stderr
    with epochline.open(store) as reader:
        view = reader.runs()[0]
        assert view.status == status
        if reason is None:
            assert view.reason is None or "SystemExit" not in view.reason
        else:
            assert view.reason == reason
        assert len(view.metrics("loss")) == 1
    if where == "outside":
        reliability(
            f"sys.exit({code}) outside a with block",
            1,
            len(view.metrics("loss")),
            f"{view.status}" + (f" ({view.reason})" if reason else ""),
            survived="n/a: the process was ended on purpose",
        )
