"""Sections 1-5 of BENCHMARKS.md (see bench_report.render): training and embedding throughput, retrieval,
wall times and memory, cheap speed-ups."""

from __future__ import annotations

import math
import os
from typing import Any

from bench_measure import CLUSTER_SPREAD, CLUSTERS, MB, QUERY_NOISE, ROOT, TARGETS, fmt


def size_label(n: int) -> str:
    e = round(math.log10(n))
    return f"10^{e}" if 10**e == n else f"{n:,}"


def _store_era(res: dict[str, Any]) -> bool:
    """Whether the results come from a run with the decode-once image store."""
    return any("image_store" in mres for mres in res["models"])


def training_section(res: dict[str, Any]) -> list[str]:
    """Section 1: training throughput, data path against pre-made tensors, and notes per model."""
    tr, L = res["training_rows"], []
    store_era = _store_era(res)
    cold_txt = ("the *cold* column is a whole first epoch through a fresh dataset and an empty decode-once image "
                "store (`data.image_store`): every image is decoded once and written to the store. The timed "
                "data-path steps come after it and read the store, as every later epoch does (loader workers "
                "too: they share the store's file). Every measurement process starts with an empty store of its "
                "own (`SBIR_IMAGE_CACHE_DIR` in the run's temporary folder), so nothing from earlier runs is reused."
                if store_era else
                "the *cold* column is a whole first epoch through a fresh dataset (every image decoded once). This "
                "bench.json predates the decode-once image store: later epochs reused `PairDataset`'s in-memory "
                "cache of that time only when num_workers = 0.")
    L += ["## 1. Training throughput (sketch/photo pairs per second)", "",
          "Forward + loss (`engine.compute_loss`, the epoch-1 objective) + backward + AdamW step, as `engine._fit` "
          "runs it, with random initial weights. *Data path*: `PairDataset` + `make_batch_sampler` + `TrainingBatches` "
          "over the profile's embedded training index, as in the engine (a new seeded loader per epoch without "
          "workers, persistent workers with them). "
          "*Pre-made*: the same step on one real batch decoded beforehand. Timed steps follow warm-up steps and "
          f"alternate between the two modes in blocks; {cold_txt}", "",
          "| profile | model | backbone | px | batch | amp | workers | steps | data path | pre-made | ratio | "
          "loader wait | cold epoch | cold ratio | CPU used / wall (data path / pre-made) | peak RSS |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in tr:
        if "error" in r:
            L.append(f"| {r['profile']} | {r['model']} | error: {r['error'][:200]} |" + " |" * 13)
            continue
        b = str(r["batch_size"]) + ("" if r["batch_size"] == r["batch_size_profile"] else
                                    f" (profile {r['batch_size_profile']})")
        L.append(f"| {r['profile']} | {r['model']} | {r['backbone']} | {r['image_size']} | {b} | {r['amp']} | "
                 f"{r['num_workers']} | {r['timed_steps']} | {fmt(r['data_pairs_s'])} | {fmt(r['compute_pairs_s'])} | "
                 f"{r['ratio']:.2f} | {100 * r['data_wait_frac']:.0f}% | {fmt(r.get('cold_pairs_s'))} | "
                 f"{fmt(r.get('cold_ratio'), 2)} | {r['cpu_share_data']:.2f} / {r['cpu_share_compute']:.2f} | {r['train_peak_rss_mb'] / 1024:.2f} GB |")
    notes = _training_notes(res)
    L += [""] + notes + ["", "*loader wait*: share of the data-path time spent in `next(loader)`. *CPU used / wall*: "
                         "process CPU seconds per wall second (at most the thread count; lower = threads waited for "
                         "cores).", ""]
    return L


def _training_notes(res: dict[str, Any]) -> list[str]:
    """Notes on how each model's training steps were measured (amp, batch plan, workers, image store)."""
    m = res["machine"]
    notes = []
    for mres in res["models"]:
        if mres.get("amp_error"):
            notes.append(f"- {mres['profile']} {mres['family']}: the profile asks for `amp: true`; on this device "
                         f"the step failed with `{mres['amp_error']}`, so it was measured in fp32.")
        if mres.get("memory_plan") and not mres["memory_plan"]["fits"]:
            p = mres["memory_plan"]
            notes.append(f"- {mres['profile']} {mres['family']}: one step at batch 4 / 8 peaked at "
                         f"{p['probe_rss_mb'][0]:.0f} / {p['probe_rss_mb'][1]:.0f} MB, i.e. ~{p['per_pair_mb']:.0f} MB per "
                         f"pair: the profile's batch {mres['batch_size_profile']} would need ~"
                         f"{p['est_profile_rss_mb'] / 1024:.1f} GB, over the {res['args']['mem_cap_gb']:.0f} GB cap, so "
                         f"batch {p['batch_size_run']} was planned.")
        if mres.get("oom_batches"):
            notes.append(f"- {mres['profile']} {mres['family']}: batch {', '.join(map(str, mres['oom_batches']))} ran "
                         f"out of memory under the cap in the first step; measured at batch {mres['batch_size']}.")
        if mres.get("data_setup_s", 0) > 5:
            notes.append(f"- {mres['profile']} {mres['family']}: reading the index took {mres['data_setup_s']:.0f} s, "
                         "including generating the profile's embedded data set (`sbir data`), which was missing; "
                         "not part of any timing.")
        if mres.get("num_workers_profile", 0) > mres.get("num_workers", 0):
            notes.append(f"- {mres['profile']} {mres['family']}: the profile asks for {mres['num_workers_profile']} "
                         f"loader workers; capped at the {m['cpus']} cores here.")
        if mres.get("num_workers", 0) > 0 and mres.get("loader_children_peak_rss_mb"):
            notes.append(f"- {mres['profile']} {mres['family']}: largest loader worker process peaked at "
                         f"{mres['loader_children_peak_rss_mb'] / 1024:.2f} GB RSS (forked from the "
                         f"{mres['train_peak_rss_mb'] / 1024:.2f} GB training process); machine memory available "
                         f"before / after the timed steps: {fmt((mres.get('mem_available_mb_before_train') or 0) / 1024)}"
                         f" / {fmt((mres.get('mem_available_mb_after_train') or 0) / 1024)} GB.")
        if "data" in mres and "cold" not in mres:
            notes.append(f"- {mres['profile']} {mres['family']}: {mres['data']['steps']} timed step(s) per mode "
                         "(no cold epoch: slow on CPU); the data-path steps are the first of epoch 1 ("
                         + ("empty image store: every image decoded" if "image_store" in mres else "cold cache")
                         + (", loader workers just started" if mres.get("num_workers") else "") + ").")
        if "workers0" in mres:
            w = mres["workers0"]
            notes.append(f"- {mres['profile']} {mres['family']}: the same steps with `num_workers=0`"
                         + (" (through an empty image store of their own, so that both start cold)"
                            if "image_store" in mres else "") + ": data path "
                         f"{fmt(w['data']['pairs'] / w['data']['seconds'])} vs pre-made "
                         f"{fmt(w['compute']['pairs'] / w['compute']['seconds'])} pairs/s (loader wait "
                         f"{100 * w['data']['wait_s'] / w['data']['seconds']:.0f}%).")
        st = mres.get("image_store_after_train")
        if st and st.get("slots"):
            notes.append(f"- {mres['profile']} {mres['family']}: image store after the training steps: "
                         f"{st['filled']:,} of {st['slots']:,} images written ({st['mb']:.1f} MB on disk, "
                         f"{st['files']} file(s)).")
    return notes


def embedding_section(res: dict[str, Any]) -> list[str]:
    """Section 2: embedding throughput, cold and warm."""
    tr, L = res["training_rows"], []
    store_era = _store_era(res)
    L += ["## 2. Embedding throughput (gallery photos per second)", "",
          "`engine.encode` (the evaluation path: `ImageDataset` + loader, `no_grad`, eval mode) over the profile's "
          "training photos vs the same loop on pre-made tensors, interleaved pass by pass. The first pass is "
          "*cold*: the process's image store is empty, so every image is decoded, padded and resized once and "
          "written to it. The later passes are *warm*: they read the filled store, as the validation pass of "
          "every epoch and every evaluation does; the Targets table uses their ratio. *Per image, no model*: "
          "`ImageDataset[i]` alone on the filled store / the store's copy of the uint8 image within it / "
          "`ImageDataset[i]` decoding without the store, in one process.", "",
          "| profile | model | px | images x passes | batch | workers | cold: data path | pre-made | ratio | "
          "warm: data path | pre-made | ratio | per image, no model (store / copy / decode) | image store | peak RSS |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for mres, r in zip(res["models"], tr):
        if "error" in r:
            continue
        e = mres["embed"]
        passes = (f"{e['images']} x (1 cold + {e['warm_passes']} warm)" if e.get("warm_passes") is not None
                  else f"{e['images']} x {e['passes']}")
        per = " / ".join(fmt(e.get(k), 2) for k in ("warm_item_ms", "store_read_ms", "decode_item_ms"))
        per = "–" if per == "– / – / –" else f"{per} ms"
        store = "–" if mres.get("image_store_mb") is None else f"{mres['image_store_mb']:.1f} MB"
        L.append(f"| {r['profile']} | {r['model']} | {r['image_size']} | {passes} | {e['batch_size']} | "
                 f"{e.get('num_workers', r['num_workers'])} | {fmt(e.get('cold_img_s'))} | "
                 f"{fmt(e.get('cold_compute_img_s'))} | {fmt(e.get('cold_ratio'), 2)} | {fmt(e['data_img_s'])} | "
                 f"{fmt(e['compute_img_s'])} | {e['ratio']:.2f} | {per} | {store} | {mres['peak_rss_mb'] / 1024:.2f} GB |")
    if not store_era:
        L += ["", "This bench.json predates the decode-once image store: its data-path passes decoded every image "
              "every time, and there was no cold / warm distinction (shown under *warm*)."]
    L.append("")
    return L


def retrieval_section(res: dict[str, Any], rel: str) -> list[str]:
    """Section 3: retrieval latency, memory and recall against gallery size."""
    ret = res.get("retrieval") or {}
    rrows, L = ret.get("rows", []), []
    L += ["## 3. Retrieval: latency, memory and recall against gallery size", ""]
    if "error" in ret:
        L += [f"Retrieval benchmark failed: `{ret['error']}`", ""]
    elif rrows:
        dims = res.get("embed_dims", {})
        L += [f"{ret['dim']}-d unit vectors (the cpu profile's embedding size; the full profile's is "
              f"{dims.get('full', '?')}) from a Gaussian mixture of {CLUSTERS} clusters (unit centre + Gaussian noise of norm "
              f"{CLUSTER_SPREAD}); {ret['queries']} queries = noisy copies (noise norm {QUERY_NOISE}) of random gallery "
              f"items. *batched*: all queries in one call, time / queries. *one query*: median of single-query "
              f"calls. recall@10 is against the exact top-10 (for `exact`, its one-query results against its "
              f"batched ones). Memory = the vectors + index structure (faiss: `serialize_index` size). IVF's nprobe "
              f"and HNSW's ef_search are the smallest values in a doubling sweep reaching recall@10 ≥ "
              f"{TARGETS['ann_recall']} (sweep in `retrieval_sweep.csv`). {ret['threads']} threads (torch and faiss). "
              f"Peak RSS of the retrieval process: {ret['peak_rss_mb'] / 1024:.2f} GB.", "",
              f"![Latency and memory against gallery size]({rel}/retrieval_scaling.png)", "",
              "| n | method | build s | memory | batched ms/query | one query ms | recall@10 | setting / note |",
              "|---|---|---|---|---|---|---|---|"]
        for r in rrows:
            mem = "–" if r["memory_bytes"] is None else f"{r['memory_bytes'] / MB:,.1f} MB"
            L.append(f"| {size_label(r['n'])} | {r['method']} | {fmt(r['build_s'])} | {mem} | {fmt(r['batched_ms'], 3)} | "
                     f"{fmt(r['single_ms'], 2)} | {fmt(r['recall'], 3)} | {r['setting']}{'; ' if r['note'] and r['setting'] else ''}{r['note']} |")
        L.append("")
    else:
        L += ["Not run.", ""]
    return L


def wall_times_section(res: dict[str, Any]) -> list[str]:
    """Section 4: the last `make reproduce`'s notebook times and each benchmark process's memory."""
    wt, L = res["wall_times"], []
    ret = res.get("retrieval") or {}
    rrows = ret.get("rows", [])
    L += ["## 4. Wall times and memory", ""]
    if wt.get("notebook_seconds"):
        L += [f"Last `make reproduce` from `{os.path.relpath(wt['run_metadata'], ROOT)}`: profile {wt['profile']}, "
              f"dataset {wt['dataset']}, started {wt['started']}, finished {wt['finished']}, commit {wt['git_commit']}, "
              f"{wt['cpus']} CPUs.", "", "| notebook | seconds | minutes |", "|---|---|---|"]
        for k, v in wt["notebook_seconds"].items():
            L.append(f"| {k} | {v:.1f} | {v / 60:.1f} |")
        L += [f"| **total (make reproduce)** | {wt['wall_seconds']:.1f} | {wt['wall_seconds'] / 60:.1f} |", ""]
    else:
        L += [f"No `{wt['run_metadata']}`: run `make reproduce` first.", ""]
    L += ["Peak RSS per benchmark process (the training-step figure is read right after the timed training steps, "
          "before encoding). Peak RSS (`ru_maxrss`) includes the pages of the memory-mapped image store that the "
          "process touched; they are file-backed page cache the kernel can reclaim, counted in the file-backed "
          "column together with the shared libraries. *Image store*: the size on disk of the process's store "
          "files (`*.u8`, reserved in full when created) at its end.", "",
          "| process | peak RSS after training | file-backed RSS after training | peak RSS at end | image store |",
          "|---|---|---|---|---|"]
    for mres in res["models"]:
        if "error" not in mres:
            fb = (mres.get("rss_after_train") or {}).get("file_mb")
            L.append(f"| {mres['profile']} {mres['family']} (batch {mres['batch_size']}) | "
                     f"{mres['train_peak_rss_mb'] / 1024:.2f} GB | {fmt(None if fb is None else fb / 1024, 2)}"
                     f"{'' if fb is None else ' GB'} | {mres['peak_rss_mb'] / 1024:.2f} GB | "
                     f"{'–' if mres.get('image_store_mb') is None else format(mres['image_store_mb'], '.1f') + ' MB'} |")
    if ret.get("peak_rss_mb"):
        L.append(f"| retrieval (up to {size_label(max(r['n'] for r in rrows)) if rrows else '?'}) | – | – | "
                 f"{ret['peak_rss_mb'] / 1024:.2f} GB | – |")
    tw = res.get("tweaks") or {}
    if tw.get("peak_rss_mb"):
        L.append(f"| speed-up trials ({tw.get('profile')}) | – | – | {tw['peak_rss_mb'] / 1024:.2f} GB | – |")
    L.append("")
    return L


def speedups_section(res: dict[str, Any]) -> list[str]:
    """Section 5: thread settings and other cheap speed-ups, each timed next to its own baseline."""
    tw, L = res.get("tweaks") or {}, []
    L += [f"## 5. Cheap speed-ups ({tw.get('profile', '?')} profile)", ""]
    th = res.get("threads") or []
    if th:
        L += ["### Thread settings", "", "Compute-only training step (pre-made tensors) and embedding (pre-made "
              "tensors, `no_grad`), each setting in its own process, one after the other:", "",
              "| setting | aafg train pairs/s | convnext train pairs/s | aafg embed images/s | convnext embed images/s "
              "| CPU used / wall (train) | load at start |", "|---|---|---|---|---|---|---|"]
        for t in th:
            if "error" in t:
                L.append(f"| {t['variant']} | error: {t['error'][:150]} | | | | | |")
                continue
            a, c = t.get("aafg", {}), t.get("convnext", {})
            L.append(f"| {t['variant']} | {fmt(a.get('train_pairs_s'))} | {fmt(c.get('train_pairs_s'))} | "
                     f"{fmt(a.get('embed_img_s'))} | {fmt(c.get('embed_img_s'))} | "
                     f"{fmt(a.get('cpu_share'), 2)} / {fmt(c.get('cpu_share'), 2)} | {t['load_start'][0]} |")
        ok = [t for t in th if "error" not in t]
        if ok:
            L.append("")
            for fam, key, what in (("aafg", "train_pairs_s", "aafg training"), ("convnext", "train_pairs_s",
                                   "convnext training"), ("aafg", "embed_img_s", "aafg embedding"),
                                  ("convnext", "embed_img_s", "convnext embedding")):
                best = max(ok, key=lambda t, f=fam, k=key: t.get(f, {}).get(k) or 0)
                L.append(f"- Fastest for {what}: {best['variant']}.")
        L += ["", "### Other settings", ""]
    if "error" in tw:
        L += [f"Failed: `{tw['error']}`", ""]
    elif tw.get("rows"):
        L += ["Each variant is timed right after its own baseline (this run's settings: profile defaults, "
              f"OpenMP waiting {res['omp_policy']['used']}), so the speed-up column is "
              "comparable even while the load changes. No library code was changed for these. *first call* is "
              "the first step/pass of the variant (for `torch.compile` it includes compiling, with an empty "
              "inductor cache). Differences under ~10% are within the noise of a shared machine. Rows whose "
              "baseline is an *empty image store* show what the decode-once store (on by default) gives over "
              "decoding; the other data-path rows compare settings with the store filled.", "",
              "| model | what | variant | baseline | variant | speed-up | first call s |", "|---|---|---|---|---|---|---|"]
        for r in tw["rows"]:
            val = f"error: {r['error']}" if r.get("error") else f"{fmt(r['value'])} {r['unit']}"
            sp = "–" if r.get("speedup") is None else f"x{r['speedup']:.2f}"
            L.append(f"| {r['model']} | {r['kind']} | {r['variant']} | {fmt(r['baseline'])} {r['unit']} | {val} | {sp} | "
                     f"{fmt(r.get('first_call_s'))} |")
        L += ["", "Which wins (speed-up ≥ 1.10 over its adjacent baseline):", ""]
        wins = [r for r in tw["rows"] if r.get("speedup") and r["speedup"] >= 1.10
                and not any(w in r["variant"] for w in ("warm cache", "warm store"))]  # the store is on already
        L += [f"- {r['model']}, {r['kind']}: {r['variant']} (x{r['speedup']:.2f})" for r in wins] or ["- none"]
        L.append("")
    else:
        L += ["Not run.", ""]
    return L


def gpu_section(gpu: dict[str, Any] | None, rel: str = "benchmarks/results") -> list[str]:
    """Section 6: the GPU figures of ``benchmarks/bench_gpu.py`` (its gpu.json), or how to make them."""
    L = ["## 6. GPU: the seeds' full setting (issue 20)", ""]
    if not gpu:
        return L + ["Not measured yet: run `make bench-gpu` on a machine with a GPU (`benchmarks/bench_gpu.py`; "
                    "docs/benchmarks.md says how).", ""]
    m, d, t = gpu.get("machine") or {}, gpu.get("data") or {}, gpu["targets"]
    where = f"{m['gpu']} ({m['cpus']} CPU cores)" if m.get("gpu") else f"the CPU ({m.get('cpus', '?')} cores), no GPU"
    L += [f"Measured by `{gpu['command']}` on {where}, torch {m.get('torch', '?')} (CUDA {m.get('cuda') or '–'}), on "
          f"{gpu['date']} at commit `{gpu['commit']}`, in {gpu.get('runtime_s', 0) / 60:.1f} min"
          + ("" if gpu.get("complete") else " (**cut short: the parts below are what it finished**)")
          + f". Machine-readable: [`{rel}/gpu.json`]({rel}/gpu.json).", ""]
    if gpu["settings"].get("quick") or not m.get("gpu"):
        L += ["**A smoke run (`--quick` and/or no GPU): small backbones at low resolution. These figures show that "
              "the script works, not what a GPU does; run `make bench-gpu` on a GPU machine.**", ""]
    if d.get("source") == "synthetic":
        L += [f"Data: {d['pairs']:,} pairs, {d['what']}; mean file size {d['photo_kb']:.0f} KB (photo) / "
              f"{d['sketch_kb']:.0f} KB (sketch); generated in {d['generate_s']:.1f} s with {d['processes']} processes.", ""]
    else:
        L += [f"Data: `{d.get('root')}`.", ""]
    return L + _gpu_designs(gpu, t) + _gpu_race(gpu.get("race"), t)


def _met(x: float | None, target: float) -> str:
    return "–" if x is None else ("met" if x >= target else f"**missed** ({x:.2f} < {target})")


def _gpu_designs(gpu: dict[str, Any], t: dict[str, float]) -> list[str]:
    """The training and the embedding table of the GPU section."""
    s, designs = gpu["settings"], gpu.get("designs") or []
    L = ["Training pairs/s: *compute only* is the engine's step (uint8 batch normalised on the device, forward, "
         f"loss, backward, AdamW) on one batch already on the device ({s['steps']} timed steps after {s['warmup']} "
         "warm-up steps); *cold* / *warm* are whole epochs through the engine's loader (`PairDataset` + sampler + "
         "`make_loader`, pinned memory), from the loader's start to the device finishing the last step: epoch 1 "
         "with an empty image store (every image decoded and stored), epoch 2 reading it.", "",
         "| design | backbone | px | batch | amp | workers | compute only | cold epoch | ratio | warm epoch | ratio "
         f"| target ≥ {t['data_ratio']} (cold / warm) |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in designs:
        if "error" in r:
            L.append(f"| {r['family']} | error: {r['error'][:200]} |" + " |" * 10)
            continue
        c, w = r["cold"], r["warm"]
        L.append(f"| {r['family']} | {r['backbone']} | {r['image_size']} | {r['batch_size']} | "
                 f"{'bf16' if r['amp'] else 'fp32'} | {r['num_workers']} | {fmt(r['compute']['pairs_s'])} | "
                 f"{fmt(c['pairs_s'])} ({c['steps']} steps, first batch {c['first_batch_s']:.2f} s) | "
                 f"{r['cold_ratio']:.2f} | {fmt(w['pairs_s'])} (first batch {w['first_batch_s']:.2f} s) | "
                 f"{r['warm_ratio']:.2f} | {_met(r['cold_ratio'], t['data_ratio'])} / {_met(r['warm_ratio'], t['data_ratio'])} |")
    L += ["", "Gallery embedding images/s: `engine.encode` over the training photos (a cold pass with an empty image "
          "store, then warm passes) against its loop on uint8 photos already on the device (best of two runs).", "",
          "| design | images | batch | workers | compute only | cold pass | ratio | warm pass | ratio "
          f"| target ≥ {t['embed_ratio']} (warm) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in designs:
        if "error" not in r:
            e = r["embed"]
            L.append(f"| {r['family']} | {e['images']:,} | {e['batch_size']} | {e['num_workers']} | "
                     f"{fmt(e['compute_img_s'])} | {fmt(e['cold_img_s'])} | {e['cold_ratio']:.2f} | "
                     f"{fmt(e['warm_img_s'])} | {e['warm_ratio']:.2f} | {_met(e['warm_ratio'], t['embed_ratio'])} |")
    return L + [""]


def _gpu_race(race: dict[str, Any] | None, t: dict[str, float]) -> list[str]:
    """The race against the ConvNeXt seed's training loop."""
    L = ["Race against the ConvNeXt seed's own training loop (`benchmarks/bench_gpu_race.py`), pairs/s:", ""]
    if not race:
        return L + ["Not run.", ""]
    ours, seed = race.get("ours") or {}, race.get("seed") or {}
    L += ["| run | epoch 1 (cold) | epoch 2 (warm) |", "|---|---|---|"]
    if ours.get("pairs_s"):
        L.append(f"| `{ours['command']}` (whole epochs, its metrics.csv) | "
                 + " | ".join(fmt(x) for x in ours["pairs_s"][:2]) + " |")
    elif ours:
        L.append(f"| `sbir train` | error: {ours.get('error', '?')[:200]} | |")
    if seed.get("pairs_s"):
        e = seed["epochs"]
        L.append(f"| the seed's train.py (commit `{(seed.get('commit') or '?')[:7]}`, fp32, single-process PIL "
                 f"decoding; {e[0]['steps'] + e[0]['untimed_steps']} batches of {seed['batch']} per epoch, the first "
                 f"{e[0]['untimed_steps']} of epoch 1 untimed; loading {100 * e[-1]['load_frac']:.0f}% of epoch 2) | "
                 + " | ".join(fmt(x) for x in seed["pairs_s"][:2]) + " |")
    if race.get("speedup"):
        L += ["| **speed-up** | " + " | ".join(f"x{x:.1f}" for x in race["speedup"][:2]) + " |", "",
              f"Target ≥ x{t['race']:g} in both epochs: {_met(min(race['speedup'][:2]), t['race'])}."]
    if race.get("status") != "measured":
        L += ["", f"Seed loop: {race.get('status')}: {race.get('reason')}"]
    if seed.get("patches"):
        L += ["", "Changed from outside the seed's files for this run: " + "; ".join(seed["patches"]) + "."]
    return L + [""]
