"""Categories and their fine-grained attributes: sampling instances, colours and captions.

Every category has >= 5 shape attributes (visible in sketches) plus the photo-only ``color``,
``color2`` and ``texture``. Instances come in "families": a family shares a random attribute set and
each member re-draws only a few attributes, so neighbours in a category differ in a few details and
fine-grained retrieval is hard but learnable.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from .builders import BUILDERS
from .geometry import Part, normalise


@dataclass(frozen=True)
class Continuous:
    """A continuous attribute in ``[low, high]`` (stored rounded to 3 decimals)."""

    low: float = 0.0
    high: float = 1.0


Y = ("yes", "no")
CATEGORY_SPECS: dict[str, dict[str, object]] = {
    "shoe": {
        "heel_height": Continuous(), "toe_shape": ("round", "pointed", "square"), "sole_thickness": Continuous(),
        "lace_count": (0, 3, 4, 5, 6), "collar_height": ("low", "mid", "high"),
        "stripe_pattern": ("none", "single", "double", "triple", "swoosh"), "toe_cap": Y, "heel_tab": Y,
    },
    "chair": {
        "leg_style": ("straight", "tapered", "splayed", "pedestal", "sled"),
        "back_shape": ("rectangle", "rounded", "arched", "trapezoid", "oval"), "back_height": Continuous(),
        "slat_count": (0, 0, 2, 3, 4, 5), "armrests": ("none", "none", "straight", "curved"),
        "seat_thickness": Continuous(), "leg_length": Continuous(), "stretcher": ("none", "bar", "cross"),
    },
    "mug": {
        "body_shape": ("cylinder", "tapered", "conical", "barrel", "bell"), "height": Continuous(),
        "handle_shape": ("round", "square", "D", "ear"), "handle_thickness": Continuous(), "rim": ("plain", "lip"),
        "decoration": ("none", "band", "stripes", "dots", "heart"), "saucer": Y,
    },
    "lamp": {
        "shade_shape": ("cone", "drum", "empire", "bell", "dome"), "shade_height": Continuous(),
        "stem_style": ("straight", "curved", "double", "vase", "zigzag"), "stem_height": Continuous(),
        "base_shape": ("disc", "square", "tripod", "dome"), "shade_bands": (0, 1, 2, 3), "pull": ("none", "chain", "knob"),
    },
    "bottle": {
        "body_shape": ("straight", "shouldered", "flask", "waisted", "round"), "height": Continuous(),
        "neck_length": Continuous(), "cap_type": ("screw", "cork", "dropper", "pump", "none"),
        "label": ("none", "rect", "oval", "band", "diamond"), "ribs": (0, 1, 2, 3),
    },
    "house": {
        "roof_type": ("gable", "hip", "flat", "gambrel", "saltbox"), "floors": (1, 2, 3), "windows_per_floor": (1, 2, 3, 4),
        "door_position": ("left", "center", "right"), "chimney": ("none", "left", "right"),
        "window_style": ("square", "cross", "arched", "round"), "garage": Y, "width": Continuous(),
    },
    "tree": {
        "crown_shape": ("round", "oval", "cloud", "conical", "tiered", "palm"), "crown_size": Continuous(),
        "trunk_height": Continuous(), "trunk_width": Continuous(), "branches": (0, 1, 2, 3), "fruit": (0, 0, 3, 5, 8),
        "roots": Y, "knot": Y,
    },
    "car": {
        "body_type": ("sedan", "hatchback", "coupe", "pickup", "van", "suv"), "wheel_size": Continuous(),
        "window_count": (1, 2, 3), "door_count": (2, 4), "spoiler": Y, "roof_rack": Y,
        "hubcap_style": ("plain", "spokes", "rings"), "stripe": ("none", "side", "racing"),
    },
}
CATEGORY_ATTRIBUTES: dict[str, list[str]] = {c: list(spec) for c, spec in CATEGORY_SPECS.items()}
PHOTO_ATTRIBUTES = ("color", "color2", "texture")

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (196, 40, 42), "orange": (232, 128, 36), "yellow": (236, 200, 58), "green": (62, 150, 70),
    "dark green": (36, 98, 52), "olive": (128, 140, 58), "blue": (48, 96, 196), "navy": (34, 44, 96),
    "teal": (34, 140, 140), "purple": (120, 64, 150), "pink": (228, 128, 160), "brown": (126, 80, 46),
    "black": (44, 44, 48), "white": (236, 234, 228), "grey": (140, 142, 146), "beige": (214, 196, 160),
}
MAIN_COLOURS: dict[str, tuple[str, ...]] = {
    "tree": ("green", "dark green", "olive", "orange", "yellow"),
    "house": ("beige", "white", "yellow", "blue", "pink", "grey", "red"),
}
TEXTURES: dict[str, tuple[str, ...]] = {
    "shoe": ("plain", "canvas", "leather"), "chair": ("plain", "fabric", "wood"), "mug": ("plain", "glaze"),
    "lamp": ("plain", "fabric"), "bottle": ("glass",), "house": ("plain", "brick"), "tree": ("leaves",),
    "car": ("metal",),
}
FAMILY_SIZE = 4  # instances per family: members differ in MUTATIONS attributes
MUTATIONS = (2, 3)  # how many shape attributes a family member re-draws (one of these, at random)
CONTINUOUS_JITTER = 0.06  # every member also jitters its continuous attributes by up to this much


def rng_for(seed: int, *keys: object) -> np.random.Generator:
    """A Generator that depends only on ``seed`` and ``keys`` (not on call order or worker)."""
    words = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(str(k).encode("utf-8")) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(words))


def check_category(category: str) -> None:
    if category not in CATEGORY_SPECS:
        raise ValueError(f"unknown category {category!r}; known: {sorted(CATEGORY_SPECS)}")


def _draw(spec: object, rng: np.random.Generator):
    if isinstance(spec, Continuous):
        return round(float(rng.uniform(spec.low, spec.high)), 3)
    values = list(spec)  # type: ignore[arg-type]
    v = values[int(rng.integers(len(values)))]
    return v.item() if hasattr(v, "item") else v


def sample_attributes(category: str, rng: np.random.Generator) -> dict:
    """Independent random attributes (shape and photo) of one instance."""
    check_category(category)
    attrs = {name: _draw(spec, rng) for name, spec in CATEGORY_SPECS[category].items()}
    return {**attrs, **sample_photo_attributes(category, rng)}


def sample_photo_attributes(category: str, rng: np.random.Generator) -> dict:
    mains = MAIN_COLOURS.get(category, tuple(PALETTE))
    color = mains[int(rng.integers(len(mains)))]
    others = [c for c in PALETTE if c != color]
    return {"color": color, "color2": others[int(rng.integers(len(others)))],
            "texture": _draw(TEXTURES[category], rng)}


def instance_attributes(category: str, index: int, n_instances: int, seed: int) -> dict:
    """Attributes of instance ``index`` of ``category``: its family's set with a few re-drawn."""
    check_category(category)
    n_families = max(1, round(n_instances / FAMILY_SIZE))
    family = index % n_families
    attrs = sample_attributes(category, rng_for(seed, category, "family", n_families, family))
    rng = rng_for(seed, category, "instance", index)
    specs = CATEGORY_SPECS[category]
    names = list(specs)
    n_mut = int(rng.choice(MUTATIONS))
    for name in (str(n) for n in rng.choice(names, size=min(n_mut, len(names)), replace=False)):
        old = attrs[name]
        for _ in range(20):
            attrs[name] = _draw(specs[name], rng)
            if isinstance(specs[name], Continuous):
                if abs(attrs[name] - old) > 0.25:
                    break
            elif attrs[name] != old:
                break
    for name, spec in specs.items():
        if isinstance(spec, Continuous):
            v = attrs[name] + rng.uniform(-CONTINUOUS_JITTER, CONTINUOUS_JITTER)
            attrs[name] = round(float(np.clip(v, spec.low, spec.high)), 3)
    attrs.update(sample_photo_attributes(category, rng))
    return attrs


def complete_attributes(category: str, attributes: dict | None, seed: int) -> dict:
    """Fill attributes that are not given with random ones; reject unknown names."""
    check_category(category)
    attributes = dict(attributes or {})
    known = set(CATEGORY_SPECS[category]) | set(PHOTO_ATTRIBUTES)
    unknown = sorted(set(attributes) - known)
    if unknown:
        raise ValueError(f"{category}: unknown attribute(s) {unknown}; known: {sorted(known)}")
    return {**sample_attributes(category, rng_for(seed, category, "complete")), **attributes}


def build_geometry(category: str, attributes: dict, seed: int = 0) -> list[Part]:
    """Attributes -> parts in unit coordinates (y down, centred, longest side 1), back to front."""
    check_category(category)
    parts = BUILDERS[category](attributes, rng_for(seed, category, "geometry", sorted(attributes.items())))
    return normalise(parts)


def colour_roles(category: str, attributes: dict, rng: np.random.Generator) -> dict[str, tuple[int, int, int]]:
    """Colour of every role a builder may use, for one photo."""

    def pick(*names: str) -> tuple[int, int, int]:
        return PALETTE[names[int(rng.integers(len(names)))]]

    def vary(rgb: tuple[int, int, int], amount: float = 14.0) -> tuple[int, int, int]:
        c = np.clip(np.asarray(rgb, dtype=np.float64) + rng.normal(0.0, amount, 3), 0, 255)
        return tuple(int(v) for v in c)  # type: ignore[return-value]

    return {
        "main": vary(PALETTE[attributes["color"]], 10), "second": vary(PALETTE[attributes["color2"]], 10),
        "dark": vary((42, 42, 46), 6), "light": vary((238, 236, 230), 5), "wood": vary((150, 100, 58), 18),
        "metal": vary((168, 170, 176), 12), "sole": vary(pick("white", "black", "brown", "beige"), 8),
        "roof": vary(pick("red", "brown", "grey", "navy", "dark green"), 10), "window": vary((150, 196, 226), 10),
        "brick": vary((164, 72, 52), 10), "leaf": vary(PALETTE[attributes["color"]], 10),
        "bark": vary((110, 74, 44), 12), "fruit": vary(pick("red", "orange", "yellow"), 10), "tyre": vary((32, 32, 34), 4),
    }


_PHRASES: dict[str, dict[str, object]] = {
    "shoe": {"heel_height": ("flat", "", "high-heeled"), "toe_shape": "with a {} toe", "lace_count": "with {} laces",
             "collar_height": {"high": "ankle-high", "low": "low-cut"}, "stripe_pattern": "with a {} stripe"},
    "chair": {"leg_style": "with {} legs", "back_shape": "with a {} back", "back_height": ("low-backed", "", "high-backed"),
              "armrests": {"straight": "with armrests", "curved": "with curved armrests"}, "slat_count": "with {} slats"},
    "mug": {"body_shape": {"cylinder": "straight", "tapered": "tapered", "conical": "narrow-topped", "barrel": "barrel",
                           "bell": "bell-shaped"}, "height": ("short", "", "tall"), "handle_shape": "with a {} handle",
            "decoration": {"band": "with a band", "stripes": "with stripes", "dots": "with dots", "heart": "with a heart"},
            "saucer": {"yes": "on a saucer"}},
    "lamp": {"shade_shape": "with a {} shade", "stem_height": ("short", "", "tall"), "stem_style": "with a {} stem",
             "base_shape": "with a {} base"},
    "bottle": {"body_shape": "{}", "height": ("short", "", "tall"), "neck_length": ("short-necked", "", "long-necked"),
               "cap_type": {"screw": "with a screw cap", "cork": "with a cork", "dropper": "with a dropper",
                            "pump": "with a pump"}, "label": "with a {} label"},
    "house": {"roof_type": "with a {} roof", "floors": {1: "one-storey", 2: "two-storey", 3: "three-storey"},
              "chimney": {"left": "with a chimney", "right": "with a chimney"}, "garage": {"yes": "with a garage"},
              "window_style": "with {} windows"},
    "tree": {"crown_shape": {"round": "round", "oval": "tall", "cloud": "bushy", "conical": "pointed", "tiered": "pine",
                             "palm": "palm"}, "crown_size": ("small", "", "big"), "fruit": "with {} fruits",
             "trunk_width": ("thin-trunked", "", "thick-trunked")},
    "car": {"body_type": {"sedan": "sedan", "hatchback": "hatchback", "coupe": "sporty", "pickup": "pickup",
                          "van": "boxy", "suv": "SUV"}, "wheel_size": ("", "", "big-wheeled"), "spoiler": {"yes": "with a spoiler"},
            "roof_rack": {"yes": "with a roof rack"}, "stripe": {"side": "with a stripe", "racing": "with racing stripes"}},
}


def describe(category: str, attributes: dict, rng: np.random.Generator, n_phrases: int = 1) -> str:
    """A short noun phrase, e.g. ``"a red mug with a square handle"``."""
    mods: list[str] = []
    table = _PHRASES.get(category, {})
    names = [n for n in table if n in attributes]
    rng.shuffle(names)
    for name in names:
        rule, value = table[name], attributes[name]
        if isinstance(rule, tuple):
            text = rule[min(2, int(float(value) * 3))]
        elif isinstance(rule, dict):
            text = rule.get(value, "")
        elif value in (0, "none", "no"):
            text = ""
        else:
            text = str(rule).format(value)
        if text:
            mods.append(text)
        if len(mods) >= n_phrases:
            break
    post = [m for m in mods if m.startswith(("with ", "on "))]
    pre = [m for m in mods if m not in post]
    withs = [m if k == 0 else m[len("with "):] for k, m in enumerate(m for m in post if m.startswith("with "))]
    ons = [m for m in post if m.startswith("on ")]
    words = [attributes.get("color", ""), *pre, category, " and ".join(withs), *ons]
    phrase = re.sub(r"\ba ([aeiouAEIOU])", r"an \1", "a " + " ".join(w for w in words if w))
    return phrase
