"""The rules every adapter's run follows (``integrations/_session.py``), on real runs and a real
store, without any framework: which run a call records into, a later stage re-opening it, the
evaluation values joining the last record, phases, and how a run ends (with the framework call,
with a ``with`` block, never for the user's own run)."""

from __future__ import annotations

import pytest

import epochline
from epochline.integrations._session import Reopening, Session


def session(path: str, **options) -> Session:
    return Session("tests", {"path": path, "emit": "none", **options})


def test_a_later_stage_reopens_the_run_and_joins_its_last_record(store_dir, store):
    s = session("session/stages")
    run = s.current()
    s.epochs.add(run, 1, {"train_loss": 0.5})
    s.epochs.add(run, 2, {"train_loss": 0.25})  # a newer epoch closes the open one
    s.epochs.close(run, 2)
    s.end(hold_lines=True)
    assert run.finished and s.run is run
    again = s.current()  # evaluate/test after fit: the same run id, open again
    assert again is not run and again.id == run.id and not again.finished
    assert s.last_epoch() == 2
    s.add_to_last({"test_loss": 0.3}, 2)
    s.end()
    with store() as opened:
        (view,) = opened.runs()
        records = view.epochs()
    assert view.status == "completed"
    assert [r["values"] for r in records] == [{"train_loss": 0.5}, {"train_loss": 0.25, "test_loss": 0.3}]


def test_another_process_continues_the_stored_last_record(store_dir, store):
    """A later stage in a new process (a new session resuming the run by id) adds to the record
    as stored, instead of replacing it with the evaluation values alone."""
    first = session("session/resume")
    run = first.current()
    first.epochs.add(run, 1, {"train_loss": 0.5})
    first.epochs.add(run, 2, {"train_loss": 0.25, "val_accuracy": 0.75})
    first.end()  # epoch 2 was never closed: the adapter closes records, the session does not
    later = session("session/resume", run_id=run.id)
    later.current()
    assert later.last_epoch() == 1  # epoch 2 was never closed, so the stored last record is 1
    later.add_to_last({"test_loss": 0.4})
    later.end()
    with store() as opened:
        (record,) = opened.run(run.id).epochs()
    assert record["epoch"] == 1 and record["values"] == {"train_loss": 0.5, "test_loss": 0.4}


def test_a_stored_record_in_percent_stays_in_percent(store_dir, store):
    first = session("session/percent")
    run = first.current()
    first.epochs.add(run, 1, {"val_accuracy": 0.75})
    first.epochs.close(run)
    first.end()
    later = session("session/percent", run_id=run.id)
    later.current()
    later.add_to_last({"test_accuracy": 0.5})
    later.end()
    with store() as opened:
        (record,) = opened.run(run.id).epochs()
    assert record["values"] == {"val_accuracy": 75.0, "test_accuracy": 50.0}  # not 7500 %


def test_reading_a_finished_run_does_not_reopen_it_and_using_it_does(store_dir, store):
    s = session("session/reopening")
    run = s.current()
    s.end()
    proxy = Reopening(s.run, s.current)
    assert (proxy.id, proxy.finished, proxy.status) == (run.id, True, "completed")
    assert s.run is run  # reading did not re-open it
    proxy.log({"late": 1.0}, step=9)
    assert s.run is not run and s.run.id == run.id and not s.run.finished
    s.end()
    with store() as opened:
        assert [m[1:] for m in opened.run(run.id).metrics("late")] == [(9, 1.0)]


def test_a_phase_left_unfinished_ends_the_run_failed(store_dir, store):
    s = session("session/phase")
    s.current()
    s.begin("fit")
    assert s.run.in_progress == "fit"
    s.end()
    assert s.run.in_progress is None and s.run.finished


@pytest.mark.parametrize(
    "exc,status,reason",
    [
        (RuntimeError("boom"), "failed", "RuntimeError: boom"),
        (KeyboardInterrupt(), "interrupted", "KeyboardInterrupt"),
    ],
)
def test_a_with_block_ends_the_run_with_the_exception_in_flight(store_dir, store, exc, status, reason):
    s = session("session/raise")
    with pytest.raises(type(exc)):
        with s.scope(lambda status, reason: s.end(status=status, reason=reason)):
            s.current()
            s.begin("fit")
            s.end()  # a framework call ending inside the block leaves the run to the block
            assert not s.run.finished
            raise exc
    assert (s.run.status, s.run.reason) == (status, reason)


def test_a_with_block_that_ends_normally_completes_or_fails_a_call_that_never_ended(store_dir, store):
    ended = []

    def finish(status, reason):
        ended.append((status, reason))

    s = session("session/normal")
    with s.scope(finish):
        s.current()
    s.run.finish()
    with s.scope(finish):
        s.current()
        s.begin("train")  # the exception was caught inside the block: train never reached its end
    s.run.finish()
    assert ended == [
        ("completed", None),
        ("failed", "train did not reach its end (the exception was caught inside the with block)"),
    ]


def test_the_users_run_is_never_started_reopened_or_ended(store_dir, store):
    with epochline.init("session/given", emit="none") as mine:
        s = Session("tests", {}, mine)
        assert s.current() is mine and s.start() is mine and not s.owned
        s.begin("fit")
        assert mine.in_progress is None  # no phase of ours in the user's run
        s.end(status="failed", reason="x")
        with s.scope(lambda status, reason: pytest.fail("the user's run was ended")):
            pass
        assert not mine.finished
        mine.log({"mine": 1.0})
    assert mine.status == "completed"


def test_a_pickled_session_carries_no_run(store_dir):
    import pickle

    s = session("session/pickle", run_id=epochline.new_run_id())
    run = s.current()
    copy = pickle.loads(pickle.dumps(s))
    assert copy.run is None and copy.options == s.options and copy.handover  # the launcher's file
    s.end()
    assert run.finished


def test_tracking_off_gives_a_noop_run_that_records_nothing(store_dir, monkeypatch):
    monkeypatch.setenv("EPOCHLINE_DISABLED", "1")
    s = session("session/off")
    run = s.current()
    assert isinstance(run, epochline.NoOpRun) and s.live is None
    s.begin("fit")
    s.add_to_last({"loss": 1.0})
    s.end()
    assert not store_dir.exists()
