"""The race of issue 20, for bench_gpu.py: ``sbir train --model convnext_infonce --backbone convnext_small
--amp`` against the ConvNeXt seed's own training loop, on the same FS-COCO-layout folder, in pairs/s.

Ours: ``sbir train`` for 2 epochs in a process of its own (a fresh image store: epoch 1 cold, epoch 2
warm), its own pairs/s per epoch from its metrics.csv (whole epochs, loader start included).

The seed (github.com/Emil-Demic/ConvNext-InfoNCE-SBIR) is public code this project never commits: a checkout
made beforehand into an ignored folder (docs/benchmarks.md: ``build/seed-repo``) is given with
``--seed_repo``. Its ``train.py`` runs as it is (``runpy``), in a process of its own, in a scratch folder
where ``./fscoco`` links to the benchmark's folder, with its own ``config.py`` flags (``--epochs 2
--batch_size 60``), Dataset (single-process PIL decoding), model (torchvision ConvNeXt-Small, fp32), loss,
optimiser, loop and per-epoch validation. What this harness changes, from outside the seed's files, is
listed in the result's ``patches``:

* the model is built with ``pretrained=False`` (ImageNet weights need a download; timing does not depend on them);
* the DataLoader class its ``train.py`` imports is wrapped: the training loader's epochs are timed, and each
  ends after ``seed_steps`` batches (an epoch over fewer pairs; the loop itself is untouched); the validation
  loader is not changed and not timed;
* ``info_nce`` (info-nce-pytorch), when not installed, is a stand-in computing the same loss (InfoNCE with
  the other positives of the batch as negatives, ``negative_mode="unpaired"``);
* ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` when unset: the seed turns on deterministic algorithms on CUDA, which
  cuBLAS refuses without it (PyTorch's reproducibility notes). Should an op still refuse, the run is
  repeated once with ``warn_only=True``, and that is recorded too;
* ``--quick`` only: a tiny ConvNeXt (torchvision's class, one block per stage) at 64 px, so that a CPU smoke
  run ends in seconds.

Timing: epoch 1 from the end of its first ``seed_warmup`` steps (CUDA start-up) and epoch 2 from its start,
each to the device finishing its last step (the seed reads every step's loss, so its loop is synchronous).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

SEED_FILES = ("train.py", "data.py", "model.py", "config.py", "utils.py")
ROOT = Path(__file__).resolve().parents[1]
RACE_TARGET = 8.0  # ours / the seed's pairs/s, in both epochs
OUR_BACKBONE = {False: "convnext_small", True: "convnext_atto"}  # by --quick


def run_sbir_train(data_root: Path, work: Path, device_type: str, settings: dict[str, Any]) -> dict[str, Any]:
    """``sbir train --model convnext_infonce --backbone convnext_small --amp`` (full profile, random weights) for
    2 epochs in a process of its own, with a fresh image store; its pairs/s per epoch from metrics.csv."""
    import csv

    run_dir = work / "sbir-train"
    shown = ["--model", "convnext_infonce", "--backbone", OUR_BACKBONE[settings["quick"]]]
    shown += (["--amp"] if settings["amp"] else []) + ["--profile", "full", "--weights", "random", "--epochs", "2",
                                                         "--num_workers", str(settings["num_workers"])]
    if settings["quick"]:
        shown += ["--image_size", str(settings["image_size"]), "--batch_size", str(settings["batch"])]
    if device_type == "cpu":
        shown.append("--no_cuda")
    args = shown + ["--data_root", str(data_root), "--log_dir", str(run_dir), "--no_progress", "--keep_last", "1"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SBIR_IMAGE_CACHE_DIR": str(work / "store-sbir-train"),
           "SBIR_DATA_DIR": str(work / "sbir-data"), "SBIR_RUNS_DIR": str(work / "runs"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out: dict[str, Any] = {"command": "sbir train " + " ".join(shown), "log": str(work / "sbir-train.log")}
    t0 = time.perf_counter()
    with open(out["log"], "w") as fh:
        proc = subprocess.run([sys.executable, "-m", "sbir_utils", "train", *args], cwd=ROOT, env=env, stdout=fh,
                              stderr=subprocess.STDOUT, timeout=settings["train_timeout"])
    out["wall_s"] = time.perf_counter() - t0
    metrics = run_dir / "metrics.csv"
    if proc.returncode != 0 or not metrics.is_file():
        tail = Path(out["log"]).read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"sbir train exited {proc.returncode}: {tail[0][:300]}")
    with open(metrics) as fh:
        out["pairs_s"] = [float(r["pairs_per_s"]) for r in csv.DictReader(fh)]
    return out


def race(seed_repo: Path | None, data_root: Path, raw: bool, work: Path, device_type: str, settings: dict[str, Any],
         parts: set[str]) -> dict[str, Any]:
    """Ours (part ``train``) and the seed's loop (part ``seed``) on ``data_root``; a part not run says why."""
    res: dict[str, Any] = {"target": RACE_TARGET}
    if "train" in parts:
        try:
            res["ours"] = run_sbir_train(data_root, work, device_type, settings)
        except Exception as exc:  # noqa: BLE001 - reported, the run carries on
            res["ours"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    why = None if "seed" in parts else "not asked for (--parts)"
    why = why or unusable(seed_repo)
    if why is None and not raw:
        why = f"the seed's Dataset needs a raw FS-COCO layout, and {data_root} is an index folder"
    if why is None:
        res["seed"] = run_seed(seed_repo, data_root, work, device_type, settings)
    res["status"] = "skipped" if why else "failed" if "error" in res.get("seed", {}) else "measured"
    res["reason"] = why or res.get("seed", {}).get("error")
    ours, seed = res.get("ours", {}).get("pairs_s"), res.get("seed", {}).get("pairs_s")
    if ours and seed:
        res["speedup"] = [o / s for o, s in zip(ours, seed) if s]
    return res


def unusable(repo: Path | None) -> str | None:
    """Why ``repo`` cannot be raced (one line), or None."""
    if repo is None:
        return ("no --seed_repo given: the race against the seed's loop was skipped (check it out first: "
                "docs/benchmarks.md)")
    missing = [f for f in SEED_FILES if not (Path(repo) / f).is_file()]
    if missing:
        return f"--seed_repo {repo} lacks {', '.join(missing)}: the race against the seed's loop was skipped"
    return None


def seed_commit(repo: Path) -> str | None:
    """The checkout's commit: its SEED_COMMIT file (written with ``git archive``), else ``git rev-parse``."""
    marker = Path(repo) / "SEED_COMMIT"
    if marker.is_file():
        return marker.read_text().strip()[:40] or None
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def run_seed(repo: Path, data_root: Path, work: Path, device_type: str, settings: dict[str, Any]) -> dict[str, Any]:
    """The seed's train.py on ``data_root`` in a process of its own; its timed epochs (see the module doc)."""
    run_dir = Path(work).resolve() / "seed-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    link = run_dir / "fscoco"
    if not link.exists():
        link.symlink_to(Path(data_root).resolve(), target_is_directory=True)
    spec = {"repo": str(Path(repo).resolve()), "epochs": 2, "batch": settings["seed_batch"],
            "steps": settings["seed_steps"], "warmup": settings["seed_warmup"], "no_cuda": device_type != "cuda",
            "quick": settings["quick"], "image_size": settings["image_size"], "relax": False,
            "result": str(run_dir / "seed-result.json")}
    env = {**os.environ, "CUBLAS_WORKSPACE_CONFIG": os.environ.get("CUBLAS_WORKSPACE_CONFIG", ":4096:8"),
           "PYTHONHASHSEED": "0"}
    out: dict[str, Any] = {}
    for relax in (False, True):
        spec["relax"] = relax
        Path(spec["result"]).unlink(missing_ok=True)
        log = run_dir / f"seed{'-relaxed' if relax else ''}.log"
        t0 = time.perf_counter()
        try:
            with open(log, "w") as fh:
                subprocess.run([sys.executable, str(Path(__file__).resolve()), json.dumps(spec)], cwd=run_dir, env=env, stdout=fh,
                               stderr=subprocess.STDOUT, timeout=settings["seed_timeout"])
        except subprocess.TimeoutExpired:
            pass
        path = Path(spec["result"])
        out = json.loads(path.read_text()) if path.is_file() else {
            "error": f"the seed's run ended without a result (killed, or over {settings['seed_timeout']} s?); see {log}"}
        out.update(wall_s=time.perf_counter() - t0, log=str(log))
        if "error" not in out or "deterministic" not in out["error"].lower() or relax:
            break
    out.update(commit=seed_commit(repo), batch=spec["batch"])
    epochs = out.get("epochs", [])
    if "error" not in out and len(epochs) < 2:
        out["error"] = f"the seed's loop ran {len(epochs)} timed epoch(s), not 2; see {out['log']}"
    out["pairs_s"] = [e["pairs_s"] for e in epochs]
    return out


# ---- inside the seed's process ------------------------------------------------------------------------

class EpochTimer:
    """Times the seed's training-loader epochs; each ends after ``steps`` batches."""

    def __init__(self, steps: int, warmup: int):
        self.steps, self.warmup, self.epochs = steps, warmup, []

    def epoch(self, it: Any) -> Any:
        import torch

        def sync() -> None:
            if torch.cuda.is_initialized():
                torch.cuda.synchronize()

        skip = min(self.warmup if not self.epochs else 0, self.steps - 1)
        rec: dict[str, Any] = {"epoch": len(self.epochs) + 1, "untimed_steps": skip, "steps": 0, "pairs": 0,
                               "load_s": 0.0}
        t_start, t0, i = time.perf_counter(), None, 0
        while i < self.steps:
            if i == skip:
                sync()  # the steps before have finished
                t0 = time.perf_counter()
            t = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                break
            if i >= skip:
                rec["load_s"] += time.perf_counter() - t
                rec["steps"] += 1
                rec["pairs"] += len(batch[0])
            yield batch  # the seed's loop body runs here
            i += 1
        sync()
        t1 = time.perf_counter()
        seconds = t1 - (t0 if t0 is not None else t_start)
        rec.update(seconds=seconds, wall_s=t1 - t_start, pairs_s=rec["pairs"] / max(seconds, 1e-9),
                   load_frac=rec["load_s"] / max(seconds, 1e-9))
        self.epochs.append(rec)


def _timed_loader(timer: EpochTimer) -> type:
    import torch.utils.data

    base = torch.utils.data.DataLoader

    class TimedLoader(base):  # type: ignore[misc, valid-type]
        """The seed's training loader (``shuffle=True``) timed by ``timer``; others as they are."""

        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._bench_train = bool(kwargs.get("shuffle"))

        def __iter__(self) -> Any:
            it = super().__iter__()
            return timer.epoch(it) if self._bench_train else it

    return TimedLoader


def _info_nce_stand_in() -> Any:
    """A module ``info_nce`` with ``InfoNCE``: cross-entropy over the cosine similarities / temperature of each
    query with every positive key of the batch, the diagonal being the positives (what info-nce-pytorch
    computes with ``negative_mode="unpaired"`` and no explicit negatives)."""
    import types

    import torch
    import torch.nn.functional as F
    from torch import nn

    class InfoNCE(nn.Module):
        def __init__(self, temperature: float = 0.1, reduction: str = "mean", negative_mode: str = "unpaired"):
            super().__init__()
            if negative_mode != "unpaired":
                raise NotImplementedError("the stand-in computes negative_mode='unpaired' only")
            self.temperature, self.reduction = temperature, reduction

        def forward(self, query: torch.Tensor, positive_key: torch.Tensor, negative_keys: Any = None) -> torch.Tensor:
            if negative_keys is not None:
                raise NotImplementedError("the stand-in takes no explicit negatives")
            logits = F.normalize(query, dim=-1) @ F.normalize(positive_key, dim=-1).T
            labels = torch.arange(len(query), device=query.device)
            return F.cross_entropy(logits / self.temperature, labels, reduction=self.reduction)

    mod = types.ModuleType("info_nce")
    mod.InfoNCE = InfoNCE
    return mod


def _tiny_convnext(**kwargs: Any) -> Any:
    """torchvision's ConvNeXt with one block per stage and ConvNeXt-Small's 768 output channels (--quick)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    return ConvNeXt([CNBlockConfig(32, 64, 1), CNBlockConfig(64, 128, 1), CNBlockConfig(128, 768, 1),
                     CNBlockConfig(768, None, 1)])


def _patch(spec: dict[str, Any]) -> tuple[list[str], EpochTimer]:
    """Everything the harness changes before train.py runs (see the module doc); returns what it did."""
    import torch
    import torch.utils.data

    patches = []
    try:
        import info_nce  # noqa: F401 - the seed's own dependency, when installed
    except ImportError:
        sys.modules["info_nce"] = _info_nce_stand_in()
        patches.append("info_nce: a stand-in (info-nce-pytorch is not installed)")
    import model as seed_model  # the seed's model.py (its folder is first on sys.path)

    init = seed_model.SbirModel.__init__

    def no_download(self: Any, pretrained: bool = True) -> None:
        init(self, pretrained=False)

    seed_model.SbirModel.__init__ = no_download
    patches.append("SbirModel(pretrained=True) built with pretrained=False (no download)")
    if spec["quick"]:
        import utils as seed_utils
        from torchvision.transforms import v2

        seed_model.convnext_small = _tiny_convnext
        make = seed_utils.create_transforms

        def small() -> Any:
            t = make()
            t.transforms[0] = v2.Resize((spec["image_size"], spec["image_size"]), interpolation=t.transforms[0].interpolation)
            return t

        seed_utils.create_transforms = small
        patches.append(f"--quick: tiny ConvNeXt, images resized to {spec['image_size']} px instead of 224")
    if spec["relax"]:
        strict = torch.use_deterministic_algorithms
        torch.use_deterministic_algorithms = lambda mode, *, warn_only=False: strict(mode, warn_only=True)
        patches.append("deterministic algorithms with warn_only=True (an op refused the strict mode)")
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") and not spec["no_cuda"]:
        patches.append(f"CUBLAS_WORKSPACE_CONFIG={os.environ['CUBLAS_WORKSPACE_CONFIG']}")
    timer = EpochTimer(spec["steps"], spec["warmup"])
    torch.utils.data.DataLoader = _timed_loader(timer)
    patches.append(f"training loader: epochs timed, each ended after {spec['steps']} batches")
    return patches, timer


def seed_process(spec: dict[str, Any]) -> int:
    """Entry point of the seed's process: patch, run its train.py, write the result JSON."""
    import runpy

    sys.argv = ["train.py", "--epochs", str(spec["epochs"]), "--batch_size", str(spec["batch"])]
    sys.argv += ["--no_cuda"] if spec["no_cuda"] else []
    sys.path.insert(0, spec["repo"])
    out: dict[str, Any] = {"argv": sys.argv[1:]}
    try:
        out["patches"], timer = _patch(spec)
        import torch

        out.update(torch=torch.__version__, cuda=torch.cuda.is_available() and not spec["no_cuda"])
        runpy.run_path(os.path.join(spec["repo"], "train.py"), run_name="__main__")
        out["epochs"] = timer.epochs
    except BaseException as exc:  # noqa: BLE001 - reported to bench_gpu.py
        out["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        out["traceback"] = traceback.format_exc()[-2000:]
    Path(spec["result"]).write_text(json.dumps(out, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(seed_process(json.loads(sys.argv[1])))
