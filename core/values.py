"""One place that turns whatever users and frameworks pass into the plain values events hold.

Rules (documented in docs/api.md):

* Metric values: ``bool``, ``int``, ``float`` and ``str`` pass as they are; numpy and torch scalars
  (and one-element arrays/tensors) become Python numbers through their ``item()``; ``Decimal`` and
  ``Fraction`` become ``float``. Every value must be storable by every backend before it is queued,
  so that one odd value never costs the good ones written with it: an ``int`` outside 64 bits
  (``2**64``, ``np.uint64`` max) becomes a ``float``; text holding a NUL character or a lone
  surrogate, which no backend can store, is refused. Anything refused raises :class:`OddValue` and
  the run warns once per key and skips it, never crashing the training. Metric names follow the
  same rule (:func:`check_key`).
* Parameters: nested mappings, argparse ``Namespace``, dataclasses and OmegaConf configs are
  flattened into dotted keys (an OmegaConf list stays a list); ``Path`` becomes ``str``, ``Enum``
  its name, small arrays a list, a set a sorted list of its (plain) elements, a callable its
  qualified name (never called). A plain object whose class keeps the default ``repr`` (which
  holds a memory address, so identical configs would differ) becomes ``ClassName(attr=value, ...)``
  with its public attributes (plain values as their ``repr``, others as ``<TypeName>``); any other
  object becomes its ``repr`` with ``at 0x...`` addresses removed (a ``repr`` that raises gives
  ``<TypeName object>``). Long values are kept whole. The top level must be a mapping-like object
  (dict, Namespace, dataclass, OmegaConf config...): :func:`check_params_object` says so.
"""

from __future__ import annotations

import dataclasses
import enum
import numbers
import os
import re
import sys
import warnings
from decimal import Decimal
from fractions import Fraction
from typing import Any, Dict, Iterable, Mapping

PLAIN = (bool, int, float, str)
_PLAIN_TYPES = frozenset(PLAIN)
MAX_ARRAY_PARAM = 256
"""Arrays with at most this many elements are kept as a list parameter; larger ones are described."""
_MAX_DEPTH = 128
"""Parameters nested deeper than this (a real config never is) are cut there, with a warning."""
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The integers every backend stores as integers; others are stored as floats."""


class OddValue(TypeError):
    """A value that cannot be stored as a metric."""


def _is_array_like(value: Any) -> bool:
    module = type(value).__module__ or ""
    return module.startswith(("numpy", "torch", "jax", "tensorflow")) and hasattr(value, "shape")


def _item(value: Any) -> Any:
    """Python scalar from a numpy/torch/jax scalar or one-element array, else raise OddValue."""
    size = getattr(value, "size", None)
    if callable(size):  # torch: size() is a method; numel() is the count
        size = value.numel()
    if size != 1:
        raise OddValue(
            f"an array of shape {tuple(value.shape)} is not a scalar metric; "
            "log its mean, or use run.log_histogram()"
        )
    if hasattr(value, "detach"):
        value = value.detach()
    return value.item()


def storable_text(text: str) -> bool:
    """True when every backend can store ``text`` (no NUL, valid UTF-8: no lone surrogates)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_key(key: Any) -> str:
    """A metric name every backend can store (non-text names become text), or raise OddValue."""
    key = key if type(key) is str else str(key)
    if not storable_text(key):
        raise OddValue(
            f"the metric name {key!r} cannot be stored (it holds a NUL character or a "
            "lone surrogate); rename the metric"
        )
    return key


def _plain(value: Any) -> Any:
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        value = int(value)
        return value if INT64_MIN <= value <= INT64_MAX else float(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        value = str(value)
        if not storable_text(value):
            raise OddValue(
                f"the text {value!r} cannot be stored (it holds a NUL character or a lone surrogate)"
            )
        return value
    raise OddValue(f"{type(value).__name__} is not a metric value (numbers, bools and text are)")


def metric_value(value: Any) -> Any:
    """A plain bool/int/float/str that every backend stores, or raise OddValue."""
    t = type(value)
    if t is float or t is bool:
        return value
    if isinstance(value, PLAIN):  # ints out of range, text, subclasses (IntEnum, numpy.float64)
        return _plain(value)
    if isinstance(value, (Decimal, Fraction)):
        return float(value)
    if hasattr(value, "item") and (hasattr(value, "shape") or hasattr(value, "dtype")):
        out = _item(value)
        if type(out) not in _PLAIN_TYPES and not isinstance(out, complex):
            out = _odd_number(out)  # np.longdouble: its item() is itself
        if type(out) not in _PLAIN_TYPES:
            raise OddValue(f"{type(value).__name__} holds a {type(out).__name__}, not a number")
        return _plain(out)
    raise OddValue(f"{type(value).__name__} is not a metric value (numbers, bools and text are)")


def _qualname(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return f"{module}.{name}" if module and module != "builtins" else str(name)


_ADDRESS = re.compile(r" at 0x[0-9A-Fa-f]+")


def _safe_repr(obj: Any) -> str:
    """``repr`` without memory addresses (so equal configs give equal parameters)."""
    cls = type(obj)
    try:
        if getattr(cls, "__repr__", None) is object.__repr__:
            return _object_text(obj)
        return _ADDRESS.sub("", repr(obj))
    except Exception:  # a user __repr__ that raises must not reach the training
        return f"<{cls.__name__} object>"


def _object_text(obj: Any) -> str:
    """``ClassName(a=1, b='x')`` for a plain object: its public attributes, never calling them."""
    attrs = getattr(obj, "__dict__", None)
    parts = []
    if isinstance(attrs, dict):
        for name, value in attrs.items():
            if type(name) is not str or name.startswith("_"):
                continue
            leaf = _scalar_param(value)
            text = repr(leaf) if leaf is not _NOT_SCALAR else f"<{type(value).__name__}>"
            parts.append(f"{name}={text}")
    return f"{type(obj).__qualname__}({', '.join(parts)})"


def check_params_object(params: Any) -> None:
    """Raise a clear TypeError for a parameters object that has no names (text, a number, a list).

    ``params="lr=0.1"`` or ``params=[0.1, 32]`` used to be stored as one parameter called
    ``value``; nothing can be compared or searched by name that way.
    """
    if isinstance(params, (str, bytes, bool, int, float, list, tuple, set, frozenset)):
        raise TypeError(
            f"params must be a mapping of names to values (a dict, argparse Namespace, "
            f"dataclass or OmegaConf config), got {type(params).__name__} {params!r:.60}; "
            "e.g. params={'lr': 0.01, 'layers': [64, 32]}"
        )


def plain_text(text: str) -> str:
    """``text`` as storable UTF-8: a lone surrogate (from a bad decode) becomes U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _odd_number(value: Any) -> Any:
    """A number kind events cannot hold, made plain: complex -> its text (as Lightning's
    ``_sanitize_params``), other reals (``np.longdouble``) -> float; else _NOT_SCALAR."""
    try:
        if isinstance(value, numbers.Real):
            return float(value)
        if isinstance(value, numbers.Complex):
            return str(complex(value))
    except (TypeError, ValueError, OverflowError):
        pass
    return _NOT_SCALAR


def _scalar_param(value: Any) -> Any:
    """A plain leaf value, or the sentinel _NOT_SCALAR."""
    if value is None:
        return value
    if type(value) in _PLAIN_TYPES:
        return plain_text(value) if type(value) is str else value
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, PLAIN):
        return plain_text(str(value)) if isinstance(value, str) else metric_value(value)
    if isinstance(value, os.PathLike):
        return plain_text(os.fspath(value))
    if isinstance(value, (Decimal, Fraction)):
        return float(value)
    if _is_array_like(value):
        try:
            size = value.numel() if callable(getattr(value, "size", None)) else value.size
            if size == 1:
                item = _item(value)
                return item if type(item) in _PLAIN_TYPES else _odd_number(item)
            if size <= MAX_ARRAY_PARAM:
                data = value.detach().cpu() if hasattr(value, "detach") else value
                return data.tolist()
            return f"<{type(value).__name__} shape={tuple(value.shape)} dtype={getattr(value, 'dtype', '?')}>"
        except Exception:
            return _safe_repr(value)
    return _odd_number(value)


_NOT_SCALAR = object()


def _omegaconf_container(value: Any) -> Any:
    """An OmegaConf config as plain containers, if OmegaConf is already imported by the user."""
    omegaconf = sys.modules.get("omegaconf")
    if omegaconf is None:
        return None
    try:
        if isinstance(value, (omegaconf.DictConfig, omegaconf.ListConfig)):
            return omegaconf.OmegaConf.to_container(value, resolve=True)
    except Exception:
        try:
            return omegaconf.OmegaConf.to_container(value, resolve=False)
        except Exception:
            return None
    return None


def _children(value: Any) -> Iterable[tuple] | None:
    """(key, child) pairs of a container-like parameter value, or None for a leaf."""
    if isinstance(value, Mapping):
        return ((str(k), v) for k, v in value.items())
    container = _omegaconf_container(value)
    if container is not None:
        return _children(container)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return ((f.name, getattr(value, f.name, None)) for f in dataclasses.fields(value))
    if type(value).__name__ == "Namespace" and hasattr(value, "__dict__"):
        return ((str(k), v) for k, v in vars(value).items())
    return None


def flatten_params(params: Any, prefix: str = "") -> Dict[str, Any]:
    """Flatten a params object into ``{dotted.key: plain value}`` without calling user code."""
    out: Dict[str, Any] = {}
    _flatten(params, prefix, out, set(), 0)
    if not all(k.isascii() for k in out):
        out = {plain_text(k): v for k, v in out.items()}
    return out


def _flatten(value: Any, key: str, out: Dict[str, Any], seen: set, depth: int) -> None:
    leaf = _scalar_param(value)
    if leaf is not _NOT_SCALAR:
        out[key or "value"] = leaf
        return
    container = _omegaconf_container(value)  # a ListConfig becomes a list, a DictConfig a dict
    if container is not None:
        value = container
    if id(value) in seen:
        out[key or "value"] = f"<recursive {type(value).__name__}>"
        return
    if depth > _MAX_DEPTH:
        out[key or "value"] = f"<{type(value).__name__} nested deeper than {_MAX_DEPTH} levels>"
        warnings.warn(
            f"epochline: parameter {key!r} is nested deeper than {_MAX_DEPTH} levels; what "
            "lies below is stored as a placeholder (flatten it, or log it with "
            "log_artifact)",
            RuntimeWarning,
            stacklevel=2,
        )
        return
    children = _children(value)
    if children is None and isinstance(value, (list, tuple)):
        leaves = [_scalar_param(v) for v in value]
        if all(v is not _NOT_SCALAR for v in leaves):
            out[key or "value"] = leaves
            return
        children = ((str(i), v) for i, v in enumerate(value))
    if children is None and isinstance(value, (set, frozenset)):
        leaves = [_scalar_param(v) for v in value]
        if all(v is not _NOT_SCALAR and v is not None for v in leaves):
            # elements keep their types; sorted by kind, then value, so the order is stable
            out[key or "value"] = sorted(leaves, key=lambda v: (type(v).__name__, v))
        else:
            out[key or "value"] = sorted(_safe_repr(v) for v in value)
        return
    if children is None:
        if callable(value):
            out[key or "value"] = _qualname(value)
        else:
            out[key or "value"] = _safe_repr(value)
        return
    seen.add(id(value))
    empty = True
    for child_key, child in children:
        empty = False
        _flatten(child, f"{key}.{child_key}" if key else child_key, out, seen, depth + 1)
    seen.discard(id(value))
    if empty and key:
        out[key] = None if not isinstance(value, (list, tuple)) else []
