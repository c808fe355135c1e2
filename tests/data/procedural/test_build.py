"""`data.procedural.build`: the generator's checks, splits, drawers, scene ids and manifest (the whole
generation is in tests/data/procedural/test_procedural.py; here the parts, without writing a set)."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter

import pytest

from sbir_utils.config import GeneratorConfig
from sbir_utils.data.procedural import build

CFG = GeneratorConfig(seed=3, categories=["shoe", "mug"], instances_per_category=20, sketches_per_photo=2,
                      n_drawers=6, n_unseen_drawers=2, scenes=30, scene_drawers=4)


@pytest.mark.parametrize("changes,message", [
    ({"categories": ["shoe", "boat"]}, "unknown category 'boat'"),
    ({"categories": ["shoe", "shoe"]}, "categories must be a non-empty list without repeats"),
    ({"categories": []}, "categories must be a non-empty list without repeats"),
    ({"n_drawers": 0}, "n_drawers must be >= 1, got 0"),
    ({"scenes": -1}, "scenes must be >= 0, got -1"),
    ({"sketches_per_photo": 7}, "sketches_per_photo (7) > n_drawers (6)"),
    ({"split": [0.5, 0.5]}, "split must be three non-negative fractions"),
    ({"scene_test_fraction": 1.5}, "scene_test_fraction must be in [0, 1], got 1.5"),
])
def test_check_config_names_each_problem(changes, message):
    with pytest.raises(build.GeneratorError, match="^generator config: ") as info:
        build.check_config(dataclasses.replace(CFG, **changes))
    assert message in str(info.value)


def test_generator_error_is_a_value_error():
    assert issubclass(build.GeneratorError, ValueError)
    build.check_config(CFG)  # the test's own config is fine


def test_split_of_is_stratified_and_deterministic():
    labels = build.split_of(CFG, "shoe")
    assert Counter(labels) == {"train": 12, "val": 3, "test": 5}
    assert labels == build.split_of(CFG, "shoe") and labels != build.split_of(CFG, "mug")
    tiny = dataclasses.replace(CFG, instances_per_category=3)
    assert Counter(build.split_of(tiny, "shoe")) == {"train": 1, "val": 1, "test": 1}  # each split gets one


def test_drawers_distinct_seen_ones_outside_test_and_unseen_only_in_test():
    n_seen = CFG.n_drawers - build.n_unseen(CFG)
    unseen_used = False
    for i in range(20):
        for split in ("train", "val", "test"):
            ids = build.drawers_for(CFG, "shoe", i, split)
            assert len(ids) == CFG.sketches_per_photo == len(set(ids)) and all(1 <= d <= CFG.n_drawers for d in ids)
            if split != "test":
                assert max(ids) <= n_seen
            unseen_used |= max(ids) > n_seen
    assert unseen_used
    assert build.n_unseen(dataclasses.replace(CFG, n_unseen_drawers=9)) == CFG.n_drawers - CFG.sketches_per_photo


def test_scene_ids_and_users():
    ids = build.scene_ids(CFG)
    assert len(ids) == len(set(ids)) == 30 and all(len(s) == 12 and s.isdigit() for s in ids)
    users = build.scene_users(CFG)
    assert Counter(users) == {1: 8, 2: 8, 3: 7, 4: 7}


def test_resolved_params_are_json_and_change_with_the_config():
    params = build.resolved_params(CFG)
    assert json.loads(json.dumps(params)) == params and len(params["source_sha256"]) == 64
    assert params["generator"]["seed"] == 3 and params["n_unseen_drawers"] == 2
    assert build.resolved_params(dataclasses.replace(CFG, seed=4)) != params


def test_manifest_missing_or_broken_is_none_and_not_up_to_date(tmp_path):
    assert build.read_manifest(tmp_path) is None and not build.is_up_to_date(CFG, tmp_path)
    (tmp_path / build.MANIFEST).write_text("{not json")
    assert build.read_manifest(tmp_path) is None
    (tmp_path / build.MANIFEST).write_text(json.dumps({"version": build.GENERATOR_VERSION,
                                                       "params": build.resolved_params(CFG), "files": {"a.png": "x"}}))
    assert build.read_manifest(tmp_path)["files"] == {"a.png": "x"}
    assert not build.is_up_to_date(CFG, tmp_path)  # a listed file is missing
    (tmp_path / "a.png").write_bytes(b"")
    assert build.is_up_to_date(CFG, tmp_path)
    assert not build.is_up_to_date(dataclasses.replace(CFG, seed=9), tmp_path)


def test_generate_refuses_a_folder_that_is_not_a_generated_set(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(build.GeneratorError, match=r"exists and is not a generated data set \(no manifest\.json\)"):
        build.generate(CFG, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
