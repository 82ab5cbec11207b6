"""``init(system_metrics=True)``: a low-rate sampler of the machine, stored as ``system/*`` metrics.

One daemon thread per run samples every ``interval`` seconds (10 by default), once when it starts
and once more when the run finishes, and puts one :class:`~epochline.events.SystemMetrics` event
on the run's queue per sample (step = the sample's index, continued when a run is resumed).

Always (from the OS, no extra package): ``system/cpu_percent`` (this process, all threads, can be
above 100) and ``system/rss_mb`` (resident memory; Linux ``/proc``, else the peak via
:mod:`resource` as ``system/peak_rss_mb``). With psutil (``pip install 'epochline[system]'``):
``system/host_cpu_percent`` and ``system/host_memory_percent``. With pynvml and a visible NVIDIA
GPU: ``system/gpu<i>_util_percent`` and ``system/gpu<i>_memory_mb``. A source that fails once is
not asked again.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, Callable, Dict, Optional

from ..store.context import SYSTEM_STAGE
from ._limits import SYSTEM_INTERVAL_S as DEFAULT_INTERVAL_S

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _rss_mb() -> Optional[float]:
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * _PAGE / 1048576
    except (OSError, IndexError, ValueError):
        return None


class Sampler:
    def __init__(
        self,
        put: Callable[..., None],
        run_id: str,
        interval: float = DEFAULT_INTERVAL_S,
        start_index: int = 0,
    ):
        self._put = put
        self._run_id = run_id
        self._interval = interval
        self._index = start_index
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._last_cpu = self._cpu_seconds()
        self._last_wall = time.monotonic()
        self._psutil: Any = None
        self._nvml: Any = None
        self._gpus: list = []
        self._thread = threading.Thread(target=self._loop, name=f"epochline-system-{run_id}", daemon=True)

    @staticmethod
    def _cpu_seconds() -> float:
        t = os.times()
        return t.user + t.system

    def start(self) -> Sampler:
        try:
            import psutil

            psutil.cpu_percent(None)  # the first call only sets psutil's baseline
            self._psutil = psutil
        except Exception:
            self._psutil = None
        try:
            import pynvml  # type: ignore[import-not-found,unused-ignore]

            pynvml.nvmlInit()
            self._gpus = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self._nvml = pynvml if self._gpus else None
        except Exception:
            self._nvml = None
        self._thread.start()
        return self

    def sample(self) -> Dict[str, Any]:
        values: Dict[str, Any] = {}
        now, cpu = time.monotonic(), self._cpu_seconds()
        elapsed = now - self._last_wall
        if elapsed > 0.05:  # a CPU share over a shorter time says nothing
            values["system/cpu_percent"] = round(100.0 * (cpu - self._last_cpu) / elapsed, 2)
            self._last_cpu, self._last_wall = cpu, now
            if self._psutil is not None:
                try:
                    values["system/host_cpu_percent"] = float(self._psutil.cpu_percent(None))
                except Exception:
                    self._psutil = None
        rss = _rss_mb()
        if rss is not None:
            values["system/rss_mb"] = round(rss, 2)
        else:
            try:
                import resource

                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                values["system/peak_rss_mb"] = round(
                    peak / (1048576 if os.uname().sysname == "Darwin" else 1024), 2
                )
            except Exception:
                pass
        if self._psutil is not None:
            try:
                values["system/host_memory_percent"] = float(self._psutil.virtual_memory().percent)
            except Exception:
                self._psutil = None
        if self._nvml is not None:
            try:
                for i, handle in enumerate(self._gpus):
                    util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                    mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
                    values[f"system/gpu{i}_util_percent"] = float(util.gpu)
                    values[f"system/gpu{i}_memory_mb"] = round(mem.used / 1048576, 2)
            except Exception:
                self._nvml = None
        return values

    def _take(self) -> None:
        from ..events import SystemMetrics

        with self._lock:
            values = self.sample()
            if values:
                self._put(
                    SystemMetrics(
                        run_id=self._run_id,
                        wall_time=time.time(),
                        step=self._index,
                        values=values,
                        stage=SYSTEM_STAGE,
                    ),
                    len(values),
                )
                self._index += 1

    def _loop(self) -> None:
        try:
            self._take()
            while not self._stop.wait(self._interval):
                self._take()
        except Exception:  # the sampler must never take anything down with it
            pass

    def stop(self) -> None:
        """Stop the thread and take a last sample (so even a short run has its figures)."""
        self._stop.set()
        self._thread.join(max(1.0, 2 * self._interval) if self._interval < 5 else 5.0)
        try:
            self._take()
        except Exception:
            pass
