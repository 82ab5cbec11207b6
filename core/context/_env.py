"""``init(capture_env=True)``: what the run ran on, captured once, cheaply.

Nothing here imports a framework: GPUs are read from torch only when the program has already
imported it, package versions come from installed metadata (:mod:`importlib.metadata`) without
importing the packages, and the CPU model is read from ``/proc/cpuinfo`` (``platform.processor``
may start a subprocess). Git is asked once (``git status --porcelain=v2 --branch``) with a short
timeout and ``GIT_OPTIONAL_LOCKS=0``, so a slow or locked repository never delays the training
by more than :data:`GIT_TIMEOUT_S` and never takes the user's index lock.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from typing import Any, Dict, List, Optional

GIT_TIMEOUT_S = 2.0
PACKAGES = (
    "epochline",
    "torch",
    "lightning",
    "pytorch-lightning",
    "transformers",
    "accelerate",
    "keras",
    "tensorflow",
    "jax",
    "numpy",
    "scikit-learn",
    "torchvision",
    "datasets",
)
"""The packages whose installed versions are recorded (those not installed are left out)."""

_SECRET = re.compile(r"(?i)(pass(word|wd)?|secret|token|api[-_]?key|credential)")


def redact_argv(argv: List[str]) -> List[str]:
    """The command line with the values of password/token/secret/api-key options replaced."""
    out: List[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        if arg.startswith("-") and _SECRET.search(arg):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def _cpu_model() -> Optional[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine() or None


def _memory_bytes() -> Optional[int]:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _gpus() -> List[Dict[str, Any]]:
    """CUDA devices as torch sees them -- only if torch is already imported (never imported here)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    try:
        if not torch.cuda.is_available():
            return []
        out = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            out.append({"index": i, "name": props.name, "memory_bytes": int(props.total_memory)})
        return out
    except Exception as exc:  # a broken driver must not stop the run
        return [{"error": f"{type(exc).__name__}: {exc}"}]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def package_versions(names: tuple = PACKAGES) -> Dict[str, str]:
    """Installed versions of ``names``, read from the ``<name>-<version>.dist-info`` folder names
    on ``sys.path`` (one directory listing per path entry, first match wins as for imports);
    :func:`importlib.metadata.version` per package costs several times more."""
    wanted = {_norm(n): n for n in names}
    out: Dict[str, str] = {}
    for entry in sys.path:
        try:
            listing = os.listdir(entry or ".")
        except OSError:
            continue
        for item in listing:
            if not item.endswith((".dist-info", ".egg-info")) or "-" not in item:
                continue
            dist, _, version = item.rsplit(".", 1)[0].partition("-")
            name = wanted.get(_norm(dist))
            if name is not None and name not in out and version:
                out[name] = version.split("-")[0]
        if len(out) == len(wanted):
            break
    for name in names:  # e.g. a source checkout whose metadata lives elsewhere
        if name not in out and name == "epochline":
            try:
                from importlib import metadata

                out[name] = metadata.version(name)
            except Exception:
                pass
    return {n: out[n] for n in names if n in out}


def git_state(cwd: str, timeout: float = GIT_TIMEOUT_S) -> Optional[Dict[str, Any]]:
    """``{"commit", "branch", "dirty"}`` of the repository at ``cwd``; None outside a repository;
    ``{"error": ...}`` when git is missing, too slow or fails."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    try:
        proc = subprocess.run(
            ["git", "status", "--porcelain=v2", "--branch", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except FileNotFoundError:
        return {"error": "git is not installed"}
    except subprocess.TimeoutExpired:
        return {"error": f"git status took longer than {timeout:g} s"}
    except OSError as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    if proc.returncode != 0:
        text = proc.stderr.decode("utf-8", "replace").strip()
        if "not a git repository" in text:
            return None
        return {"error": text.splitlines()[0] if text else f"git exited with {proc.returncode}"}
    out: Dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in proc.stdout.decode("utf-8", "replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2]
            out["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2]
            out["branch"] = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            out["dirty"] = True
    return out


def capture(cwd: Optional[str] = None) -> Dict[str, Any]:
    """The environment record (plain JSON values)."""
    cwd = cwd or os.getcwd()
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
        },
        "cpu": {
            "model": _cpu_model(),
            "count": os.cpu_count(),
            "usable": len(affinity(0)) if affinity else os.cpu_count(),
        },
        "memory_bytes": _memory_bytes(),
        "gpus": _gpus(),
        "packages": package_versions(),
        "git": git_state(cwd),
        "command": {"argv": redact_argv(list(sys.argv)), "cwd": cwd},
    }
