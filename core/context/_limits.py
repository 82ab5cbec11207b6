"""Defaults and limits of the context features, apart from their modules so that importing
epochline does not import zipfile, subprocess or importlib.metadata (they load on first use)."""

MAX_LIST_FILES = 100_000
"""A dataset/model description stops after this many files (and says so)."""
MAX_LIST_SECONDS = 10.0
"""... or after this many seconds of walking."""
MAX_ARCHIVE_BYTES = 2 * 1024**3
MAX_ARCHIVE_FILES = 100_000
TQDM_MODES = ("smart", "all", "none")
CONTEXT_OPTIONS = (
    "param_parents",
    "name_params",
    "capture_env",
    "snapshot_code",
    "capture_console",
    "tqdm_mode",
    "system_metrics",
    "system_interval",
)
"""The ``init`` keywords of issue 17 (every adapter passes them through its constructor)."""
SYSTEM_INTERVAL_S = 10.0
