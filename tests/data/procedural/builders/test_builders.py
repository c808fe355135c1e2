"""`data.procedural.builders` and its modules `household`, `outdoor` and `shoe` (one test file for the three: every
test runs over every category through the registry): every category's builder, every value of its categorical
attributes, gives finite geometry; attributes change the geometry; the same seed, the same parts."""

from __future__ import annotations

import numpy as np
import pytest

from sbir_utils.data.procedural.builders import BUILDERS
from sbir_utils.data.procedural.builders.household import bottle, chair, lamp, mug
from sbir_utils.data.procedural.builders.outdoor import car, house, tree
from sbir_utils.data.procedural.builders.shoe import shoe
from sbir_utils.data.procedural.geometry import Part
from sbir_utils.data.procedural.shapes import CATEGORY_SPECS, build_geometry, complete_attributes


def test_registry_has_one_builder_per_category():
    assert set(BUILDERS) == set(CATEGORY_SPECS)
    assert [BUILDERS[c] for c in ("shoe", "chair", "mug", "lamp", "bottle", "house", "tree", "car")] == [
        shoe, chair, mug, lamp, bottle, house, tree, car]


def _check(parts: list[Part]) -> None:
    assert parts and all(isinstance(p, Part) for p in parts)
    for p in parts:
        assert p.points.ndim == 2 and p.points.shape[1] == 2 and len(p.points) >= 2
        assert np.isfinite(p.points).all() and 0.0 <= p.detail <= 1.0


@pytest.mark.parametrize("category", sorted(CATEGORY_SPECS))
def test_every_categorical_value_builds(category):
    base = complete_attributes(category, None, seed=3)
    for name, values in CATEGORY_SPECS[category].items():
        if not isinstance(values, tuple):
            continue
        for value in dict.fromkeys(values):
            parts = BUILDERS[category]({**base, name: value}, np.random.default_rng(0))
            _check(parts)


@pytest.mark.parametrize("category", sorted(CATEGORY_SPECS))
def test_same_seed_same_parts_and_attributes_matter(category):
    attrs = complete_attributes(category, None, seed=1)
    a, b = build_geometry(category, attrs, seed=5), build_geometry(category, attrs, seed=5)
    assert len(a) == len(b) and all(np.array_equal(p.points, q.points) for p, q in zip(a, b))
    _check(a)
    changed = {}
    for name, values in CATEGORY_SPECS[category].items():  # the first categorical attribute, set otherwise
        if isinstance(values, tuple):
            changed = {**attrs, name: next(v for v in values if v != attrs[name])}
            break
    c = build_geometry(category, changed, seed=5)
    assert len(c) != len(a) or any(not np.array_equal(p.points, q.points) for p, q in zip(a, c))


def test_unknown_attribute_and_category_are_named():
    with pytest.raises(ValueError, match=r"shoe: unknown attribute\(s\) \['wheels'\]"):
        complete_attributes("shoe", {"wheels": 4}, seed=0)
    with pytest.raises(ValueError, match="unknown category 'boat'"):
        build_geometry("boat", {})
