"""The embedded procedural data set: the study's default data, generated deterministically from a seed.

>= 8 object categories with >= 5 fine-grained attributes each, drawn as vector parts (``shapes``,
``builders``); photos rendered from the parts (``render``); sketches drawn from the same parts by
drawers with their own styles, a couple of them seen only in test (``drawers``); FS-COCO-style scenes
(``scenes``); files, indexes and the manifest (``build``). ``python -m sbir_utils data --profile smoke``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from ... import paths
from .build import GENERATOR_VERSION, GeneratorError, generate, is_up_to_date, read_manifest
from .shapes import CATEGORY_ATTRIBUTES, PHOTO_ATTRIBUTES

__all__ = [
    "CATEGORY_ATTRIBUTES", "PHOTO_ATTRIBUTES", "GENERATOR_VERSION", "GeneratorError",
    "generate", "ensure_embedded", "is_up_to_date", "read_manifest", "load_attributes", "render_instance",
    "add_arguments", "run",
]


def ensure_embedded(profile_name: str) -> Path:
    """Root of the embedded set for a profile (``paths.embedded_dir``), generated first if needed.

    ``profile_name`` is a profile (``smoke``) or a YAML path (its file stem names the folder).
    """
    from ...config import load_profile

    root = paths.embedded_dir(Path(profile_name).stem)
    generate(load_profile(profile_name).generator, root)
    return root


def load_attributes(root: str | Path) -> pd.DataFrame:
    """``objects/attributes.csv`` of a generated set (``root`` = the set or its ``objects/`` folder):
    one row per photo: ``photo_id, category, split, attr_<name>...`` (NaN where not applicable)."""
    root = Path(root)
    path = root / "attributes.csv" if (root / "attributes.csv").is_file() else root / "objects" / "attributes.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no attributes.csv (generate the set with `sbir data` first)")
    return pd.read_csv(path, dtype={"photo_id": str, "category": str, "split": str})


def render_instance(category: str, attributes: dict | None = None, size: int = 128,
                    seed: int = 0) -> tuple[Image.Image, np.ndarray]:
    """Render one instance for figures: ``(photo, strokes)``; strokes are stroke-3 ``(N, 3)`` float32 on
    the 256 canvas. Attributes not given are drawn at random from ``seed``."""
    from . import drawers, render, shapes

    attrs = shapes.complete_attributes(category, attributes, seed)
    parts = shapes.build_geometry(category, attrs, seed)
    rng = shapes.rng_for(seed, "render_instance", category)
    pose = render.photo_pose(rng)
    photo = render.render_photo(parts, shapes.colour_roles(category, attrs, rng), size, rng, pose=pose)
    style = drawers.drawer_style(seed, 1)
    strokes, _ = drawers.sketch_object(parts, style, shapes.rng_for(seed, "render_instance", category, "sketch"),
                                       flip=pose["flip"])
    return photo, strokes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="cpu", help="profile whose generator settings to use (default: cpu)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: data/embedded/<profile>, or under $SBIR_DATA_DIR)")
    parser.add_argument("--force", action="store_true", help="regenerate even if the set is up to date")
    parser.add_argument("--workers", type=int, default=1,
                        help="render in this many processes (same bytes for any number; default 1)")


def run(args: argparse.Namespace) -> int:
    from ...config import ConfigError, load_profile

    try:
        cfg = load_profile(args.profile).generator
        root = Path(args.out) if args.out else paths.embedded_dir(Path(args.profile).stem)
        manifest = generate(cfg, root, force=args.force, workers=max(1, getattr(args, "workers", 1)))
    except (ConfigError, GeneratorError) as exc:
        print(f"sbir data: {exc}")
        return 2
    counts = manifest["counts"]
    objects, scenes = counts["objects"], counts.get("scenes", {})
    state = "up to date" if manifest.get("skipped") else f"generated in {manifest['wall_time_s']:.1f} s"
    print(f"embedded data set ({state}): {root.resolve()}")
    splits = ", ".join(f"{s} {c['photos']}/{c['sketches']}" for s, c in objects["splits"].items())
    print(f"  objects: {objects['categories']} categories, {objects['photos']} photos, {objects['sketches']} sketches "
          f"(photos/sketches per split: {splits}; unseen drawers {objects['unseen_drawers']})")
    if scenes:
        print(f"  scenes: {scenes['scenes']} pairs by {scenes['users']} users, {scenes['val_normal']} test ids")
    print(f"  fine-grained index: {root.resolve() / 'objects' / 'fine'}")
    return 0
