"""Reading config files for ``run.log_config``: YAML, JSON and TOML into plain containers.

YAML needs PyYAML (the optional extra ``epochline[config]``); TOML uses :mod:`tomllib` (Python
3.11+) or ``tomli`` when installed. A file that cannot be parsed is still stored as an artifact;
its record says why it was not turned into params. Nothing here evaluates what it reads
(``yaml.safe_load`` only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

MAX_PARSE_BYTES = 8 * 1024 * 1024
"""Config files larger than this are stored but not parsed into params."""


def _load_yaml(text: str) -> Any:
    try:
        import yaml
    except ImportError:
        raise LookupError("PyYAML is not installed (pip install 'epochline[config]')") from None
    return yaml.safe_load(text)


def _load_toml(text: str) -> Any:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        try:
            import tomli as tomllib  # type: ignore[no-redef,import-not-found,unused-ignore]
        except ImportError:
            raise LookupError("reading TOML needs Python 3.11+ or tomli") from None
    return tomllib.loads(text)


_LOADERS: Dict[str, Callable[[str], Any]] = {
    ".yaml": _load_yaml,
    ".yml": _load_yaml,
    ".json": json.loads,
    ".toml": _load_toml,
}


def parse(path: Path) -> Tuple[Optional[Any], Optional[str]]:
    """(content, None) when ``path`` is a YAML/JSON/TOML file that parses, else (None, why not)."""
    loader = _LOADERS.get(path.suffix.lower())
    if loader is None:
        return None, f"not parsed: {path.suffix or 'no suffix'} is not YAML, JSON or TOML"
    try:
        if path.stat().st_size > MAX_PARSE_BYTES:
            return None, f"not parsed: larger than {MAX_PARSE_BYTES} bytes"
        text = path.read_text(encoding="utf-8")
        return loader(text), None
    except LookupError as exc:
        return None, f"not parsed: {exc}"
    except Exception as exc:  # any parser error: the file is still stored
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"not parsed: {type(exc).__name__}: {first}"[:300]
