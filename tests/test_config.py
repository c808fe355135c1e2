from pathlib import Path

import pytest

from sbir_utils.config import PROFILES, ConfigError, load_profile


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_loads(name):
    p = load_profile(name)
    assert p.name == name
    assert p.convnext.model == "convnext_infonce"
    assert p.aafg.model == "aafg"


def test_full_profile_has_the_seeds_settings():
    p = load_profile("full")
    assert (p.aafg.backbone, p.aafg.image_size, p.aafg.embed_dim, p.aafg.margin) == ("resnet50", 224, 512, 0.2)
    assert (p.convnext.backbone, p.convnext.image_size, p.convnext.batch_size) == ("convnext_small", 224, 60)
    assert p.convnext.temperature == 0.05 and p.aafg.weights == p.convnext.weights == "imagenet"


def test_overrides_and_save(tmp_path):
    p = load_profile("smoke", {"aafg.epochs": 7, "generator.seed": 3})
    assert p.aafg.epochs == 7 and p.generator.seed == 3
    saved = p.save(tmp_path)
    assert '"epochs": 7' in saved.read_text()


def test_unknown_key_names_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("aafg:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*epochz"):
        load_profile(bad)


@pytest.mark.parametrize("key", ["photo_mode", "init_photo_mode"])
def test_a_transfer_photo_mode_that_does_not_exist_names_the_file_and_the_key(tmp_path, key):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"transfer:\n  {key}: canny\n")
    with pytest.raises(ConfigError, match=rf"bad\.yaml: transfer\.{key} must be one of .*'canny'"):
        load_profile(bad)


def test_missing_profile_is_a_clear_error():
    with pytest.raises(ConfigError, match="no such profile"):
        load_profile("nope")


def test_invalid_yaml(tmp_path: Path):
    bad = tmp_path / "x.yaml"
    bad.write_text("aafg: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_profile(bad)


def test_one_check_of_the_settings_for_sbir_train_engine_fit_and_study(tmp_path, capsys):
    """config.check_train_config is the one check: the same problems, in the same words, through each caller
    (sbir train names them by flag), before anything is read or written."""
    import dataclasses

    from sbir_utils import cli, engine, study
    from sbir_utils.config import TrainConfig, check_train_config

    bad = dataclasses.replace(TrainConfig(), warmup_epochs=-1, temperature=0.0, mining="easy")
    with pytest.raises(ValueError) as direct:
        check_train_config(bad)
    message = str(direct.value)
    assert message == ("warmup_epochs must be >= 0, got -1; temperature must be > 0, got 0.0; mining must be one "
                       "of ('hard', 'semihard'), got 'easy'")
    with pytest.raises(ValueError) as through_fit:
        engine.fit(bad, tmp_path / "no-data", tmp_path / "run", progress=False)
    with pytest.raises(ValueError) as through_study:
        study.train_once(bad, None, tmp_path / "study-run")  # checked before the indexes are read
    assert str(through_fit.value) == str(through_study.value) == message
    assert not (tmp_path / "run").exists() and not (tmp_path / "study-run").exists()
    rc = cli.main(["train", "--data_root", str(tmp_path / "no-data"), "--log_dir", str(tmp_path / "cli-run"),
                   "--warmup_epochs", "-1", "--temp", "0", "--mining", "semihard", "--profile", "smoke"])
    err = capsys.readouterr().err
    assert rc == 2 and "sbir train: error: --warmup_epochs must be >= 0, got -1; --temp must be > 0, got 0.0" in err
    assert not (tmp_path / "cli-run").exists()
