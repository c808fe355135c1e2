import dataclasses

import pytest

from sbir_utils import study
from sbir_utils.config import ConfigError, load_profile


@pytest.fixture
def smoke(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path / "runs"))
    return load_profile("smoke")


def test_plan_covers_the_ablation_seeds_collapse_and_category():
    p = load_profile("cpu")
    runs = study.aafg_runs(p)
    names = [r.name for r in runs]
    assert [r.name for r in runs if r.group == "ablation"] == [
        "aafg-fine-baseline", "aafg-fine-+SA", "aafg-fine-+CA", "aafg-fine-SA+CA"]
    assert {r.seed for r in runs if r.name == "aafg-fine-SA+CA"} == set(p.evaluation.seeds)
    assert "aafg-category-SA+CA" in names and any(r.overrides.get("head_bn") is False for r in runs)
    cfg = study.train_config(p, runs[0])
    assert (cfg.self_attention, cfg.cross_attention) == (False, False) and cfg.backbone == p.aafg.backbone
    real = study.aafg_runs(p, dataset="shoes")
    assert all(r.data == "real" for r in real) and not any(r.data == "category" for r in real)


def test_convnext_plan_and_temperatures():
    p = load_profile("cpu")
    runs = study.convnext_runs(p)
    temps = {study.train_config(p, r).temperature for r in runs if r.group == "temperature"}
    assert temps == set(study.TEMPERATURES) - {p.convnext.temperature}
    assert any(r.data == "scene-unseen-user" for r in runs)
    layout = [r for r in runs if r.group == "layout"]
    assert [(r.name, study.train_config(p, r).pool, study.train_config(p, r).image_size) for r in layout] == [
        ("convnext-normal-grid2", "grid2", p.convnext.image_size), ("convnext-normal-grid4-128px", "grid4", 128)]
    assert study.layout_name({"pool": "grid3", "temperature": 0.1}) == "grid3-temperature0.1"
    smoke = load_profile("smoke")  # the default: one 2 x 2 run
    assert [r.name for r in study.convnext_runs(smoke) if r.group == "layout"] == ["convnext-normal-grid2"]
    assert all(study.train_config(p, r).pool == "avg" for r in runs if r.group != "layout")
    assert all(study.train_config(p, r).model == "convnext_infonce" for r in runs)


def test_layout_runs_that_are_not_training_changes_are_refused_naming_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    for entry in ("[{pool: grid4, nonsense: 1}]", "[grid4]", "[{}]"):
        bad.write_text(f"layout_runs: {entry}\n")
        with pytest.raises(ConfigError, match=r"bad.yaml: layout_runs\[0\]"):
            load_profile(bad)
    bad.write_text("transfer:\n  ensemble: [{embed_dim: 512}, {nonsense: 1}]\n")  # ensemble members alike
    with pytest.raises(ConfigError, match=r"bad.yaml: transfer.ensemble\[1\].*unknown: \['nonsense'\]"):
        load_profile(bad)


def test_temperature_sweep_labels_each_temperature_once(tmp_path):
    """The sweep's x axis is labelled with the temperatures that were run (plain numbers), and no minor
    log-scale labels are drawn over them."""
    import json

    import pandas as pd

    p = load_profile("cpu")
    rows = []
    for name, temp, acc in (("convnext-normal", 0.05, 0.7), ("convnext-normal-t0.02", 0.02, 0.75),
                            ("convnext-normal-t0.1", 0.1, 0.6), ("convnext-normal-t0.2", 0.2, 0.5)):
        run_dir = tmp_path / name
        run_dir.mkdir()
        pd.DataFrame({"epoch": [1, 2], "val_acc@1": [acc / 2, acc]}).to_csv(run_dir / "metrics.csv", index=False)
        (run_dir / "config.json").write_text(json.dumps({"train": {"temperature": temp}}))
        rows.append({"run": name, "group": "seeds" if temp == 0.05 else "temperature", "seed": p.evaluation.seeds[0],
                     "run_dir": str(run_dir), "best_epoch": 2})
    fig = study.plot_temperature_sweep(pd.DataFrame(rows), p)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0.02", "0.05", "0.1", "0.2"]
    assert not [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()]
    assert list(ax.lines[0].get_ydata()) == [0.75, 0.7, 0.6, 0.5]


def test_random_init_ablation_only_when_the_profile_is_pretrained():
    cpu, smoke = load_profile("cpu"), load_profile("smoke")
    assert cpu.aafg.weights != "random" and cpu.convnext.weights != "random"
    for runs, name, family in ((study.aafg_runs(cpu), "aafg-fine-SA+CA-random-init", cpu.aafg),
                               (study.convnext_runs(cpu), "convnext-normal-random-init", cpu.convnext)):
        ablation = [r for r in runs if r.group == "pretraining"]
        assert [r.name for r in ablation] == [name]
        cfg = study.train_config(cpu, ablation[0])
        assert cfg.weights == "random" and cfg.backbone == family.backbone and cfg.epochs == family.epochs
    assert smoke.aafg.weights == "random"  # smoke trains from random already: no such row
    assert not [r for r in study.aafg_runs(smoke) + study.convnext_runs(smoke) if r.group == "pretraining"]


def test_identical_run_is_reused_and_a_changed_one_retrained(smoke):
    smoke = dataclasses.replace(smoke, aafg=dataclasses.replace(smoke.aafg, epochs=1, batch_size=4))
    run = study.Run("aafg-fine-baseline", "aafg", "fine", 42, {"self_attention": False, "cross_attention": False})
    first = study.train(smoke, run)
    assert not first["reused"] and (study.run_dir(smoke, run) / "checkpoints" / "best.pt").exists()
    assert study.train(smoke, run)["reused"]
    changed = dataclasses.replace(run, overrides={**run.overrides, "margin": 0.3})
    assert not study.train(smoke, changed)["reused"]
    table = study.validation_table(study.train_all(smoke, [changed]))
    assert table.loc["aafg-fine-baseline", "seeds"] == 1


def test_interrupted_run_is_resumed_not_restarted(smoke):
    import pandas as pd

    smoke = dataclasses.replace(smoke, aafg=dataclasses.replace(smoke.aafg, epochs=2, batch_size=4))
    run = study.Run("aafg-fine-baseline", "aafg", "fine", 42, {"self_attention": False, "cross_attention": False})
    done = study.train(smoke, run)
    out = study.run_dir(smoke, run)
    first_epoch = pd.read_csv(out / "metrics.csv").iloc[:1]
    # as if killed during epoch 2: no summary, no epoch-2 checkpoint
    (out / "summary.json").unlink()
    (out / "checkpoints" / "epoch_02.pt").unlink()
    again = study.train(smoke, run)
    assert not again["reused"]
    history = pd.read_csv(out / "metrics.csv")
    assert list(history["epoch"]) == [1, 2]
    pd.testing.assert_frame_equal(history.iloc[:1], first_epoch)  # epoch 1 was not trained again (same wall time)
    assert again["best_value"] == pytest.approx(done["best_value"])


# TrainConfig's fields before issue 22, when the training procedure was given to engine.fit as keywords.
OLD_FIELDS = ("model", "backbone", "weights", "image_size", "embed_dim", "epochs", "batch_size", "lr", "weight_decay",
              "loss", "margin", "temperature", "warmup_epochs", "warmup_loss", "self_attention", "cross_attention",
              "attn_reduction", "rerank_k", "seed", "amp", "num_workers", "augment", "photo_mode", "crop", "freeze_bn",
              "pool")


def _old_digest(cfg, fit_keywords, spec):
    """A run's fingerprint as computed before issue 22: [TrainConfig fields, the fit keywords given]."""
    import hashlib
    import json

    values = {k: getattr(cfg, k) for k in OLD_FIELDS if study.LATER_FIELDS.get(k, object()) != getattr(cfg, k)}
    digest = hashlib.sha256(json.dumps([values, fit_keywords], sort_keys=True, default=str).encode())
    for split in ("train", "val"):
        digest.update(spec.csv(split).read_bytes())
    return digest.hexdigest()


def test_fingerprints_of_finished_runs_are_those_of_before_issue_22(tmp_path):
    """Finished runs are reused by fingerprint: one TrainConfig per run must hash as the TrainConfig plus fit
    keywords they were trained with (cpu profile: a plain run, the collapse run's warm-up keywords over the
    profile's, a transfer run's select_metric and train_csv)."""
    from sbir_utils.data.index import load_spec
    from tests.helpers import make_tiny_dataset

    spec = load_spec(make_tiny_dataset(tmp_path / "d", photos=(2, 1, 1)))
    p = load_profile("cpu")
    runs = {r.name: r for r in study.aafg_runs(p)}
    plain, collapse = runs["aafg-fine-SA+CA"], runs["aafg-fine-SA+CA-no-bn-neck"]
    assert p.aafg.warmup_epochs != 0 and study.train_config(p, collapse).warmup_epochs == 0
    for run, keywords in ((plain, {}), (collapse, {"head_bn": False, "warmup_epochs": 0})):
        then = dataclasses.replace(p.aafg, seed=run.seed)  # the collapse run's warm-up was a fit keyword
        new = study._fingerprint(study.train_config(p, run), spec, study.keyword_bases(p, run))
        assert new == _old_digest(then, keywords, spec), run.name
    csv = str(tmp_path / "index_train+val.csv")
    refit = dataclasses.replace(p.convnext, select_metric="mrr", train_csv=csv)
    assert study._fingerprint(refit, spec) == _old_digest(p.convnext, {"select_metric": "mrr", "train_csv": csv}, spec)
    assert study._fingerprint(dataclasses.replace(refit, mining="semihard"), spec) != study._fingerprint(refit, spec)
