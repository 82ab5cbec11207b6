"""``epochline upgrade``: bring a store's schema up to this epochline's version.

Readers never change a store (they open it read-only), so a store written by an older epochline is
refused by ``ls``/``show``/``open()`` with a message naming this command; writers upgrade it by
themselves on their first write.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

from . import cli
from .store import open_backend, redact
from .store.base import SCHEMA_VERSION, Backend


def cmd_upgrade(args: argparse.Namespace) -> int:
    backend = open_backend(args.store, create=False)
    if not isinstance(backend, Backend):
        print(f"epochline: the store {redact(backend.uri)} has no schema to upgrade", file=sys.stderr)
        return 2
    try:
        backend.migrate()
    except Exception as exc:
        print(f"epochline: cannot upgrade {backend.uri}: {exc}", file=sys.stderr)
        return 1
    finally:
        backend.close()
    print(f"{backend.uri}: schema version {SCHEMA_VERSION}")
    return 0


def extend(sub: Any, with_store: Callable[[argparse.ArgumentParser], argparse.ArgumentParser]) -> None:
    p = with_store(sub.add_parser(
        "upgrade", help="upgrade a store written by an older epochline to this version's schema",
        description="Upgrade a store's schema in place, e.g.: epochline upgrade --store ./epochline-runs"))
    p.set_defaults(func=cmd_upgrade)


cli._EXTENSIONS.append(extend)
