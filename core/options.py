"""One validation of the options that start a run, shared by :func:`epochline.init` and the adapters.

Why one place: the adapters take ``init``'s keywords when they are *built* (``KoguLogger(...)``,
``TrackerCallback(...)``) but start the run much later, inside ``trainer.fit``/``train()``. A typo
or a bad value found only then fails inside the framework (or, for ``emit``, prints nothing
without a word). So every keyword is checked here, at the call that is wrong, with the valid
choices in the message, and ``init`` runs the same checks so both ways of starting a run agree.
"""

from __future__ import annotations

import difflib
import os
from typing import Any, Collection, Dict, Iterable, Mapping, Optional, Tuple

from .context._limits import CONTEXT_OPTIONS
from .context._start import check_options as check_context_options
from .epochs import check_field_map, check_scale, check_scales
from .values import storable_text

EMITTERS = ("kogu", "progress")
"""The built-in line emitters (``emit="kogu,progress"``); ``"none"`` turns them all off."""
RUN_ID_CHARS = "letters, digits, '-', '_' and '.'"

INIT_OPTIONS: Tuple[str, ...] = (
    "path",
    "name",
    "alias",
    "params",
    "ignore_params",
    "tags",
    "store",
    "run_id",
    "framework",
    "emit",
    "default_emit",
    "total_epochs",
    "accuracy_scale",
    "scales",
    "field_map",
    "all_ranks",
    "flush_interval",
    "max_queue",
    *CONTEXT_OPTIONS,
)
"""The keywords :func:`epochline.init` takes (adapters accept the ones that make sense for them)."""


def _did_you_mean(word: str, valid: Collection[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest valid name, or nothing when none is close."""
    close = difflib.get_close_matches(word, sorted(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_keywords(owner: str, given: Iterable[str], valid: Collection[str]) -> None:
    """Raise ``TypeError`` naming the first keyword of ``given`` not in ``valid``, with the closest
    valid name and the full list (Python's own message names neither)."""
    for key in given:
        if key not in valid:
            raise TypeError(
                f"{owner} got an unexpected keyword argument {key!r}{_did_you_mean(key, valid)}; "
                f"valid keywords: {', '.join(sorted(valid))}"
            )


def _text(what: str, value: Any) -> None:
    if value is not None and (type(value) is not str or not value):
        raise TypeError(f"{what} must be a non-empty string, got {value!r}")
    if value is not None and not storable_text(value):  # no store can keep it: say so now
        raise ValueError(f"{what} {value!r} holds a NUL character or a lone surrogate")


def check_path(path: Any) -> str:
    """The run's path with empty and ``.`` parts removed; ``..`` is refused."""
    if type(path) is not str:
        raise TypeError(f"path must be a string such as 'cv/resnet50/baseline', got {path!r}")
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts or any("\x00" in p for p in parts):
        raise ValueError(f"path {path!r} may not contain '..'")
    return "/".join(parts) or "default"


def check_run_id(run_id: Any) -> Optional[str]:
    _text("run_id", run_id)
    if run_id is not None and not all(c.isalnum() or c in "-_." for c in run_id):
        raise ValueError(f"run_id {run_id!r} may hold only {RUN_ID_CHARS}")
    return run_id


def check_tags(tags: Any) -> Tuple[str, ...]:
    """One tag or an iterable of tags -> a tuple of non-empty strings."""
    if tags is None:
        return ()
    if isinstance(tags, str):
        tags = (tags,)
    try:
        out = tuple(tags)
    except TypeError:
        raise TypeError(f"tags must be a string or a list of strings, got {tags!r}") from None
    for tag in out:
        _text("tag", tag)
    return out


def check_emit(emit: Any, what: str = "emit") -> None:
    """``None``, ``"kogu,progress"``-style text or an iterable of names; each a known emitter
    (built-in or a registered plugin's name) or ``"none"``."""
    if emit is None:
        return
    names = emit.split(",") if isinstance(emit, str) else emit
    try:
        names = [n.strip().lower() for n in names if n is not None and n.strip()]
    except (TypeError, AttributeError):
        raise TypeError(
            f"{what} must be text such as 'kogu,progress' or a list of names, got {emit!r}"
        ) from None
    valid = set(EMITTERS) | {"none"} | _plugin_names()
    for name in names:
        if name not in valid:
            raise ValueError(
                f"{what}: unknown emitter {name!r}{_did_you_mean(name, valid)}; choose from "
                f"{', '.join(EMITTERS)} or 'none' (comma-separated)"
            )


def _plugin_names() -> set:
    """Registered plugins may read their own name in ``run.emit``: those names are valid too."""
    from .plugins import get_plugin_manager

    return {name.rsplit(".", 1)[-1] for name, _ in get_plugin_manager().list_name_plugin() if name}


def check_store(store: Any) -> Any:
    if store is None or isinstance(store, (str, os.PathLike)):
        return None
    raise TypeError(f"store must be a directory, a sqlite:// or postgresql:// URI, or None, got {store!r}")


def check_positive_int(what: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if type(value) is bool or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer or None, got {value!r}")
    return int(value)


def check_choice(what: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them (and the closest)."""
    if not isinstance(value, str) or value not in choices:
        hint = _did_you_mean(value, choices) if isinstance(value, str) else ""
        raise ValueError(f"{what} must be one of {', '.join(choices)}; got {value!r}{hint}")
    return value


def check_flag(what: str, value: Any) -> bool:
    """``value`` if it is True or False (not 0/1 or a string, whose meaning would be a guess)."""
    if type(value) is not bool:
        raise TypeError(f"{what} must be True or False, got {value!r}")
    return value


def check_function(what: str, value: Any, signature: str) -> Any:
    """``value`` if it is None or callable, else ``TypeError`` saying what it should be called as."""
    if value is not None and not callable(value):
        raise TypeError(f"{what} must be a function {signature}, got {value!r}")
    return value


def _check_ignore(ignore: Any) -> Tuple[str, ...]:
    out = (ignore,) if isinstance(ignore, str) else tuple(ignore or ())
    for key in out:
        _text("ignore_params entry", key)
    return out


def _check_interval(value: Any) -> Any:
    if type(value) is bool or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"flush_interval must be a positive number of seconds, got {value!r}")
    return value


def _checked_text(what: str) -> Any:
    def check(value: Any) -> Any:
        _text(what, value)
        return value

    return check


def _checked_emit(what: str) -> Any:
    def check(value: Any) -> Any:
        check_emit(value, what)
        return value

    return check


_CHECKS = {
    "path": check_path,
    "name": _checked_text("name"),
    "alias": _checked_text("alias"),
    "framework": _checked_text("framework"),
    "run_id": check_run_id,
    "tags": check_tags,
    "store": lambda v: check_store(v) or v,
    "emit": _checked_emit("emit"),
    "default_emit": _checked_emit("default_emit"),
    "accuracy_scale": lambda v: check_scale("accuracy_scale", v),
    "max_queue": lambda v: check_positive_int("max_queue", v),
    "total_epochs": lambda v: check_positive_int("total_epochs", v),
    "scales": check_scales,
    "field_map": check_field_map,
    "ignore_params": _check_ignore,
    "flush_interval": _check_interval,
}
"""One checker per ``init`` keyword: returns the value normalised, or raises with the choices."""


def check_init_options(options: Mapping[str, Any], owner: str = "epochline.init()") -> Dict[str, Any]:
    """Validate ``init`` keywords (only those present) and return them normalised.

    Raises ``TypeError`` for an unknown keyword or a wrong type and ``ValueError`` for a bad value,
    each naming the valid choices.
    """
    unknown_keywords(owner, options, INIT_OPTIONS)
    out = {key: _CHECKS[key](value) if key in _CHECKS else value for key, value in options.items()}
    check_context_options(out)
    return out
