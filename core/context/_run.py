"""The Run methods of issue 17: config, datasets, models, the parameter model and the best step.

:class:`RunContext` is a mixin of :class:`epochline.Run`; it uses the run's own helpers
(``_put``, ``_check_open``, ``_warn_once``, ``_lose``) and adds no I/O to the hot path
(``Run.log`` only calls :meth:`RunContext._remember_primary` when a primary metric is set).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .. import events as ev
from ..identity import uncounted
from ..values import _children, flatten_params
from . import _limits

RECENT_PRIMARY = 10_000
"""How many recent values of the primary metric a run keeps, so :meth:`RunContext.set_best` can
put the value at the pinned step into the summary (an older step keeps only its number)."""


def name_from_params(params: Mapping[str, Any], keys: Sequence[str]) -> Optional[str]:
    """``lr=0.01-model=resnet`` from the values of ``keys`` (missing ones left out), or None."""
    parts = []
    for key in keys:
        if key in params and params[key] is not None:
            value = params[key]
            text = (
                repr(value)
                if isinstance(value, float)
                else ev.dumps_value(value)
                if isinstance(value, list)
                else str(value)
            )
            parts.append(f"{key}={text}")
    return "-".join(parts) or None


def _location(value: Any) -> Tuple[str, Any]:
    """('mapping', flat dict) | ('uri', text) | ('path', text) for a dataset/model location."""
    if isinstance(value, Mapping):
        return "mapping", flatten_params(value)
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"a location must be a path, a URI or a dict, got {type(value).__name__}")
    text = os.fspath(value)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if not text:
        raise ValueError("a location must not be empty")
    return ("uri" if "://" in text else "path"), text


class RunContext:
    """Mixin: see the module docstring. Documented in docs/api.md."""

    _put: Callable[..., None]  # Dispatcher.put(event, weight=1)
    _info: Any
    _name: str
    _params: Dict[str, Any]
    _ignored: set
    _primary: Optional[tuple]
    _step: int

    if TYPE_CHECKING:  # provided by Run

        def _check_open(self, what: str) -> None: ...
        def _check_text(self, what: str, value: Any) -> None: ...
        def _warn_once(self, key: tuple, message: str) -> None: ...
        def _lose(self, key: tuple, message: str) -> None: ...
        def _step_or_current(self, step: Any) -> int: ...
        def _pin_best_epoch(self, epoch: Any) -> None: ...
        def _send(self, event_type: Callable[..., Any], /, **fields: Any) -> None: ...
        def log_artifact(self, path: Any, name: Optional[str] = None) -> Optional[str]: ...
        def log_params(self, *args: Any, **kwargs: Any) -> None: ...

    # -- state ------------------------------------------------------------------------------
    def _init_context(self) -> None:
        self._parents: Dict[str, str] = {}
        self._uncounted: set = set()
        self._name_params: Tuple[str, ...] = ()
        self._auto_name = False
        self._meta_sent: Optional[Dict[str, Any]] = None
        self._pinned_best: Optional[int] = None
        self._recent_primary: OrderedDict[int, Any] = OrderedDict()
        self._closers: List[Callable[[], None]] = []

    def _on_finish_context(self, closer: Callable[[], None]) -> None:
        """Call ``closer`` when the run finishes, before its last events are dispatched."""
        self._closers.append(closer)

    def _stop_context(self) -> None:
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                closer()
            except Exception as exc:  # stopping a collector must not stop the finish
                self._warn_once(
                    ("stop", type(exc).__name__),
                    f"epochline: stopping {closer!r} failed ({type(exc).__name__}: {exc})",
                )

    def _put_record(self, kind: str, name: str, data: Dict[str, Any]) -> None:
        self._send(ev.Record, kind=kind, name=name, data=data)

    @staticmethod
    def _wall_time(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if isinstance(value, bool) or not (hasattr(value, "item") and hasattr(value, "dtype")):
                raise TypeError(f"wall_time must be seconds since the epoch (a number), got {value!r}")
            value = value.item()
        value = float(value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"wall_time must be a finite, non-negative number of seconds, got {value!r}")
        return value

    # -- the parameter model (legm) ---------------------------------------------------------
    def _set_name_params(self, keys: Sequence[str], auto: bool) -> None:
        if isinstance(keys, str):
            keys = (keys,)
        keys = tuple(keys)
        for key in keys:
            if type(key) is not str or not key:
                raise TypeError(f"name_params must be parameter names, got {key!r}")
        self._name_params = keys
        self._auto_name = auto and bool(keys)

    def _add_parents(
        self, flat: Dict[str, Any], parent: Optional[str], param_parents: Optional[Mapping[str, str]]
    ) -> None:
        if parent is not None:
            if type(parent) is not str or not parent:
                raise TypeError(f"parent must be a parameter name, got {parent!r}")
            for key in flat:
                if key == parent:
                    raise ValueError(f"parameter {key!r} cannot be its own parent")
                self._parents[key] = parent
        if param_parents is not None:
            if not isinstance(param_parents, Mapping):
                raise TypeError("param_parents must map child -> parent, e.g. {'momentum': 'optimizer'}")
            for child, par in param_parents.items():
                if type(child) is not str or type(par) is not str or not child or not par:
                    raise TypeError(f"param_parents entries must be names, got {child!r}: {par!r}")
                if child == par:
                    raise ValueError(f"parameter {child!r} cannot be its own parent")
                self._parents[child] = par

    def _put_params(self, flat: Dict[str, Any]) -> None:
        """Store ``flat`` and re-store every earlier key whose counting changed (a parent turned
        on or off, an ``ignore`` given later), so the stored fingerprint follows the run's."""
        now = uncounted(self._params, self._ignored, self._parents)
        flips = {k for k in now ^ self._uncounted if k in self._params and k not in flat}
        self._uncounted = now
        out = {k: self._params[k] for k in sorted(flips)}
        out.update(flat)
        if out:
            self._send(ev.Params, params=out, ignored=tuple(k for k in out if k in now))
        meta = {"parents": dict(self._parents), "name_params": list(self._name_params)}
        if meta != self._meta_sent and (self._parents or self._name_params):
            self._meta_sent = meta
            self._put_record("params", "meta", meta)
        if self._auto_name:
            name = name_from_params(self._params, self._name_params)
            if name and name != self._name:
                self._name = name
                self._send(ev.Rename, name=name)

    # -- the best step ------------------------------------------------------------------------
    def _remember_primary(self, step: int, value: Any) -> None:
        recent = self._recent_primary
        recent[step] = value
        if len(recent) > RECENT_PRIMARY:
            recent.popitem(last=False)

    def set_best(self, step: Optional[int] = None, *, epoch: Optional[int] = None) -> None:
        """Name the best point of the run when the training, not the metric, decides it.

        ``set_best(epoch=e)``: the training kept epoch ``e`` (early stopping that restored the
        best weights, the best checkpoint reloaded); the final record (summary, Kogu ``-1`` line,
        PROGRESS ``completed``) reports that epoch's values instead of choosing by the rule.

        ``set_best(step)`` (default: the last step logged): pins the best *step* (legm's explicit
        best step); it overrides the primary metric's own tracking: the summary gets ``best_step``
        and, with a primary metric, ``best_<name>_step`` and the value logged at that step.
        """
        self._check_open("set_best")
        if epoch is not None:
            if step is not None:
                raise ValueError(
                    "set_best() takes a step or epoch=, not both (the epoch names the final record's "
                    "epoch; the step pins the best step)"
                )
            self._pin_best_epoch(epoch)
            return
        step = self._step_or_current(step)
        if step < 0:
            raise ValueError(f"the best step must be >= 0, got {step}")
        self._pinned_best = step
        self._send(ev.SummaryUpdate, values=self._pinned_summary())

    def _pinned(self) -> Dict[str, Any]:
        step = self._pinned_best
        name, mode = self._primary if self._primary else (None, None)
        value = self._recent_primary.get(step) if name is not None else None  # type: ignore[arg-type]
        return {"name": name, "mode": mode, "value": value, "step": step, "pinned": True}

    def _pinned_summary(self, scale: Optional[Callable[[str, Any], Any]] = None) -> Dict[str, Any]:
        """The summary of a pinned best step; ``scale(name, value)`` puts the value on the epoch
        records' scale as the tracked best is (a fraction accuracy in percent)."""
        best = self._pinned()
        out: Dict[str, Any] = {"best_step": best["step"]}
        if best["name"] is not None:
            out["primary_metric"] = best["name"]
            out[f"best_{best['name']}_step"] = best["step"]
            if best["value"] is not None:
                value = best["value"]
                out[f"best_{best['name']}"] = scale(best["name"], value) if scale else value
        return out

    # -- config ---------------------------------------------------------------------------------
    def log_config(
        self, args: Any = None, extra: Optional[Mapping[str, Any]] = None, config_files: Sequence[Any] = ()
    ) -> None:
        """Record a run's configuration: ``args`` (argparse Namespace, dict, dataclass, OmegaConf)
        and ``extra`` as params (flattened like :meth:`log_params`), and each config file copied
        into the store as an artifact ``config/<file name>``; YAML/JSON/TOML files that parse also
        become params ``config.<file stem>.<key>``. A missing file is warned about and counted as
        lost; a file that does not parse is stored, and its record says why."""
        self._check_open("log_config")
        for what, obj in (("args", args), ("extra", extra)):
            if obj is not None and _children(obj) is None:
                raise TypeError(
                    f"log_config({what}=) takes an argparse Namespace, a dict, a dataclass "
                    f"or an OmegaConf config, got {type(obj).__name__}"
                )
        if isinstance(config_files, (str, bytes, os.PathLike)):
            config_files = (config_files,)
        files = [Path(os.fsdecode(os.fspath(f))) for f in config_files]
        flat: Dict[str, Any] = {}
        if args is not None:
            flat.update(flatten_params(args))
        if extra is not None:
            flat.update(flatten_params(extra))
        for path in files:
            record: Dict[str, Any] = {"name": path.name, "path": str(path.absolute())}
            if not path.is_file():
                record["error"] = "not a readable file" if path.exists() else "no such file"
                self._lose(
                    ("config", path.name),
                    f"epochline: config file {str(path)!r} not stored: {record['error']}",
                )
            else:
                from . import _config

                label = f"config/{path.name}"
                stored = self.log_artifact(path, name=label)
                record["artifact"] = label if stored else None
                content, why = _config.parse(path)
                if why is None:
                    params = flatten_params(content, prefix=f"config.{path.stem}")
                    flat.update(params)
                    record.update(parsed=True, params=len(params))
                else:
                    record.update(parsed=False, note=why)
            self._put_record("config", path.name, record)
        if flat:
            self.log_params(flat)

    # -- datasets and models --------------------------------------------------------------------
    def _archive(
        self, what: str, label: str, path: Path, description: Dict[str, Any], max_bytes: int, max_files: int
    ) -> Dict[str, Any]:
        """Store a file as it is or a folder as a zip; ``{"artifact", ...}`` or ``{"refused"}``."""
        from . import _files

        try:
            _files.check_limits(what, description, max_bytes, max_files)
            root = self._info.store.media_root
            if description["kind"] == "file":
                from ..media import store_file

                rel, size, digest = store_file(root, path)
                skipped = 0
            else:
                label += ".zip"
                rel, size, digest, skipped = _files.zip_into_store(root, _files.walk(path))
        except _files.Refused as exc:
            self._warn_once(("refused", str(exc)), f"epochline: not archived: {exc}")
            return {"refused": str(exc)}
        except OSError as exc:
            self._lose(("archive", what), f"epochline: {what} not archived: {exc}")
            return {"refused": f"{type(exc).__name__}: {exc}"}
        self._send(ev.Artifact, name=label, media=rel, size=size, sha256=digest, source=str(path.absolute()))
        out: Dict[str, Any] = {"artifact": label, "bytes": size, "sha256": digest}
        if skipped:
            out["unreadable_files"] = skipped
        return out

    def _describe(
        self,
        what: str,
        location: Any,
        save: bool,
        label: str,
        max_files: int,
        max_seconds: float,
        max_bytes: int,
        max_archive_files: int,
        must_exist: bool = True,
    ) -> Dict[str, Any]:
        from . import _files

        kind, value = _location(location)
        if kind == "mapping":
            data: Dict[str, Any] = {"location": value}
        elif kind == "uri" or (not must_exist and not Path(value).expanduser().exists()):
            data = {"uri": value}
        else:
            data = _files.describe(value, max_files=max_files, max_seconds=max_seconds)
            if not data["exists"]:
                self._warn_once(
                    (what, "missing"),
                    f"epochline: {what}: {value} does not exist ({data['error']}); recorded as missing",
                )
            elif not data["complete"]:
                self._warn_once(
                    (what, "stopped"),
                    f"epochline: {what}: listing of {value} "
                    f"{data['stopped']}; counts and fingerprint cover what was seen",
                )
        if save:
            if "path" not in data:
                data["archive"] = {"refused": f"{what}: only a local path can be archived"}
                self._warn_once(("refused", what), f"epochline: not archived: {data['archive']['refused']}")
            else:
                data["archive"] = self._archive(
                    what, label, Path(value).expanduser(), data, max_bytes, max_archive_files
                )
        return data

    def log_dataset(
        self,
        name: str,
        root_or_uri: Any,
        context: str = "train",
        save: bool = False,
        description: Optional[str] = None,
        *,
        max_files: int = _limits.MAX_LIST_FILES,
        max_seconds: float = _limits.MAX_LIST_SECONDS,
        max_archive_bytes: int = _limits.MAX_ARCHIVE_BYTES,
        max_archive_files: int = _limits.MAX_ARCHIVE_FILES,
    ) -> Optional[Dict[str, Any]]:
        """Record a dataset: its location (path, URI or dict), and for a local path the file
        count, total bytes and a fingerprint of the listing (a walk bounded by ``max_files`` /
        ``max_seconds`` that says where it stopped). ``save=True`` also stores a zip of it (or
        the file) unless that would break ``max_archive_bytes``/``max_archive_files``: then it is
        refused, warned about, and the record says why. Returns the record."""
        self._check_open("log_dataset")
        self._check_text("name", name)
        self._check_text("context", context)
        data: Dict[str, Any] = {"name": name, "context": context, "description": _text(description)}
        data.update(
            self._describe(
                f"dataset {name!r}",
                root_or_uri,
                save,
                f"dataset/{name}",
                max_files,
                max_seconds,
                max_archive_bytes,
                max_archive_files,
            )
        )
        self._put_record("dataset", f"{context}/{name}", data)
        return data

    def log_model(
        self,
        name: str,
        path_or_uri: Any = None,
        save: bool = False,
        source: str = "local",
        description: Optional[str] = None,
        *,
        config: Any = None,
        max_archive_bytes: int = _limits.MAX_ARCHIVE_BYTES,
        max_archive_files: int = _limits.MAX_ARCHIVE_FILES,
    ) -> Optional[Dict[str, Any]]:
        """Link a pretrained model or checkpoint to the run: ``source`` says where it comes from
        (``local``, ``huggingface``, ``torchvision``, ...), ``path_or_uri`` a local path (described
        like a dataset), a hub id or URI, ``config`` its configuration (flattened, e.g.
        ``model.config.to_dict()``). ``save=True`` stores the file (or a zip of the folder) with
        the same limits as :meth:`log_dataset`. Returns the record."""

        self._check_open("log_model")
        self._check_text("name", name)
        self._check_text("source", source)
        data: Dict[str, Any] = {"name": name, "source": source, "description": _text(description)}
        if path_or_uri is not None:
            data.update(
                self._describe(
                    f"model {name!r}",
                    path_or_uri,
                    save,
                    f"model/{name}",
                    _limits.MAX_LIST_FILES,
                    _limits.MAX_LIST_SECONDS,
                    max_archive_bytes,
                    max_archive_files,
                    must_exist=source == "local",
                )
            )
        if config is not None:
            data["config"] = flatten_params(config)
        self._put_record("model", name, data)
        return data

    def log_pretrained(
        self,
        name: str,
        *,
        path_or_uri: Any = None,
        save: bool = False,
        source_type: str = "unknown",
        description: Optional[str] = None,
    ) -> Optional[Dict[str, Any]]:
        """Runicorn's name for :meth:`log_model` (``source_type`` is ``source`` there)."""
        return self.log_model(name, path_or_uri, save=save, source=source_type, description=description)


def _text(value: Any) -> Optional[str]:
    return None if value is None else str(value)


__all__ = ["RunContext", "name_from_params"]
