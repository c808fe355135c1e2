"""`engine.training` (`fit`, the training engine): the run folder it writes, determinism, exact resume, failure
handling, category-level data, DDP, AMP, fine-tuning a seed state dict, frozen BatchNorm. (`evaluate`:
test_inference.py.)"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch

from sbir_utils import engine
from sbir_utils.config import TrainConfig
from sbir_utils.engine import NonFiniteLossError, fit
from tests.helpers import REPO, make_tiny_dataset

torch.set_num_threads(1)
TIMING = ["pairs_per_s", "epoch_time_s", "wall_time_s"]
# timm's 0.37M-parameter test ResNet (BatchNorm, 96 channels) keeps every run to a second or two.
AAFG = TrainConfig(model="aafg", backbone="test_resnet", image_size=32, embed_dim=16, epochs=2, batch_size=8,
                   lr=1e-3, rerank_k=3, seed=7)
CONVNEXT = TrainConfig(model="convnext_infonce", backbone="test_convnext", image_size=32, embed_dim=16, epochs=2,
                       batch_size=8, lr=1e-3, loss="infonce", seed=7)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_tiny_dataset(tmp_path_factory.mktemp("engine_data"))


def _fit(cfg, data, run_dir, resume=False, device=None, **settings):
    """``fit`` without progress bar, keeping every epoch's checkpoint; ``settings``: TrainConfig fields."""
    return fit(dataclasses.replace(cfg, keep_last=0, **settings), data, run_dir, resume=resume, progress=False,
               device=device)


def test_fit_writes_the_run_folder(data, tmp_path):
    s = _fit(AAFG, data, tmp_path / "run", warmup_epochs=1)
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "epoch_01.pt", "epoch_02.pt"]
    assert (run / "config.json").exists() and list((run / "tb").glob("events.out.tfevents.*"))
    m = pd.read_csv(run / "metrics.csv")
    assert m["epoch"].tolist() == [1, 2]
    assert m["objective"].tolist() == ["infonce", "triplet-hard"]  # warm-up, then batch-hard triplet
    for col in ["train_loss", "lr", "val_acc@1", "val_acc@10", "val_mAP@all", "val_mrr", "val_s2_acc@1",
                "val_mean_cos", *TIMING]:
        assert col in m.columns and m[col].notna().all(), col
    assert m["lr"].iloc[0] == pytest.approx(1e-3) and m["lr"].iloc[1] < m["lr"].iloc[0]  # cosine decay
    # best.pt is the epoch with the highest validation metric (stage 2 acc@1 for AAFG with cross-attention).
    assert s["best_metric"] == "s2_acc@1"
    best_epoch = int(m.loc[m["val_s2_acc@1"].idxmax(), "epoch"])
    assert s["best_epoch"] == best_epoch
    ckpt = torch.load(run / "checkpoints" / "best.pt", weights_only=True)  # tensors and plain values only
    assert ckpt["epoch"] == best_epoch and ckpt["config"]["backbone"] == "test_resnet"
    assert set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "config", "epoch", "history", "best"}


def test_same_command_twice_gives_the_same_metrics(data, tmp_path):
    _fit(CONVNEXT, data, tmp_path / "a")
    _fit(CONVNEXT, data, tmp_path / "b")
    a = pd.read_csv(tmp_path / "a" / "metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "b" / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)


def test_resume_continues_exactly(data, tmp_path):
    _fit(AAFG, data, tmp_path / "straight")
    _fit(dataclasses.replace(AAFG, epochs=1), data, tmp_path / "resumed")
    s = _fit(AAFG, data, tmp_path / "resumed", resume=True)
    assert s["epochs_run"] == 2
    a = pd.read_csv(tmp_path / "straight" / "metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "resumed" / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)
    wa = torch.load(tmp_path / "straight" / "checkpoints" / "epoch_02.pt", weights_only=True)["model"]
    wb = torch.load(tmp_path / "resumed" / "checkpoints" / "epoch_02.pt", weights_only=True)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_loader_workers_persist_and_give_the_same_run_for_any_count_and_after_a_resume(data, tmp_path):
    _fit(CONVNEXT, data, tmp_path / "one", num_workers=1)
    _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "two", num_workers=2)
    _fit(CONVNEXT, data, tmp_path / "two", resume=True, num_workers=2)
    a = pd.read_csv(tmp_path / "one" / "metrics.csv").drop(columns=TIMING)
    b = pd.read_csv(tmp_path / "two" / "metrics.csv").drop(columns=TIMING)
    pd.testing.assert_frame_equal(a, b)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path, monkeypatch):
    real = engine.compute_loss

    def poisoned(out, labels, cfg, objective, *args, **kw):
        loss, parts = real(out, labels, cfg, objective, *args, **kw)
        return (loss * float("nan"), parts) if poisoned.epoch == 2 else (loss, parts)

    real_objective = engine._objective

    def objective(epoch, *args):
        poisoned.epoch = epoch
        return real_objective(epoch, *args)

    # patched where the training loop looks them up (the module that defines them)
    monkeypatch.setattr(engine.objectives, "compute_loss", poisoned)
    monkeypatch.setattr(engine.objectives, "_objective", objective)
    with pytest.raises(NonFiniteLossError, match=r"epoch 2, batch 1: .*not finite.*epoch_01\.pt"):
        _fit(CONVNEXT, data, tmp_path / "run")
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["best.pt", "epoch_01.pt"]
    assert torch.load(tmp_path / "run" / "checkpoints" / "epoch_01.pt", weights_only=True)["epoch"] == 1


def test_bad_settings_are_refused(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing|no epoch_XX"):
        _fit(CONVNEXT, data, tmp_path / "none", resume=True)
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        _fit(dataclasses.replace(CONVNEXT, epochs=0), data, tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        _fit(CONVNEXT, data, tmp_path / "x", train_csv="missing.csv")
    _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "once")
    with pytest.raises(FileExistsError, match="already holds a run"):
        _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "once")
    with pytest.raises(ValueError, match="different settings"):
        _fit(dataclasses.replace(CONVNEXT, epochs=2, lr=0.5), data, tmp_path / "once", resume=True)
    wrong = tmp_path / "wrong.pth"
    torch.save({"embedding_net.weight": torch.zeros(2)}, wrong)
    with pytest.raises(ValueError, match="wrong.pth: does not fit a convnext_infonce"):
        _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "w", model_path=wrong)
    with pytest.raises(ValueError, match="mining"):
        _fit(CONVNEXT, data, tmp_path / "m", mining="easy")
    with pytest.raises(ValueError, match="select_metric"):
        _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "sel", select_metric="accuracy")


def test_category_level_uses_pk_batches_and_map(tmp_path):
    root = make_tiny_dataset(tmp_path / "cat", photos=(8, 4, 4), protocol="category", classes=2)
    s = _fit(dataclasses.replace(CONVNEXT, epochs=1), root, tmp_path / "run")
    assert s["options"]["sampler"] == "pk" and s["best_metric"] == "mAP@all"
    assert 0 < s["final"]["val_mAP@all"] <= 1


_DDP_WORKER = textwrap.dedent("""
    import os, sys, torch
    sys.path.insert(0, sys.argv[3])
    from sbir_utils.config import TrainConfig
    from sbir_utils.engine import fit
    torch.set_num_threads(1)
    cfg = TrainConfig(model="aafg", backbone="test_resnet", image_size=32, embed_dim=16, epochs=2,
                      batch_size=int(sys.argv[4]), lr=1e-3, rerank_k=3, seed=7, keep_last=0)
    model_holder = {}
    import sbir_utils.engine.training as eng  # where fit's set-up looks build_model up
    real = eng.build_model
    def spy(*a, **k):
        model_holder["m"] = real(*a, **k)
        return model_holder["m"]
    eng.build_model = spy
    fit(cfg, sys.argv[1], sys.argv[2], progress=False)
    total = sum(float(p.double().sum()) for p in model_holder["m"].parameters())
    with open(os.path.join(sys.argv[2], f"params_rank{os.environ.get('RANK', '0')}.txt"), "w") as f:
        f.write(repr(total))
""")


@pytest.mark.slow
def test_two_process_ddp_with_gloo(data, tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(_DDP_WORKER)
    repo = str(REPO)
    # gloo on CPU by design: on a GPU machine the ranks would otherwise each take a GPU (and NCCL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(data), str(tmp_path / "ddp"), repo, "4"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Both ranks end with the same weights (DDP all-reduced every step); only rank 0 wrote the run.
    p0 = float((tmp_path / "ddp" / "params_rank0.txt").read_text())
    p1 = float((tmp_path / "ddp" / "params_rank1.txt").read_text())
    assert p0 == pytest.approx(p1, rel=1e-9, abs=1e-9)
    m = pd.read_csv(tmp_path / "ddp" / "metrics.csv")
    assert m["epoch"].tolist() == [1, 2]
    ckpt = torch.load(tmp_path / "ddp" / "checkpoints" / "epoch_02.pt", weights_only=True)
    assert ckpt["options"]["world_size"] == 2
    # Single process with the same global batch (2 x 4 = 8) for comparison: the batches are split
    # differently (in-batch negatives come from 4 pairs per rank), so the runs are close, not equal.
    single = _fit(AAFG, data, tmp_path / "single")
    ms = pd.read_csv(tmp_path / "single" / "metrics.csv")
    assert abs(m["train_loss"].iloc[0] - ms["train_loss"].iloc[0]) < 0.5 * ms["train_loss"].iloc[0]
    assert abs(m["val_mrr"].iloc[-1] - single["final"]["val_mrr"]) < 0.35


_DDP_EXACT_WORKER = textwrap.dedent("""
    import json, os, sys, torch
    sys.path.insert(0, sys.argv[3])
    from sbir_utils.config import TrainConfig
    from sbir_utils.engine import fit
    torch.set_num_threads(1)
    fit(TrainConfig(**{**json.loads(sys.argv[4]), "keep_last": 0, "head_bn": False}), sys.argv[1], sys.argv[2],
        progress=False)
""")


@pytest.mark.slow
def test_ddp_step_equals_one_process_with_the_global_batch(data, tmp_path):
    """2 processes x 4 pairs update the model as 1 process x 8 pairs: the same global batches (photo-unique
    across ranks), InfoNCE over the gathered embeddings, DDP's averaged gradients. The model has no
    BatchNorm (SyncBatchNorm needs a GPU) and augmentation is off (its draws depend on the process)."""
    cfg = dataclasses.replace(CONVNEXT, augment=False, epochs=2)
    script = tmp_path / "worker.py"
    script.write_text(_DDP_EXACT_WORKER)
    repo = str(REPO)
    per_rank = json.dumps(dataclasses.asdict(dataclasses.replace(cfg, batch_size=4)))
    # gloo on CPU by design: on a GPU machine the ranks would otherwise each take a GPU (and NCCL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(data), str(tmp_path / "ddp"), repo, per_rank],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _fit(dataclasses.replace(cfg, batch_size=8), data, tmp_path / "one", head_bn=False)
    ddp, one = pd.read_csv(tmp_path / "ddp" / "metrics.csv"), pd.read_csv(tmp_path / "one" / "metrics.csv")
    assert ddp["train_loss"].tolist() == pytest.approx(one["train_loss"].tolist(), rel=1e-5)
    for col in ("val_acc@1", "val_acc@10", "val_mrr"):
        assert ddp[col].tolist() == pytest.approx(one[col].tolist(), abs=1e-6), col
    w_ddp = torch.load(tmp_path / "ddp" / "checkpoints" / "epoch_02.pt", weights_only=True)["model"]
    w_one = torch.load(tmp_path / "one" / "checkpoints" / "epoch_02.pt", weights_only=True)["model"]
    for k in w_one:
        assert torch.allclose(w_ddp[k], w_one[k], rtol=1e-4, atol=1e-5), k
    # A different global batch (2 x 2 = 4 pairs) gives a different run: the comparison can fail.
    _fit(dataclasses.replace(cfg, batch_size=4), data, tmp_path / "four", head_bn=False)
    four = pd.read_csv(tmp_path / "four" / "metrics.csv")
    assert four["train_loss"].iloc[0] != pytest.approx(ddp["train_loss"].iloc[0], rel=1e-3)


@pytest.mark.parametrize("cfg", [CONVNEXT, AAFG], ids=["convnext_infonce", "aafg"])
def test_amp_bf16_on_cpu_trains(data, tmp_path, cfg):
    """The AAFG seed's own command has --amp; on CPU it is bf16 autocast (its BN neck and attention
    included) and must train, not crash."""
    s = _fit(dataclasses.replace(cfg, epochs=1, amp=True), data, tmp_path / "amp", device="cpu")
    m = pd.read_csv(tmp_path / "amp" / "metrics.csv")
    assert s["epochs_run"] == 1 and m["train_loss"].notna().all() and m["val_mrr"].between(0, 1).all()


def test_fine_tuning_a_seed_state_dict_keeps_its_layout(data, tmp_path):
    """--model_path with a plain state dict without a BN neck (the seed's files) trains as that model."""
    from sbir_utils.models import ConvNeXtInfoNCE

    seed_file = tmp_path / "model_normal.pth"
    torch.save(ConvNeXtInfoNCE("test_convnext", embed_dim=16).state_dict(), seed_file)
    _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "ft", model_path=seed_file,
         save_state_dict=True)
    saved = torch.load(tmp_path / "ft" / "model.pth", weights_only=True)
    assert not any(k.startswith("neck.") for k in saved)
    assert set(saved) == set(torch.load(seed_file, weights_only=True))
    # from random init the same settings get the neck
    _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "scratch", save_state_dict=True)
    assert any(k.startswith("neck.") for k in torch.load(tmp_path / "scratch" / "model.pth", weights_only=True))


def test_more_ranks_than_gpus_is_one_clear_error(monkeypatch):
    """torchrun with 2 processes on a 1-GPU machine: rank 1 would ask for cuda:1. Checked without a GPU."""
    from sbir_utils import engine

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(RuntimeError, match=r"LOCAL_RANK 1 but this machine has 1 GPU\(s\).*--no_cuda"):
        engine._init_distributed(torch.device("cuda"))


@pytest.mark.parametrize("model", ["aafg", "convnext_infonce"])
def test_freeze_bn_keeps_the_trunks_statistics_and_trains_the_rest(data, tmp_path, model):
    """--freeze_bn: the trunk's BatchNorm running statistics stay those of the initial weights (here a state
    dict file standing in for pretrained weights) while its affine weights and the rest still learn; without
    it training overwrites them."""
    from sbir_utils.models import build_model

    cfg = dataclasses.replace(AAFG if model == "aafg" else CONVNEXT, model=model, backbone="test_resnet", epochs=1,
                              rerank_k=0)
    start = tmp_path / "start.pth"
    torch.save(build_model(cfg, head_bn=True).state_dict(), start)
    init = torch.load(start, weights_only=True)
    trunk = "backbone." if model == "aafg" else "embedding_net."
    stats = [k for k in init if k.startswith(trunk) and k.endswith(("running_mean", "running_var"))]
    affine = [k.replace("running_mean", "weight") for k in stats if k.endswith("running_mean")]
    assert stats and affine
    out = {}
    for frozen in (True, False):
        run = tmp_path / f"frozen{frozen}"
        _fit(dataclasses.replace(cfg, freeze_bn=frozen), data, run, model_path=start, save_state_dict=True)
        out[frozen] = torch.load(run / "model.pth", weights_only=True)
    assert all(torch.equal(out[True][k], init[k]) for k in stats)
    assert not all(torch.equal(out[True][k], init[k]) for k in affine)  # affine weights still learn
    assert not all(torch.equal(out[False][k], init[k]) for k in stats)
    # the neck's BatchNorm (not part of the trunk) keeps training normally
    neck = [k for k in init if k.startswith("neck") and k.endswith("running_mean")]
    assert neck and not all(torch.equal(out[True][k], init[k]) for k in neck)
    with pytest.raises(ValueError, match="freeze_bn"):  # from random initialisation: one clear error
        _fit(dataclasses.replace(cfg, freeze_bn=True), data, tmp_path / "random")
    assert not (tmp_path / "random").exists()


def test_a_step_s_numbers_are_read_after_the_next_step_is_queued(data, tmp_path, monkeypatch):
    """No per-step wait for the device: the loop reads step s's loss (one synchronisation) only after it has
    queued step s + 1, and the last step's after the loop; the epoch's mean loss is the same as reading each
    step at once would give."""
    from sbir_utils.engine import training

    log, real_step, real_add = [], training._train_step, training._add_step

    def step(run, batch, objective, key):
        log.append(f"step{sum(x.startswith('step') for x in log) + 1}")
        return real_step(run, batch, objective, key)

    def add(run, pending, sums, epoch):
        log.append(f"read{pending[0]}")
        return real_add(run, pending, sums, epoch)

    monkeypatch.setattr(training, "_train_step", step)
    monkeypatch.setattr(training, "_add_step", add)
    _fit(dataclasses.replace(CONVNEXT, epochs=1), data, tmp_path / "run")
    n = sum(x.startswith("step") for x in log)
    assert n >= 2
    assert log == ["step1"] + [x for s in range(2, n + 1) for x in (f"step{s}", f"read{s - 1}")] + [f"read{n}"]


@pytest.mark.parametrize("cfg", [CONVNEXT, AAFG], ids=["convnext_infonce", "aafg"])
def test_channels_last_as_on_cuda_trains_and_embeds_like_the_default_layout(data, tmp_path, monkeypatch, cfg):
    """On CUDA the model and its batches are NHWC (``prefers_channels_last``). Forced here on the CPU, both
    designs train and embed through it (no view of a non-contiguous tensor anywhere), with the same numbers
    as the default layout up to float rounding (which batch-hard mining can amplify over an epoch's steps, so
    the epoch's loss is compared loosely, one checkpoint's embeddings tightly)."""
    from sbir_utils.engine import device, inference, training

    assert not device.prefers_channels_last(torch.device("cpu"))
    assert device.prefers_channels_last(torch.device("cuda", 0))
    cfg = dataclasses.replace(cfg, epochs=1)
    _fit(cfg, data, tmp_path / "plain")
    for module in (training, inference):
        monkeypatch.setattr(module, "prefers_channels_last", lambda d: True)
    nhwc = _fit(cfg, data, tmp_path / "nhwc")
    a = pd.read_csv(tmp_path / "plain" / "metrics.csv")
    b = pd.read_csv(tmp_path / "nhwc" / "metrics.csv")
    assert b["train_loss"].iloc[0] == pytest.approx(a["train_loss"].iloc[0], rel=2e-2)
    assert b["val_mean_cos"].iloc[0] == pytest.approx(a["val_mean_cos"].iloc[0], abs=1e-3)
    model, _, _ = engine.load_model(nhwc["best_checkpoint"])
    files = pd.read_csv(data / "index_val.csv")["path_image"].map(lambda p: str(data / p)).tolist()[:4]
    e_nhwc, _ = engine.encode(model, files, "photo", cfg.image_size)
    monkeypatch.setattr(inference, "prefers_channels_last", lambda d: False)
    model, _, _ = engine.load_model(nhwc["best_checkpoint"])
    e_plain, _ = engine.encode(model, files, "photo", cfg.image_size)
    torch.testing.assert_close(e_nhwc, e_plain, rtol=1e-4, atol=1e-5)
