"""The benchmark suite (benchmarks/bench.py) in --quick mode: it runs, and its results are sane.

Numbers are not checked against targets here (timings belong in BENCHMARKS.md, not in tests); only that
every measured value is finite and positive, recall is in [0, 1] and exact search agrees with itself.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HAVE_FAISS = importlib.util.find_spec("faiss") is not None


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ``bench.py --quick`` once into a temporary folder (never the repository's BENCHMARKS.md)."""
    tmp = tmp_path_factory.mktemp("bench")
    repo_md = ROOT / "BENCHMARKS.md"
    before = repo_md.stat().st_mtime_ns if repo_md.exists() else None
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SBIR_DATA_DIR": os.environ.get("SBIR_DATA_DIR", str(tmp / "data"))}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--out", str(tmp / "out"),
           "--markdown", str(tmp / "B.md"), "--omp_wait_policy", "passive", "--run_metadata", str(tmp / "none.json"),
           "--make_test_seconds", "1"]
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = repo_md.stat().st_mtime_ns if repo_md.exists() else None
    return {"dir": tmp, "res": json.loads((tmp / "out" / "bench.json").read_text()), "repo_md_kept": before == after}


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_outputs_written(quick: dict) -> None:
    out = quick["dir"] / "out"
    for name in ("bench.json", "training.csv", "tweaks.csv"):
        assert (out / name).stat().st_size > 0, name
    md = (quick["dir"] / "B.md").read_text()
    for part in ("# Benchmarks", "## Targets", "Load average", "## 1. Training", "## 3. Retrieval", "--quick"):
        assert part in md, part
    assert "retrieval_scaling.png" in md
    assert quick["repo_md_kept"]  # the repository's BENCHMARKS.md is never touched by the test


def test_training_and_embedding_numbers(quick: dict) -> None:
    rows = quick["res"]["training_rows"]
    assert {(r["profile"], r["model"]) for r in rows} == {("smoke", "aafg"), ("smoke", "convnext")}
    for r in rows:
        assert "error" not in r, r
        for key in ("data_pairs_s", "compute_pairs_s", "ratio", "cold_pairs_s", "embed_data_img_s",
                    "embed_compute_img_s", "embed_ratio", "train_peak_rss_mb", "peak_rss_mb"):
            assert _positive(r[key]), (key, r[key])
        assert 0 <= r["data_wait_frac"] <= 1
        for key in ("embed_cold_img_s", "embed_cold_compute_img_s", "embed_cold_ratio", "embed_warm_item_ms",
                    "embed_store_read_ms", "embed_decode_item_ms", "image_store_mb"):
            assert _positive(r[key]), (key, r[key])
    for m in quick["res"]["models"]:
        e = m["embed"]
        assert e["passes"] >= 2 and e["warm_passes"] == e["passes"] - 1  # a cold pass and at least one warm one
        for key in ("cold_img_s", "cold_compute_img_s", "cold_ratio", "data_img_s", "compute_img_s", "ratio"):
            assert _positive(e[key]), (key, e[key])
        assert _positive(m["image_store_mb"])
        store = m["image_store"]  # a fresh store of the worker's own, under the run's temporary folder
        assert store["dir"] and "image-store-model-" in store["dir"] and 0 < store["filled"] <= store["slots"]
        after = m["image_store_after_train"]  # the training steps filled the training store
        assert after["files"] >= 1 and 0 < after["filled"] <= after["slots"]
    with open(quick["dir"] / "out" / "training.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    for t in quick["res"]["threads"]:
        assert "error" not in t, t
        assert _positive(t["aafg"]["train_pairs_s"]) and _positive(t["convnext"]["embed_img_s"])
    tweaks = quick["res"]["tweaks"]["rows"]
    assert tweaks and all(_positive(r["baseline"]) for r in tweaks)
    assert all(_positive(r["value"]) for r in tweaks if not r.get("error"))


def test_report_shows_cold_and_warm_embedding(quick: dict) -> None:
    md = (quick["dir"] / "B.md").read_text()
    for part in ("cold first pass", "warm, image store filled", "cold: data path", "warm: data path", "image store"):
        assert part in md, part
    assert "has no cache" not in md and "in-memory cache" not in md


def test_report_renders_old_json(quick: dict, tmp_path: Path) -> None:
    """A bench.json from before the image store (no cold/warm or store keys) still renders, with '–'."""
    res = json.loads((quick["dir"] / "out" / "bench.json").read_text())
    for m in res["models"]:
        for key in ("image_store", "image_store_mb", "image_store_after_train", "rss_after_train"):
            m.pop(key, None)
        for key in ("cold_img_s", "cold_compute_img_s", "cold_ratio", "warm_passes", "num_workers", "warm_item_ms",
                    "store_read_ms", "decode_item_ms"):
            m["embed"].pop(key, None)
    res.pop("training_rows", None)
    old = tmp_path / "old.json"
    old.write_text(json.dumps(res))
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--from_json", str(old), "--out", str(tmp_path / "o"),
           "--markdown", str(tmp_path / "old.md")]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    md = (tmp_path / "old.md").read_text()
    assert "predates the decode-once image store" in md and "| – | – | – |" in md


def test_wall_times_come_from_arguments(quick: dict) -> None:
    wt = quick["res"]["wall_times"]
    assert wt["make_test_seconds"] == 1.0 and wt.get("wall_seconds") is None  # no run_metadata.json given


def test_retrieval_numbers(quick: dict) -> None:
    ret = quick["res"]["retrieval"]
    assert "error" not in ret, ret.get("traceback")
    rows = ret["rows"]
    assert {r["n"] for r in rows} == {10**3, 10**4}
    for r in rows:
        if r["single_ms"] is None:  # a skipped index says why
            assert r["note"].startswith("skipped")
            continue
        assert 0.0 <= r["recall"] <= 1.0
        for key in ("batched_ms", "single_ms", "memory_bytes"):
            assert _positive(r[key]), (r["method"], key, r[key])
        assert r["build_s"] >= 0
    exact = [r for r in rows if r["method"] == "exact"]
    assert len(exact) == 2 and all(r["recall"] == 1.0 for r in exact)
    methods = {r["method"] for r in rows}
    if HAVE_FAISS:
        assert {"flat", "ivf", "hnsw"} <= methods
        assert all(r["recall"] >= 0.99 for r in rows if r["method"] == "flat")
        assert (quick["dir"] / "out" / "retrieval_scaling.png").stat().st_size > 0
    else:
        assert methods == {"exact", "exact-raw"}
