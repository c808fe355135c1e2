"""The GPU benchmark (benchmarks/bench_gpu.py, issue 20) at tiny size on the CPU: it runs, every figure is there
and plausible, the race is skipped in one line without a seed checkout and runs a (fake) seed's own
train.py with one, and BENCHMARKS.md gets its GPU section and nothing else changes.

Numbers are not checked against the targets here (those need a GPU): only that they are finite and positive.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

# A stand-in for the ConvNeXt seed's checkout, with its files' names, module-level script and the names the
# harness patches (SbirModel(pretrained), model.convnext_small, utils.create_transforms, DataLoader, info_nce).
FAKE_SEED = {
    "config.py": """
        import argparse
        import torch
        parser = argparse.ArgumentParser()
        parser.add_argument('--no_cuda', action='store_true', default=False)
        parser.add_argument('--epochs', type=int, default=10)
        parser.add_argument('--batch_size', type=int, default=60)
        parser.add_argument('--seed', type=int, default=42)
        args = parser.parse_args()
        args.cuda = not args.no_cuda and torch.cuda.is_available()
    """,
    "data.py": """
        import os
        from PIL import Image
        from torch.utils.data import Dataset
        class DatasetFSCOCO(Dataset):
            def __init__(self, root, mode="train", transforms_sketch=None, transforms_image=None):
                val = set(map(int, open(os.path.join(root, "val_normal.txt")).read().split()))
                self.root, self.t = root, transforms_sketch
                self.files = [os.path.join(str(i), f) for i in range(1, 101)
                              for f in sorted(os.listdir(os.path.join(root, "images", str(i))))
                              if (int(f.split('.')[0]) in val) == (mode != "train")]
            def __len__(self):
                return len(self.files)
            def __getitem__(self, idx):
                s = Image.open(os.path.join(self.root, "raster_sketches", self.files[idx]))
                p = Image.open(os.path.join(self.root, "images", self.files[idx]))
                return self.t(s), self.t(p)
    """,
    "model.py": """
        import torch.nn.functional as F
        from torch import nn
        from torchvision.models import convnext_small
        class SbirModel(nn.Module):
            def __init__(self, pretrained=True):
                super().__init__()
                if pretrained:
                    raise RuntimeError("would download ImageNet weights")
                self.embedding_net = convnext_small().features
                self.pool = nn.AdaptiveAvgPool2d(1)
            def forward(self, x):
                return F.normalize(self.pool(self.embedding_net(x)).view(-1, 768))
    """,
    "utils.py": """
        import torch
        from torchvision.transforms.v2 import Compose, Normalize, RGB, Resize, ToDtype, ToImage
        def create_transforms():
            return Compose([Resize((224, 224)), ToImage(), ToDtype(torch.float32, scale=True), RGB(),
                            Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])])
    """,
    "train.py": """
        import torch
        from info_nce import InfoNCE
        from torch.optim import Adam
        from torch.utils.data import DataLoader
        from config import args
        from data import DatasetFSCOCO
        from model import SbirModel
        from utils import create_transforms
        t = create_transforms()
        train = DataLoader(DatasetFSCOCO("fscoco", "train", t, t), batch_size=args.batch_size, shuffle=True)
        val = DataLoader(DatasetFSCOCO("fscoco", "val", t, t), batch_size=args.batch_size * 3, shuffle=False)
        model = SbirModel(pretrained=True)
        opt = Adam(model.parameters(), lr=1e-4)
        loss_fn = InfoNCE(negative_mode="unpaired", temperature=0.05)
        for epoch in range(args.epochs):
            model.train()
            for i, data in enumerate(train):
                loss = loss_fn(model(data[0]), model(data[1]))
                print(loss.item())
                loss.backward()
                opt.step()
                opt.zero_grad()
            with torch.no_grad():
                model.eval()
                for data in val:
                    model(data[0])
    """,
}


def _run(tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SBIR_DATA_DIR": str(tmp / "data"), "OMP_NUM_THREADS": "1"}
    env.pop("SBIR_COMMIT", None)
    cmd = [sys.executable, str(BENCH / "bench_gpu.py"), "--quick", "--device", "cpu", "--out", str(tmp / "out"),
           "--markdown", str(tmp / "B.md"), "--work", str(tmp / "work"), *extra]
    return subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """``bench_gpu.py --quick --device cpu`` without a seed checkout, into a copy of BENCHMARKS.md."""
    tmp = tmp_path_factory.mktemp("bench_gpu")
    shutil.copy(ROOT / "BENCHMARKS.md", tmp / "B.md")
    proc = _run(tmp)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": tmp, "res": json.loads((tmp / "out" / "gpu.json").read_text()), "md": (tmp / "B.md").read_text()}


def _positive(x: object) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_every_figure_is_measured(quick: dict) -> None:
    res = quick["res"]
    assert res["complete"] and res["commit"] and res["date"] and "bench_gpu.py --quick" in res["command"]
    assert res["machine"]["device"] == "cpu" and res["machine"]["gpu"] is None and res["machine"]["torch"]
    d = res["data"]
    assert d["source"] == "synthetic" and d["pairs"] == 100 and d["users"] == 100
    assert 30 < d["photo_kb"] < 400 and 2 < d["sketch_kb"] < 100  # compressible, of the real files' order
    assert [r["family"] for r in res["designs"]] == ["aafg", "convnext"]
    for r in res["designs"]:
        assert "error" not in r, r
        assert r["backbone"] in ("resnet18", "convnext_atto") and r["image_size"] == 64
        assert r["augment_on"] == "device"  # the full profile's: the data path includes the batched augmentation
        for part in ("compute", "cold", "warm"):
            assert _positive(r[part]["pairs_s"]) and r[part]["steps"] > 0, (part, r[part])
            assert 0 <= r[part]["wait_frac"] <= 1
        assert r["cold"]["steps"] == r["warm"]["steps"] == r["steps_per_epoch"]
        for key in ("cold_ratio", "warm_ratio"):
            assert 0 < r[key] < 20, (key, r[key])
        e = r["embed"]
        assert 0 < e["images"] <= r["train_rows"]
        for key in ("compute_img_s", "cold_img_s", "warm_img_s", "cold_ratio", "warm_ratio"):
            assert _positive(e[key]), (key, e[key])
    ours = res["race"]["ours"]
    assert "error" not in ours, ours
    assert len(ours["pairs_s"]) == 2 and all(_positive(x) for x in ours["pairs_s"])
    assert ours["command"].startswith("sbir train --model convnext_infonce --backbone convnext_atto")


def test_race_without_a_seed_checkout_is_skipped_in_one_line(quick: dict) -> None:
    race = quick["res"]["race"]
    assert race["status"] == "skipped" and "seed" not in race and "speedup" not in race
    assert "no --seed_repo given" in race["reason"] and "\n" not in race["reason"]
    assert f"Seed loop: skipped: {race['reason']}" in quick["md"]


def _without_section(md: str) -> str:
    return md[: md.index("## 6. GPU")] + md[md.index("## Reproduce"):] if "## 6. GPU" in md else md


def test_section_spliced_into_benchmarks_md(quick: dict) -> None:
    md = quick["md"]
    assert _without_section(md) == _without_section((ROOT / "BENCHMARKS.md").read_text())  # nothing else changed
    section = md[md.index("## 6. GPU"): md.index("## Reproduce")]
    for part in ("A smoke run", "| aafg | resnet18 | 64 |", "| convnext | convnext_atto | 64 |", "cold pass",
                 "sbir train --model convnext_infonce", "gpu.json"):
        assert part in section, part
    # re-rendering only the section (--render) gives the same file
    proc = subprocess.run([sys.executable, str(BENCH / "bench_gpu.py"), "--render", "--out", str(quick["dir"] / "out"),
                           "--markdown", str(quick["dir"] / "B.md")], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (quick["dir"] / "B.md").read_text() == md


def test_make_bench_renders_the_section_from_gpu_json(tmp_path: Path, quick: dict) -> None:
    sys.path.insert(0, str(BENCH))
    try:
        from bench_report import render
    finally:
        sys.path.remove(str(BENCH))
    res = json.loads((ROOT / "benchmarks" / "results" / "bench.json").read_text())
    out = tmp_path / "results"
    out.mkdir()
    without = render(res, out, tmp_path / "BENCHMARKS.md")
    assert "Not measured yet: run `make bench-gpu` on a machine with a GPU" in without
    shutil.copy(quick["dir"] / "out" / "gpu.json", out / "gpu.json")
    with_gpu = render(res, out, tmp_path / "BENCHMARKS.md")
    assert "| convnext | convnext_atto | 64 |" in with_gpu and "Not measured yet" not in with_gpu
    assert _without_section(with_gpu) == _without_section(without)  # nothing else changes


def test_race_runs_the_seeds_own_train_py(tmp_path: Path) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    for name, text in FAKE_SEED.items():
        (seed / name).write_text(textwrap.dedent(text))
    (seed / "SEED_COMMIT").write_text("0123456789abcdef\n")
    proc = _run(tmp_path, "--parts", "seed", "--seed_repo", str(seed))
    assert proc.returncode == 0, proc.stderr[-3000:]
    race = json.loads((tmp_path / "out" / "gpu.json").read_text())["race"]
    assert race["status"] == "measured", race
    s = race["seed"]
    assert s["commit"] == "0123456789abcdef" and s["batch"] == 8
    assert [e["epoch"] for e in s["epochs"]] == [1, 2]
    assert [e["steps"] for e in s["epochs"]] == [2, 3]  # 3 batches an epoch, the first of epoch 1 untimed
    assert all(_positive(x) for x in s["pairs_s"]) and all(0 < e["load_frac"] < 1 for e in s["epochs"])
    assert any("pretrained=False" in p for p in s["patches"]) and any("64 px" in p for p in s["patches"])
    if importlib.util.find_spec("info_nce") is None:
        assert any(p.startswith("info_nce: a stand-in") for p in s["patches"])
    assert (tmp_path / "work" / "seed-run" / "seed.log").read_text().count("\n") >= 6  # its own loss prints
    md = (tmp_path / "B.md").read_text()
    assert "the seed's train.py (commit `0123456`" in md and "Changed from outside the seed's files" in md
