"""Third-party plugins: found through the `epochline` entry-point group, or register()ed."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import epochline
from epochline import events as ev

SINK = textwrap.dedent("""
    import json, os
    import epochline

    @epochline.hookimpl
    def epochline_events(run, events):
        with open(os.environ["SINK_OUT"], "a") as fh:
            for event in events:
                fh.write(json.dumps({"run": run.id, "type": type(event).__name__}) + "\\n")
""")

BACKEND = textwrap.dedent("""
    import epochline
    from epochline.store.sqlite import SQLiteBackend

    @epochline.hookimpl
    def epochline_store_backend(uri):
        if not uri.startswith("memo://"):
            return None
        backend = SQLiteBackend(uri[len("memo://"):], uri)
        backend.media_root.mkdir(parents=True, exist_ok=True)
        backend.migrate()
        return backend
""")


def test_entry_point_plugins_are_loaded(tmp_path, store_dir):
    site = tmp_path / "site"
    (site / "thirdparty-0.1.dist-info").mkdir(parents=True)
    (site / "thirdparty_sink.py").write_text(SINK)
    (site / "thirdparty_backend.py").write_text(BACKEND)
    (site / "thirdparty-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty\nVersion: 0.1\n"
    )
    (site / "thirdparty-0.1.dist-info" / "entry_points.txt").write_text(
        "[epochline]\nsink = thirdparty_sink\nbackend = thirdparty_backend\n"
    )
    out = tmp_path / "events.jsonl"
    code = (
        "import epochline\n"
        f"run = epochline.init('ep', store='memo://{tmp_path / 'memo'}')\n"
        "run.log({'a': 1}); run.finish(); print(run.id)"
    )
    env = {**os.environ, "PYTHONPATH": str(site), "SINK_OUT": str(out)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    seen = [json.loads(line) for line in out.read_text().splitlines()]
    # the environment record (capture_env is on by default)
    assert [s["type"] for s in seen if s["type"] != "Record"] == ["RunStarted", "Metrics", "RunFinished"]
    assert [s["type"] for s in seen].count("Record") == 1
    assert {s["run"] for s in seen} == {run_id}
    with epochline.open(tmp_path / "memo") as store:  # the third-party backend wrote a real store
        assert store.run(run_id).metrics("a")[0][2] == 1


class Collector:
    def __init__(self):
        self.events = []
        self.closed = []

    @epochline.hookimpl
    def epochline_events(self, run, events):
        self.events.extend(events)

    @epochline.hookimpl
    def epochline_run_closed(self, run):
        self.closed.append(run.id)


def test_registered_plugin_sees_every_event_in_order(store_dir, plugin):
    collector = plugin(Collector(), name="collector")
    with epochline.init("reg", params={"a": 1}) as run:
        for step in range(100):
            run.log({"x": step})
        run.tag("t")
    kinds = [type(e) for e in collector.events if not isinstance(e, ev.Heartbeat)]
    assert kinds[:2] == [ev.RunStarted, ev.Params] and kinds[-1] is ev.RunFinished
    assert [e.step for e in collector.events if isinstance(e, ev.Metrics)] == list(range(100))
    assert collector.closed == [run.id]


class Wrapper:
    @epochline.hookimpl(wrapper=True)
    def epochline_events(self, run, events):
        return (yield)


class OldStyleWrapper:
    @epochline.hookimpl(hookwrapper=True)
    def epochline_run_closed(self, run):
        yield


@pytest.mark.parametrize("plugin", [Wrapper(), OldStyleWrapper()])
def test_wrappers_on_dispatched_hooks_are_refused_at_register(plugin, store_dir):
    with pytest.raises(epochline.PluginError, match="does not run wrappers on these hooks"):
        epochline.register(plugin, name="wrapper")
    from epochline.plugins import get_plugin_manager

    assert get_plugin_manager().get_plugin("wrapper") is None  # not left half-registered


def test_register_twice_is_an_error_and_unregister_is_lenient(plugin):
    collector = plugin(Collector(), name="twice")
    with pytest.raises(epochline.PluginError, match="already registered"):
        epochline.register(collector)
    epochline.unregister(name="never-registered")  # nothing to do, no error
