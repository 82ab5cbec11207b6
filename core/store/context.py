"""Storage of what a run carries beside its metrics (issue 17): records, console lines, system samples.

Kept apart from :mod:`epochline.store.base` so that the schema step, the writers and the reads of
these features live in one place; ``base`` only lists them. All SQL is parameterised.

* ``records``: one row per (run, kind, name) -- ``env``, ``dataset``, ``model``, ``config``,
  ``code``, ``params`` -- with a JSON ``data`` column; a later record of the same kind and name
  replaces the earlier one.
* console lines go to the existing ``texts`` table with ``kind = 'console'`` and the stream
  (``stdout``/``stderr``) in its ``logger`` column.
* system samples are ordinary metric points (series with ``stage = 'system'``), written by
  ``Backend._write_points`` like any other metric.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from .. import events as ev

SYSTEM_STAGE = "system"

MIGRATION = [
    """CREATE TABLE records (run_id TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
        wall_time DOUBLE PRECISION NOT NULL, data TEXT NOT NULL, PRIMARY KEY (run_id, kind, name))""",
]
"""Schema step 1 -> 2."""

_RECORD_UPSERT = """INSERT INTO records (run_id, kind, name, wall_time, data) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (run_id, kind, name) DO UPDATE SET wall_time = excluded.wall_time, data = excluded.data"""
_TEXT_INSERT = "INSERT INTO texts (run_id, wall_time, kind, level, logger, text) VALUES (?, ?, ?, ?, ?, ?)"


def w_record(e: ev.Record):
    yield _RECORD_UPSERT, [(e.run_id, e.kind, e.name, e.wall_time, ev.dumps_value(e.data))]


def w_console(e: ev.ConsoleText):
    yield _TEXT_INSERT, [(e.run_id, e.wall_time, "console", None, e.stream, e.text)]


WRITERS = {ev.Record: w_record, ev.ConsoleText: w_console}


class ContextReads:
    """Read methods of :class:`~epochline.store.reader.RunView` for the records of issue 17."""

    def _q(self, sql: str, *params: Any) -> List[tuple]:  # pragma: no cover - RunView's
        raise NotImplementedError

    def records(self, kind: Optional[str] = None) -> List[Dict[str, Any]]:
        """``[{"kind", "name", "wall_time", "data"}, ...]`` in the order they were recorded."""
        if kind is None:
            rows = self._q(
                "SELECT kind, name, wall_time, data FROM records WHERE run_id = ? "
                "ORDER BY wall_time, kind, name"
            )
        else:
            rows = self._q(
                "SELECT kind, name, wall_time, data FROM records WHERE run_id = ? "
                "AND kind = ? ORDER BY wall_time, name",
                kind,
            )
        return [{"kind": k, "name": n, "wall_time": t, "data": ev.loads_value(d)} for k, n, t, d in rows]

    def _record(self, kind: str, name: str) -> Optional[Dict[str, Any]]:
        rows = self._q("SELECT data FROM records WHERE run_id = ? AND kind = ? AND name = ?", kind, name)
        return ev.loads_value(rows[0][0]) if rows else None

    @property
    def env(self) -> Optional[Dict[str, Any]]:
        """The environment captured at ``init(capture_env=True)`` (python, platform, git, ...)."""
        return self._record("env", "env")

    @property
    def code(self) -> Optional[Dict[str, Any]]:
        """What ``init(snapshot_code=True)`` stored: artifact name, files, bytes, or why not."""
        return self._record("code", "code")

    def datasets(self) -> List[Dict[str, Any]]:
        """Datasets logged with ``run.log_dataset``: name, context, location, files, bytes, ..."""
        return [r["data"] for r in self.records("dataset")]

    def models(self) -> List[Dict[str, Any]]:
        """Models logged with ``run.log_model`` / ``run.log_pretrained``."""
        return [r["data"] for r in self.records("model")]

    def config_files(self) -> List[Dict[str, Any]]:
        """Config files logged with ``run.log_config(config_files=...)``."""
        return [r["data"] for r in self.records("config")]

    @property
    def param_meta(self) -> Dict[str, Any]:
        """``{"parents": {child: parent}, "name_params": [...]}`` (empty when none were given)."""
        return self._record("params", "meta") or {}

    def console(self, stream: Optional[str] = None) -> List[Dict[str, Any]]:
        """Captured console lines ``[{"wall_time", "stream", "text"}]``, oldest first."""
        rows = self._q(
            "SELECT wall_time, logger, text FROM texts WHERE run_id = ? AND kind = 'console' "
            "ORDER BY wall_time",
        )
        return [{"wall_time": t, "stream": s, "text": x} for t, s, x in rows if stream is None or s == stream]

    def system_metric_keys(self) -> List[str]:
        """Names of the ``system/*`` series sampled by ``init(system_metrics=True)``."""
        return [
            r[0]
            for r in self._q(
                "SELECT key FROM series WHERE run_id = ? AND stage = ? ORDER BY key", SYSTEM_STAGE
            )
        ]

    def context_dict(self) -> Dict[str, Any]:
        """The issue-17 part of ``RunView.to_dict()`` (``epochline show --json``)."""
        return {
            "env": self.env,
            "code": self.code,
            "datasets": self.datasets(),
            "models": self.models(),
            "config_files": self.config_files(),
            "param_meta": self.param_meta,
            "console": [{"stream": c["stream"], "text": c["text"]} for c in self.console()],
        }


__all__ = ["ContextReads", "MIGRATION", "SYSTEM_STAGE", "WRITERS"]
