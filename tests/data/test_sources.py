"""`data.sources`: a dataset lookup reads only; a missing embedded set is an error naming the folder and
the command that makes it; the entry points that train prepare the set explicitly."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbir_utils import study
from sbir_utils.config import load_profile
from sbir_utils.data import sources
from tests.helpers import make_tiny_dataset


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("SBIR_DATA_DIR", str(root))
    return root


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _fail_prepare(profile):
    raise AssertionError(f"a lookup prepared the embedded set of {profile!r}")


@pytest.mark.parametrize("lookup", [
    lambda: sources.scene_spec("smoke"),
    lambda: sources.scene_spec("smoke", split="unseen-user"),
    lambda: sources.object_spec("smoke"),
    lambda: sources.object_spec("smoke", protocol="category"),
])
def test_lookup_of_a_missing_embedded_set_raises_and_writes_nothing(data_dir, monkeypatch, lookup):
    monkeypatch.setattr(sources, "prepare_embedded", _fail_prepare)
    monkeypatch.setattr("sbir_utils.data.procedural.ensure_embedded", _fail_prepare)
    before = _listing(data_dir)
    with pytest.raises(FileNotFoundError) as info:
        lookup()
    message = str(info.value)
    assert "embedded data for profile 'smoke' not found at" in message
    assert str(data_dir / "embedded" / "smoke") in message
    assert "sbir data --profile smoke" in message and "make data PROFILE=smoke" in message
    assert _listing(data_dir) == before == []


def test_missing_scene_index_of_a_generated_set_names_prepare_embedded(data_dir):
    root = data_dir / "embedded" / "smoke"
    (root / "objects").mkdir(parents=True)
    (root / "manifest.json").write_text("{}")
    before = _listing(data_dir)
    with pytest.raises(FileNotFoundError, match=r"scenes/index/normal: build it with "
                                                r"sbir_utils\.data\.sources\.prepare_embedded\('smoke'\)"):
        sources.scene_spec("smoke")
    assert _listing(data_dir) == before


def test_lookup_reads_an_existing_embedded_set(data_dir, monkeypatch):
    monkeypatch.setattr(sources, "prepare_embedded", _fail_prepare)
    fine = make_tiny_dataset(data_dir / "embedded" / "smoke" / "objects" / "fine")
    scenes = make_tiny_dataset(data_dir / "embedded" / "smoke" / "scenes" / "index" / "unseen-user")
    before = _listing(data_dir)
    assert sources.object_spec("smoke").index_dir == fine.resolve()
    assert sources.scene_spec("smoke", split="unseen-user").index_dir == scenes.resolve()
    assert _listing(data_dir) == before


def test_transfer_prepares_the_embedded_set_before_looking_it_up(data_dir, monkeypatch):
    from sbir_utils import transfer

    calls = []

    def prepare(profile):
        calls.append(profile)
        make_tiny_dataset(data_dir / "embedded" / profile / "objects" / "fine")

    monkeypatch.setattr(sources, "prepare_embedded", prepare)
    real = make_tiny_dataset(data_dir / "real", photos=(6, 3, 5), sketches=2, size=48)
    plan = transfer.TransferPlan(real, data_dir / "out", "smoke", {"seeds": [0]})
    transfer.run_transfer(plan, rows_wanted=("random",))
    assert calls == ["smoke"] and (data_dir / "out" / "transfer.csv").is_file()


def test_bad_protocol_split_and_missing_real_root(data_dir):
    with pytest.raises(ValueError, match="protocol must be 'fine' or 'category', got 'scene'"):
        sources.object_spec("smoke", protocol="scene")
    with pytest.raises(ValueError, match="embedded scenes have splits .*got 'unseen-file'"):
        sources.scene_spec("smoke", split="unseen-file")
    with pytest.raises(ValueError, match="dataset 'sketchy': give data_root.*sbir index FORMAT"):
        sources.object_spec("smoke", "sketchy")
    with pytest.raises(FileNotFoundError, match="dataset folder not found"):
        sources.object_spec("smoke", "sketchy", data_root=data_dir / "nowhere")
    assert _listing(data_dir) == []


def test_real_scene_data_uses_the_split_folder_when_there(tmp_path):
    flat = make_tiny_dataset(tmp_path / "flat")
    assert sources.scene_spec("smoke", "fscoco", flat, "unseen-user").index_dir == flat.resolve()
    split_root = tmp_path / "fscoco"
    make_tiny_dataset(split_root)
    unseen = make_tiny_dataset(split_root / "unseen-user")
    assert sources.scene_spec("smoke", "fscoco", split_root, "unseen-user").index_dir == unseen.resolve()
    assert sources.scene_spec("smoke", "fscoco", split_root, "normal").index_dir == split_root.resolve()


def test_embedded_root_of_a_yaml_profile_is_its_stem(data_dir):
    assert sources.embedded_root("configs/smoke.yaml") == data_dir / "embedded" / "smoke"


def test_study_looks_up_without_preparing_and_trains_after_preparing(data_dir, monkeypatch):
    smoke = load_profile("smoke")
    fine_run = next(r for r in study.aafg_runs(smoke) if r.data == "fine")
    scene_run = study.convnext_runs(smoke)[0]
    monkeypatch.setattr(sources, "prepare_embedded", _fail_prepare)
    for run in (fine_run, scene_run):
        with pytest.raises(FileNotFoundError, match="embedded data for profile 'smoke' not found"):
            study.dataset_spec(smoke, run)
    assert _listing(data_dir) == []

    calls = []
    monkeypatch.setattr(sources, "prepare_embedded", lambda profile: calls.append(profile))
    monkeypatch.setattr(study, "train_once", lambda *a, **k: {"trained": True})
    with pytest.raises(FileNotFoundError):  # prepared (here: recorded only), then looked up
        study.train(smoke, fine_run)
    assert calls == ["smoke"]
    make_tiny_dataset(data_dir / "embedded" / "smoke" / "objects" / "fine")
    assert study.train(smoke, fine_run) == {"trained": True}
    assert calls == ["smoke", "smoke"]
    assert study.train(smoke, fine_run, "sketchy", str(data_dir / "embedded" / "smoke" / "objects" / "fine"))
    assert calls == ["smoke", "smoke"]  # real data: nothing to prepare
