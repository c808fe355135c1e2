"""Measurements of the benchmark suite: constants, timing helpers and the worker entry point; each ``bench_*``
function runs in its own process (see bench.py): ``bench_throughput`` (training and embedding, on the data
set-up of ``bench_data``), ``bench_tweaks`` (cheap speed-ups, thread settings), ``bench_retrieval``."""

from __future__ import annotations

import json
import math
import os
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
GB = 2**30
MB = 2**20
K = 10  # recall@K and top-K of the retrieval benchmark
TARGETS = {"ratio": 0.95, "exact_100k_ms": 20.0, "ann_1m_ms": 5.0, "ann_recall": 0.95,
           "reproduce_s": 20 * 60.0, "test_s": 15 * 60.0, "rss_gb": 4.0}
CHUNK_ELEMS = 2**26  # exact search: query chunk x gallery <= 64 M scores (256 MB) per chunk
CLUSTERS = 100  # mixture components, like the categories of a photo collection (each spans many IVF cells)
CLUSTER_SPREAD = 1.0  # gallery item = unit cluster centre + this much Gaussian noise (norm), normalised
QUERY_NOISE = 0.3  # query = gallery item + this much Gaussian noise (norm), normalised


# ---- small helpers ---------------------------------------------------------------------------------

def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def maxrss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def mem_available_mb() -> float | None:
    """MemAvailable of /proc/meminfo in MB (None where there is none)."""
    try:
        line = next(ln for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemAvailable:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return None


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Clock:
    """Wall and CPU time of a block; ``cpu_share`` = CPU seconds / wall seconds (at most the thread
    count; lower means the threads waited, e.g. for cores taken by other processes)."""

    def __init__(self, device: Any = None):
        self.device = device

    def __enter__(self) -> Clock:
        self._sync()
        self.t0, self.c0 = time.perf_counter(), cpu_seconds()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._sync()
        self.seconds = time.perf_counter() - self.t0
        self.cpu_share = (cpu_seconds() - self.c0) / max(self.seconds, 1e-9)

    def _sync(self) -> None:
        if self.device is not None and getattr(self.device, "type", "cpu") == "cuda":
            import torch

            torch.cuda.synchronize()


def worker_main(kind: str, spec_json: str, result: str) -> int:
    import warnings

    warnings.filterwarnings("ignore")
    try:
        out = _workers()[kind](json.loads(spec_json))
    except BaseException as exc:  # noqa: BLE001 - reported to the orchestrator, which carries on
        out = {"error": f"{type(exc).__name__}: {str(exc)[:500]}", "traceback": traceback.format_exc()[-3000:],
               "peak_rss_mb": maxrss_mb()}
    Path(result).write_text(json.dumps(out, default=float))
    return 0


def _workers() -> dict[str, Any]:
    """The measurement of each worker kind (imported here: those modules import this one's helpers)."""
    from bench_retrieval import bench_retrieval
    from bench_throughput import bench_model
    from bench_tweaks import bench_threads, bench_tweaks

    return {"model": bench_model, "tweaks": bench_tweaks, "threads": bench_threads, "retrieval": bench_retrieval}


def fmt(x: Any, nd: int = 1) -> str:
    """A number for the report: no decimals from 100, ``nd`` from 1, two below 1, 2-3 significant below 0.1."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    if isinstance(x, float):
        if abs(x) >= 100:
            return f"{x:,.0f}"
        if abs(x) >= 1 or x == 0:
            return f"{x:.{nd}f}"
        return f"{x:.{max(nd, 2)}f}" if abs(x) >= 0.1 else f"{x:.{max(nd - 1, 2)}g}"
    return str(x)
