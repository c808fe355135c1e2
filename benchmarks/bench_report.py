"""BENCHMARKS.md, CSV files and the retrieval plot from the benchmark results (see bench.py)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from bench_measure import MB, TARGETS
from bench_sections import (
    embedding_section,
    gpu_section,
    retrieval_section,
    speedups_section,
    training_section,
    wall_times_section,
)
from bench_targets import targets_section

# ---- report -------------------------------------------------------------------------------------------

def training_rows(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for m in models:
        if "error" in m:
            rows.append({"profile": m.get("profile"), "model": m.get("family"), "error": m["error"]})
            continue
        d, c = m["data"], m["compute"]
        r = {"profile": m["profile"], "model": m["family"], "backbone": m["backbone"], "image_size": m["image_size"],
             "batch_size": m["batch_size"], "batch_size_profile": m["batch_size_profile"], "amp": m["amp"],
             "num_workers": m["num_workers"], "timed_steps": d["steps"],
             "data_pairs_s": d["pairs"] / d["seconds"], "compute_pairs_s": c["pairs"] / c["seconds"],
             "data_wait_frac": d["wait_s"] / d["seconds"], "cpu_share_data": d["cpu_s"] / d["seconds"],
             "cpu_share_compute": c["cpu_s"] / c["seconds"], "train_peak_rss_mb": m["train_peak_rss_mb"],
             "loader_children_peak_rss_mb": m.get("loader_children_peak_rss_mb")}
        r["ratio"] = r["data_pairs_s"] / r["compute_pairs_s"]
        if "workers0" in m:
            w0 = m["workers0"]
            r["ratio_workers0"] = (w0["data"]["pairs"] / w0["data"]["seconds"]) / (
                w0["compute"]["pairs"] / w0["compute"]["seconds"])
        if "cold" in m:
            r["cold_pairs_s"] = m["cold"]["pairs"] / m["cold"]["seconds"]
            r["cold_ratio"] = r["cold_pairs_s"] / r["compute_pairs_s"]
            r["cold_wait_frac"] = m["cold"]["wait_s"] / m["cold"]["seconds"]
        e = m["embed"]
        r.update(embed_images=e["images"], embed_data_img_s=e["data_img_s"], embed_compute_img_s=e["compute_img_s"],
                 embed_ratio=e["ratio"], embed_cold_img_s=e.get("cold_img_s"),
                 embed_cold_compute_img_s=e.get("cold_compute_img_s"), embed_cold_ratio=e.get("cold_ratio"),
                 embed_warm_item_ms=e.get("warm_item_ms"), embed_store_read_ms=e.get("store_read_ms"),
                 embed_decode_item_ms=e.get("decode_item_ms"), embed_uint8=e.get("uint8_items"),
                 image_store_mb=m.get("image_store_mb"),
                 rss_file_after_train_mb=(m.get("rss_after_train") or {}).get("file_mb"),
                 peak_rss_mb=m["peak_rss_mb"], amp_error=m.get("amp_error", ""),
                 est_profile_rss_mb=(m.get("memory_plan") or {}).get("est_profile_rss_mb"))
        rows.append(r)
    return rows


def run_parts(res: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(name, {wall, ours_cores, others_cores, load_start}) of every measurement process, in run order."""
    found = [(f"training + embedding: {m['profile']} {m['family']}", m) for m in res.get("models", [])]
    if res.get("tweaks"):
        found.append(("speed-up trials", res["tweaks"]))
    found += [(f"threads: {t['variant']}", t) for t in res.get("threads", [])]
    if res.get("retrieval"):
        found.append(("retrieval", res["retrieval"]))
    return [(name, {"wall": w.get("worker_wall_s", 0.0), **w["cpu"]}) for name, w in found if "cpu" in w]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, keys, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()})


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method and r["single_ms"] is not None]
        if not rs:
            continue
        line = a.plot([r["n"] for r in rs], [r["single_ms"] for r in rs], "o-", label=f"{method} (one query)")[0]
        a.plot([r["n"] for r in rs], [r["batched_ms"] for r in rs], "s--", color=line.get_color(), alpha=0.6,
               label=f"{method} (batched)")
        if method != "exact-raw":
            b.plot([r["n"] for r in rs], [r["memory_bytes"] / MB for r in rs], "o-", label=method)
    a.axhline(TARGETS["exact_100k_ms"], color="grey", lw=0.8, ls=":")
    a.axhline(TARGETS["ann_1m_ms"], color="grey", lw=0.8, ls=":")
    a.set(xscale="log", yscale="log", xlabel="gallery size", ylabel="ms per query",
          title="Top-10 latency (dotted: 20 ms and 5 ms targets)")
    b.set(xscale="log", yscale="log", xlabel="gallery size", ylabel="MB (vectors + index)", title="Index memory")
    a.legend(fontsize=7, ncol=2)
    b.legend(fontsize=7)
    a.grid(True, which="both", alpha=0.3)
    b.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def render(res: dict[str, Any], out: Path, md_path: Path) -> str:
    """BENCHMARKS.md from the results (every number comes from ``res``): one function per section."""
    rel = os.path.relpath(out, md_path.parent)
    L = _machine_section(res, rel)
    L += targets_section(res)
    L += training_section(res)
    L += embedding_section(res)
    L += retrieval_section(res, rel)
    L += wall_times_section(res)
    L += speedups_section(res)
    L += gpu_section(read_gpu(out), rel)
    L += ["## Reproduce", "", "```", "make bench                                  # this file; add BENCH_ARGS=... for options",
          ".venv/bin/python benchmarks/bench.py --quick --markdown /tmp/B.md   # ~1 min smoke check",
          ".venv/bin/python benchmarks/bench.py --help", "```", ""]
    return "\n".join(L)


def read_gpu(out: Path) -> dict[str, Any] | None:
    """``out/gpu.json`` of ``benchmarks/bench_gpu.py`` (the GPU section), None when absent or unreadable."""
    try:
        return json.loads((out / "gpu.json").read_text())
    except (OSError, ValueError):
        return None


def _machine_section(res: dict[str, Any], rel: str) -> list[str]:
    """The title, how the report was made, the machine and the CPU used by each part of the run."""
    m, L = res["machine"], []
    parts = run_parts(res)
    others_max = max([p["others_cores"] for _, p in parts] or [0.0])
    busy = [name for name, p in parts if p["others_cores"] >= 0.25]
    contended = others_max >= 0.5 or res["load_start"][0] >= 0.5 * m["cpus"]
    L += ["# Benchmarks", "",
          f"Generated by {res['command']} on {res['date']} (commit `{res['commit']}`), in "
          f"{res['runtime_s'] / 60:.1f} min"
          + (f" (this report re-rendered from its bench.json on {res['rendered']})" if res.get("rendered") else "")
          + ". This file is rewritten by every run; do not edit it by hand. "
          f"Machine-readable results: [`{rel}/bench.json`]({rel}/bench.json) and the CSV files beside it.", "",
          "## Machine", "",
          f"- CPU: {m['cpus']} cores ({m['cpu_model'] or 'unknown model'}), {m['mem_total_gb']} GB RAM "
          f"({m['mem_available_gb']} GB available at start); GPU: {m['gpu'] or 'none'}",
          f"- Python {m['python']}, torch {m['torch']} ({m['torch_threads']} threads), faiss {m['faiss'] or 'not installed'},"
          f" timm {m['timm']}; {m['platform']}",
          f"- Load average (1/5/15 min) at start: {res['load_start']}, at end: {res['load_end']}. "
          + (f"**Other processes used the CPU during part of this run (up to {others_max:.1f} of {m['cpus']} "
             f"cores on average, in: {', '.join(busy) or 'the start (load)'}; see the table below), so those "
             "numbers are pessimistic and noisy; data-path and pre-made steps were interleaved and each speed-up "
             "is timed next to its own baseline, so ratios are affected alike. Re-run on a quiet machine for "
             "reference numbers.**"
             if contended else f"Other processes used at most {others_max:.2f} cores during any part: quiet."),
          f"- OpenMP waiting in the measurement processes: **{res['omp_policy']['used']}** "
          f"({res['omp_policy']['why']}); section 5 compares the settings.",
          f"- Every measurement ran in its own process (peak RSS = that process's `ru_maxrss`) with an "
          f"address-space cap of {res['args']['mem_cap_gb']:.0f} GB + 6 GB (torch reserves ~4 GB at import).", "",
          "| part | wall s | CPU cores used by it | by other processes | 1-min load at its start |",
          "|---|---|---|---|---|"]
    L += [f"| {name} | {p['wall']:.0f} | {p['ours_cores']:.2f} | {p['others_cores']:.2f} | {p['load_start']} |"
          for name, p in parts] + [""]
    return L


