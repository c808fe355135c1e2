#!/usr/bin/env python
"""Benchmark suite of issue 7; ``make bench`` runs it and it rewrites ``BENCHMARKS.md`` entirely.

Measures (1) training throughput of both models at each profile through the real data path
(PairDataset + batch sampler + loader, as ``engine._fit`` builds them) next to the same step on
pre-made tensors, (2) gallery-embedding throughput (``engine.encode``) the same way, (3) retrieval
latency, memory and recall@10 against gallery size (exact top-k, faiss flat / IVF / HNSW),
(4) wall times of the last ``make reproduce`` and peak memory, (5) cheap speed-ups (threads,
channels-last, bf16, ``torch.compile``, batch size, inference mode, loader workers).

    .venv/bin/python benchmarks/bench.py [--quick] [--out benchmarks/results] [--markdown BENCHMARKS.md]

Every measurement runs in its own subprocess (its peak RSS is that measurement's) under an
address-space limit, so that a configuration too large for the machine fails instead of waking the
OOM killer, and with a fresh, empty decode-once image store (``SBIR_IMAGE_CACHE_DIR`` in the run's
temporary folder): every measurement starts cold, and nothing from earlier runs is reused. Nothing here
is hard-coded: every number in the report is measured by this run or read from a file it names.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_measure import GB, ROOT, loadavg, log, worker_main
from bench_report import plot, render, training_rows, write_csv


def cpu_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all processes; /proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def git_commit() -> str:
    """Short HEAD commit, ``-dirty`` when tracked files changed."""
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def mem_available_gb() -> float:
    """MemAvailable of /proc/meminfo in GB (8 when unknown)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return 8.0


# ---- orchestration ------------------------------------------------------------------------------------

def run_worker(kind: str, spec: dict[str, Any], args: argparse.Namespace, tmp: Path,
               env_over: dict[str, str | None] | None = None) -> dict[str, Any]:
    """Run one measurement in a subprocess under an address-space limit; its JSON result, or an error.
    ``env_over``: environment changes on top of the run's (a value of None removes the variable).

    Every worker gets a fresh, empty decode-once image store (``SBIR_IMAGE_CACHE_DIR`` in ``tmp``, deleted
    with it), so each measurement starts cold and reuses nothing from earlier runs or other workers;
    ``env_over`` may set ``SBIR_IMAGE_CACHE_DIR`` itself (e.g. ``off``)."""
    n = len(list(tmp.iterdir()))
    path = tmp / f"{kind}-{n}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--_worker", kind, "--_spec", json.dumps(spec),
           "--_result", str(path)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TQDM_DISABLE": "1",
           "SBIR_IMAGE_CACHE_DIR": str(tmp / f"image-store-{kind}-{n}")}
    if args.omp_policy_used == "passive":
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    for k, v in (env_over or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    limit = int((args.mem_cap_gb + 6) * GB)  # + ~4 GB of address space torch reserves at import, + slack

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    log(f"{kind} {json.dumps({k: v for k, v in spec.items() if k in ('profile', 'family', 'sizes')})} "
        f"{env_over or ''} (load {loadavg()})")
    t0, busy0, ours0 = time.perf_counter(), cpu_busy_seconds(), children_cpu_seconds()
    load0 = loadavg()
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, preexec_fn=cap, timeout=args.worker_timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    wall = time.perf_counter() - t0
    if path.exists():
        out = json.loads(path.read_text())
    else:
        out = {"error": f"worker ended without a result (exit {rc}; killed for memory or time?)"}
    out["worker_wall_s"] = wall
    ours = children_cpu_seconds() - ours0
    out["cpu"] = {"ours_cores": ours / wall, "load_start": load0[0],
                  "others_cores": max(0.0, cpu_busy_seconds() - busy0 - ours) / wall}
    if "error" in out:
        log(f"{kind} failed: {out['error']}")
    return out


def wall_times(args: argparse.Namespace) -> dict[str, Any]:
    """The last ``make reproduce`` (its run_metadata.json) and ``make test`` (given, never assumed)."""
    from sbir_utils import paths

    meta_path = Path(args.run_metadata) if args.run_metadata else paths.reports_dir() / "run_metadata.json"
    out: dict[str, Any] = {"run_metadata": str(meta_path)}
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        out.update({k: meta.get(k) for k in ("profile", "dataset", "git_commit", "started", "finished",
                                            "wall_seconds", "notebook_seconds", "cpus", "runs_trained")})
    test_s, source = args.make_test_seconds, "--make_test_seconds"
    if test_s is None and args.make_test_file:
        import re

        text = Path(args.make_test_file).read_text()
        found = re.findall(r"in ([0-9.]+)s", text) or re.findall(r"([0-9]+(?:\.[0-9]+)?)", text)
        test_s, source = (float(found[-1]) if found else None), args.make_test_file
    out["make_test_seconds"], out["make_test_source"] = test_s, source if test_s is not None else None
    return out


def machine_info() -> dict[str, Any]:
    import importlib.metadata as md

    import torch

    def version(p: str) -> str | None:
        try:
            return md.version(p)
        except md.PackageNotFoundError:
            return None

    cpu_model = ""
    try:
        cpu_model = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                          if ln.startswith("model name")), "")
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpus": os.cpu_count(), "cpu_model": cpu_model, "platform": platform.platform(),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "faiss": version("faiss-cpu") or version("faiss-gpu") or version("faiss"), "timm": version("timm"),
            "gpu": gpu, "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GB, 1),
            "mem_available_gb": round(mem_available_gb(), 1)}


def threads_variants(ncpu: int) -> list[tuple[str, dict[str, str | None]]]:
    """OpenMP settings compared in separate processes (the runtime reads them once, at start)."""
    return [(f"{ncpu} threads, OpenMP default waiting (spin)", {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": None}),
            (f"{ncpu} threads, OMP_WAIT_POLICY=PASSIVE", {"OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": None}),
            ("1 thread (OMP_NUM_THREADS=1)", {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1"})]


def plan(args: argparse.Namespace) -> dict[str, Any]:
    """What to run: ``--quick`` is the smoke profile, 2 timed steps and galleries up to 10^4."""
    q = args.quick
    profiles = args.profiles.split(",") if args.profiles else (["smoke"] if q else ["smoke", "cpu", "full"])
    sizes = [int(float(s)) for s in args.sizes.split(",")] if args.sizes else ([10**3, 10**4] if q else
                                                                               [10**3, 10**4, 10**5, 10**6])
    per_profile = {
        # embed_passes: the first (cold: the image store is filled) + at least one warm pass (store read)
        "smoke": {"warmup": 2, "steps": 2 if q else 8, "chunk": 1 if q else 4, "cold_epoch": True,
                  "embed_images": 32 if q else 64, "embed_passes": 2 if q else 3},
        "cpu": {"warmup": 2, "steps": 16, "chunk": 4, "cold_epoch": True, "embed_images": 256, "embed_passes": 3},
        "full": {"warmup": 2, "steps": 2, "chunk": 1, "cold_epoch": False, "embed_images": 64, "embed_passes": 2,
                 "plan_memory": True, "budget_s": 150},
    }
    return {"profiles": profiles, "per_profile": per_profile, "sizes": sizes,
            "tweak_profile": "smoke" if q else "cpu",
            "tweaks": {"few": q, "steps": 2, "warmup": 2, "embed_images": 32 if q else 128, "embed_passes": 1,
                       "workers": [2] if q else [1, 2],
                       "compile": [] if q or args.compile == "none" else
                       (["aafg", "convnext"] if args.compile == "all" else ["aafg"])},
            "threads": {"steps": 3, "budget_s": 10.0 if q else 40.0, "embed_images": 32 if q else 128},
            "retrieval": {"sizes": sizes, "dim": args.dim, "queries": 100 if q else 1000, "seed": 0,
                          "single_max": 20 if q else 100, "single_budget_s": 0.5 if q else 3.0,
                          "hnsw_max_build_s": args.hnsw_max_build_s}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke profile, 2 timed steps, galleries up to 10^4 (~1 min)")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results", help="results folder")
    p.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md", help="report to write")
    p.add_argument("--profiles", default=None, help="comma-separated profiles (default smoke,cpu,full; quick: smoke)")
    p.add_argument("--sizes", default=None, help="comma-separated gallery sizes (default 1e3,1e4,1e5,1e6)")
    p.add_argument("--dim", type=int, default=None, help="retrieval embedding size (default: the cpu profile's)")
    p.add_argument("--skip", default="", help="comma-separated parts to skip: training,tweaks,retrieval")
    p.add_argument("--compile", choices=("none", "aafg", "all"), default="aafg",
                   help="which models the torch.compile trial covers (it costs ~1-2 min per model on 2 cores)")
    p.add_argument("--hnsw_max_build_s", type=float, default=180.0, help="skip HNSW sizes estimated to build longer")
    p.add_argument("--mem_cap_gb", type=float, default=None, help="per-process memory cap (default min(8, half free))")
    p.add_argument("--worker_timeout", type=float, default=1500.0, help="seconds per measurement process")
    p.add_argument("--run_metadata", default=None, help="make reproduce's run_metadata.json (default reports/)")
    p.add_argument("--make_test_seconds", type=float, default=None, help="measured wall time of `make test`")
    p.add_argument("--make_test_file", default=None, help="file with that time (pytest's last line or a number)")
    p.add_argument("--omp_wait_policy", choices=("auto", "default", "passive"), default="auto",
                   help="OpenMP waiting of the measurement processes: 'passive' sets OMP_WAIT_POLICY=PASSIVE "
                        "(spinning threads on a shared CPU can slow torch down many times); 'auto' (default) = "
                        "passive when the 1-min load at start is at least half the cores, else the default")
    p.add_argument("--from_json", default=None, help="only re-render the report from a bench.json (no measuring)")
    p.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    p.add_argument("--_worker", help=argparse.SUPPRESS)
    p.add_argument("--_spec", help=argparse.SUPPRESS)
    p.add_argument("--_result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._worker:
        return worker_main(args._worker, args._spec, args._result)

    if args.from_json:  # re-render the report from stored results (no measuring)
        res = json.loads(Path(args.from_json).read_text())
        res["rendered"] = datetime.datetime.now().isoformat(timespec="seconds")
    else:
        res = measure(args, argv)
    return write(res, args)


def measure(args: argparse.Namespace, argv: list[str] | None) -> dict[str, Any]:
    """Run every measurement process and collect their results."""
    t_start = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(ROOT))
    from sbir_utils.config import load_profile

    if args.mem_cap_gb is None:
        args.mem_cap_gb = round(min(8.0, 0.5 * mem_available_gb()), 1)
    if args.dim is None:
        args.dim = load_profile("cpu").aafg.embed_dim
    load_start = loadavg()
    ncpu = os.cpu_count() or 1
    if args.omp_wait_policy == "auto":
        args.omp_policy_used = "passive" if load_start[0] >= 0.5 * ncpu else "default"
        why = f"auto: 1-min load {load_start[0]} {'>=' if args.omp_policy_used == 'passive' else '<'} {ncpu}/2"
    else:
        args.omp_policy_used, why = args.omp_wait_policy, "--omp_wait_policy"
    if os.environ.get("OMP_WAIT_POLICY") and args.omp_policy_used == "default":
        why += f" (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} inherited from the environment)"
    res_policy = {"used": args.omp_policy_used, "why": why}
    res: dict[str, Any] = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "commit": git_commit(),
                           "load_start": load_start, "machine": machine_info(),
                           "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                    if not k.startswith("_")}, "omp_policy": res_policy}
    cmd = " ".join([".venv/bin/python" if ".venv" in sys.executable else Path(sys.executable).name,
                    os.path.relpath(__file__, ROOT)] + (argv if argv is not None else sys.argv[1:]))
    res["command"] = f"`make bench` (`{cmd}`)" if os.environ.get("MAKELEVEL") else f"`{cmd}`"
    res["embed_dims"] = {n: {"aafg": load_profile(n).aafg.embed_dim, "convnext": load_profile(n).convnext.embed_dim}
                         for n in ("smoke", "cpu", "full")}
    res["embed_dims"] = {n: "/".join(str(v) for v in sorted(set(d.values()))) for n, d in res["embed_dims"].items()}
    todo = plan(args)
    skip = set(filter(None, args.skip.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    loads = [load_start[0]]
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        res["models"] = []
        if "training" not in skip:
            for prof in todo["profiles"]:
                for family in ("aafg", "convnext"):
                    spec = {"profile": prof, "family": family, "device": args.device,
                            "cap_mb": args.mem_cap_gb * 1024, **todo["per_profile"][prof]}
                    res["models"].append({"profile": prof, "family": family, **run_worker("model", spec, args, tmp)})
                    loads.append(loadavg()[0])
        if "tweaks" not in skip:
            spec = {"profile": todo["tweak_profile"], "device": args.device, **todo["tweaks"]}
            res["tweaks"] = run_worker("tweaks", spec, args, tmp, {"TORCHINDUCTOR_CACHE_DIR": str(tmp / "inductor")})
            loads.append(loadavg()[0])
            res["threads"] = []
            for name, over in threads_variants(ncpu)[1 if args.quick else 0:]:  # quick: no spinning (slow if shared)
                out = run_worker("threads", {"profile": todo["tweak_profile"], "device": args.device,
                                             **todo["threads"]}, args, tmp, over)
                res["threads"].append({"variant": name, **out})
                loads.append(loadavg()[0])
        if "retrieval" not in skip:
            res["retrieval"] = run_worker("retrieval", todo["retrieval"], args, tmp)
    res["wall_times"] = wall_times(args)
    res["training_rows"] = training_rows(res["models"])
    res["load_end"] = loadavg()
    res["load_max"] = max(loads + [res["load_end"][0]])
    res["runtime_s"] = time.perf_counter() - t_start

    return res


def write(res: dict[str, Any], args: argparse.Namespace) -> int:
    """CSV files, the plot, bench.json and the markdown report; exit status 1 when a part failed."""
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    res["training_rows"] = training_rows(res["models"])
    write_csv(out / "training.csv", res["training_rows"])
    rrows = (res.get("retrieval") or {}).get("rows", [])
    if rrows:
        write_csv(out / "retrieval.csv", rrows)
        write_csv(out / "retrieval_sweep.csv", res["retrieval"]["sweep"])
        plot(rrows, out / "retrieval_scaling.png")
    if (res.get("tweaks") or {}).get("rows"):
        write_csv(out / "tweaks.csv", res["tweaks"]["rows"])
    (out / "bench.json").write_text(json.dumps(res, indent=1, default=float) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.markdown.write_text(render(res, out.resolve(), args.markdown.resolve()))
    log(f"wrote {args.markdown} and {out} in {res['runtime_s']:.0f} s (load {res['load_start']} -> {res['load_end']})")
    failed = [k for k in ("tweaks", "retrieval") if "error" in (res.get(k) or {})] + \
             [f"{m['profile']}-{m['family']}" for m in res["models"] if "error" in m]
    if failed:
        log(f"failed parts: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
