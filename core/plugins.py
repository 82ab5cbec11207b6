"""The plugin manager: built-in sinks, entry-point plugins and ``register()``\\ ed ones."""

from __future__ import annotations

import threading
import warnings
from typing import Any, List, Optional

import pluggy

from . import hookspecs
from .errors import PluginError

hookimpl = pluggy.HookimplMarker("epochline")

ENTRY_POINT_GROUP = "epochline"
_BUILTINS = (
    "epochline.store.sqlite",
    "epochline.store.postgres",
    "epochline.sinks.final",
    "epochline.sinks.store",
    "epochline.sinks.kogu",
    "epochline.sinks.progress",
)
DISPATCHED_HOOKS = ("epochline_events", "epochline_run_closed")
"""Hooks the run's dispatcher calls one implementation at a time (see :mod:`epochline.dispatch`)."""

_pm: Optional[pluggy.PluginManager] = None
_lock = threading.Lock()


def _builtin_modules() -> list:
    import importlib

    mods = []
    for name in _BUILTINS:
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside a built-in is a bug: show it
                raise
    return mods


def _wrappers(pm: pluggy.PluginManager, plugin: Any) -> List[str]:
    """Names of the dispatched hooks that ``plugin`` implements as a wrapper."""
    found = []
    for name in DISPATCHED_HOOKS:
        for impl in getattr(pm.hook, name).get_hookimpls():
            if impl.plugin is plugin and (impl.wrapper or impl.hookwrapper):
                found.append(name)
    return found


def _wrapper_message(name: str, hooks: List[str]) -> str:
    return (
        f"plugin {name!r} implements {', '.join(hooks)} as a hook wrapper (wrapper=True or "
        "hookwrapper=True); epochline does not run wrappers on these hooks: the run's dispatcher "
        "calls each sink on its own, so that one failing sink cannot lose the others' events, "
        "and there is no single hook call for a wrapper to wrap. Implement the hook as a plain "
        "@epochline.hookimpl (tryfirst=True / trylast=True set its place among the sinks)"
    )


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use (entry points are loaded once).

    An entry-point plugin that uses a hook wrapper on a dispatched hook is warned about and left
    out (raising here would stop the training of a user who merely has the package installed).
    """
    global _pm
    if _pm is None:
        with _lock:
            if _pm is None:
                pm = pluggy.PluginManager("epochline")
                pm.add_hookspecs(hookspecs)
                for mod in _builtin_modules():
                    pm.register(mod, name=mod.__name__)
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                for name, plugin in list(pm.list_name_plugin()):
                    hooks = _wrappers(pm, plugin)
                    if hooks:
                        pm.unregister(plugin)
                        warnings.warn(
                            f"epochline: {_wrapper_message(name, hooks)}; the plugin is not used",
                            RuntimeWarning,
                            stacklevel=2,
                        )
                _pm = pm
    return _pm


def register(plugin: Any, name: Optional[str] = None) -> str:
    """Register a plugin (a module or an object with ``@hookimpl`` functions) for all new runs.

    A plugin registered again under the same ``name`` replaces the earlier one. Raises
    :class:`~epochline.errors.PluginError` for a plugin object that is already registered, or one
    that implements ``epochline_events``/``epochline_run_closed`` as a hook wrapper.
    """
    pm = get_plugin_manager()
    if name is not None and pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    if pm.is_registered(plugin):
        raise PluginError(f"plugin {name or plugin!r} is already registered")
    registered = pm.register(plugin, name=name)
    if registered is None:
        raise PluginError(f"plugin name {name!r} is blocked (PluginManager.set_blocked)")
    hooks = _wrappers(pm, plugin)
    if hooks:
        pm.unregister(plugin)
        raise PluginError(_wrapper_message(registered, hooks))
    return registered


def unregister(plugin: Any = None, name: Optional[str] = None) -> None:
    """Remove a plugin registered with :func:`register` (by object or by name); runs started
    afterwards no longer call it. Removing a plugin that is not registered does nothing."""
    pm = get_plugin_manager()
    if plugin is None and name is None:
        raise TypeError("unregister() takes the plugin or its name=")
    if (plugin is not None and pm.is_registered(plugin)) or (
        name is not None and pm.get_plugin(name) is not None
    ):
        pm.unregister(plugin, name=name)
