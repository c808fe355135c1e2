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
    with open(quick["dir"] / "out" / "training.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 2
    for t in quick["res"]["threads"]:
        assert "error" not in t, t
        assert _positive(t["aafg"]["train_pairs_s"]) and _positive(t["convnext"]["embed_img_s"])
    tweaks = quick["res"]["tweaks"]["rows"]
    assert tweaks and all(_positive(r["baseline"]) for r in tweaks)
    assert all(_positive(r["value"]) for r in tweaks if not r.get("error"))


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
