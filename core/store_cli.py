"""``epochline upgrade``: bring a store's schema up to this epochline's version.

Readers never change a store (they open it read-only), so a store written by an older epochline is
refused by ``ls``/``show``/``open()`` with a message naming this command; writers upgrade it by
themselves on their first write.
"""

from __future__ import annotations

import argparse
import sys

from .errors import StoreNotFoundError
from .store import open_backend, redact
from .store.base import SCHEMA_VERSION, Backend


def cmd_upgrade(args: argparse.Namespace) -> int:
    try:
        backend = open_backend(args.store, create=False)
    except StoreNotFoundError as exc:
        print(f"epochline: {exc}", file=sys.stderr)
        return 2
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


def configure_upgrade(p: argparse.ArgumentParser) -> None:
    """``epochline upgrade`` (an entry of :data:`epochline.cli.COMMANDS`)."""
    p.description = (
        "Upgrade a store written by an older epochline to this version's schema, in "
        "place. Example: epochline upgrade --store ./epochline-runs"
    )
    p.set_defaults(func=cmd_upgrade)
