"""The plugin manager: built-in sinks, entry-point plugins and ``register()``d ones."""

from __future__ import annotations

import threading
from typing import Any, Optional

import pluggy

from . import hookspecs

hookimpl = pluggy.HookimplMarker("epochline")

ENTRY_POINT_GROUP = "epochline"
_BUILTINS = ("epochline.store.sqlite", "epochline.store.postgres", "epochline.sinks.final", "epochline.sinks.store", "epochline.sinks.kogu",
             "epochline.sinks.progress")

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


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created on first use (entry points are loaded once)."""
    global _pm
    if _pm is None:
        with _lock:
            if _pm is None:
                pm = pluggy.PluginManager("epochline")
                pm.add_hookspecs(hookspecs)
                for mod in _builtin_modules():
                    pm.register(mod, name=mod.__name__)
                pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
                _pm = pm
    return _pm


def register(plugin: Any, name: Optional[str] = None) -> str:
    """Register a plugin (a module or an object with ``@hookimpl`` functions) for all new runs."""
    pm = get_plugin_manager()
    if name is not None and pm.get_plugin(name) is not None:
        pm.unregister(name=name)
    registered = pm.register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {name or plugin!r} is already registered")
    return registered


def unregister(plugin: Any = None, name: Optional[str] = None) -> None:
    get_plugin_manager().unregister(plugin, name=name)


def plugin_name(impl: Any) -> str:
    return impl.plugin_name
