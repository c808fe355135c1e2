"""Which dataset a notebook reads: the embedded (generated) set of a profile, or a real dataset's index
folder built by ``sbir index``. Every dataset, real or generated, enters through the same index format.

Embedded layout (``sbir_utils.paths.embedded_dir(profile)``)::

    objects/fine/index_{train,val,test}.csv      label = photo id  (fine-grained protocol)
    objects/category/index_{train,val,test}.csv  label = category  (category-level protocol)
    scenes/                                      FS-COCO layout (images/, raster_sketches/, ...)
    scenes/index/{normal,unseen-user}/           built from scenes/ by the FS-COCO importer

Looking a dataset up (``scene_spec``, ``object_spec``) reads only: a missing embedded
set is an error that says how to make it. The entry points that train or audit (``sbir reproduce``,
``study.train``, ``sbir transfer``, notebook 01) call :func:`prepare_embedded` first, which generates what
is missing or stale.
"""

from __future__ import annotations

from pathlib import Path

from .. import paths
from .index import DatasetSpec, load_spec

SCENE_SPLITS = ("normal", "unseen-user")


def prepare_embedded(profile: str) -> Path:
    """Generate the profile's embedded set if needed and import its scenes with the FS-COCO importer."""
    from ..config import load_profile
    from .formats import fscoco
    from .procedural import ensure_embedded

    root = ensure_embedded(profile)
    manifest = root / "manifest.json"
    seed = load_profile(profile).generator.seed
    for split in SCENE_SPLITS:
        out = root / "scenes" / "index" / split
        summary = out / "summary.json"
        if not summary.exists() or summary.stat().st_mtime < manifest.stat().st_mtime:
            fscoco.build_index(root / "scenes", out, split=split, seed=seed)
    return root


def _embedded_spec(profile: str, rel: Path) -> DatasetSpec:
    """The spec of ``embedded_root(profile) / rel``; writes nothing. Raises FileNotFoundError naming the folder
    and the command that makes it when the set (or its scene index) has not been prepared."""
    root = embedded_root(profile)
    folder = root / rel
    if not (folder / "index_train.csv").is_file():
        name = Path(profile).stem
        if rel.parts[0] == "scenes" and (root / "manifest.json").is_file():
            how = (f"build it with sbir_utils.data.sources.prepare_embedded({name!r}) "
                   f"(`sbir reproduce --profile {name}` does)")
        else:
            how = f"run `sbir data --profile {name}` / `make data PROFILE={name}`"
        raise FileNotFoundError(f"embedded data for profile {name!r} not found at {folder}: {how}")
    return load_spec(folder)


def _real(data_root: str | Path | None, dataset: str) -> DatasetSpec:
    if not data_root:
        raise ValueError(f"dataset {dataset!r}: give data_root, the folder with index_train/val/test.csv "
                         "(build it with 'sbir index FORMAT RAW_ROOT --out DIR')")
    return load_spec(data_root)


def object_spec(profile: str, dataset: str = "embedded", data_root: str | Path | None = None,
                protocol: str = "fine") -> DatasetSpec:
    """The object-level dataset (fine-grained or category-level) a notebook should read; reads only (a
    caller that needs the embedded set generated calls :func:`prepare_embedded` first)."""
    if dataset == "embedded":
        if protocol not in ("fine", "category"):
            raise ValueError(f"protocol must be 'fine' or 'category', got {protocol!r}")
        return _embedded_spec(profile, Path("objects") / protocol)
    return _real(data_root, dataset)


def scene_spec(profile: str, dataset: str = "embedded", data_root: str | Path | None = None,
               split: str = "normal") -> DatasetSpec:
    """The scene-level dataset for ``split`` (``normal`` | ``unseen-user`` | ``unseen-file`` for real FS-COCO).

    For real data, ``data_root`` is either one index folder or a folder holding one sub-folder per split.
    """
    if dataset == "embedded":
        if split not in SCENE_SPLITS:
            raise ValueError(f"embedded scenes have splits {SCENE_SPLITS}, got {split!r}")
        return _embedded_spec(profile, Path("scenes") / "index" / split)
    root = Path(_real(data_root, dataset).index_dir)
    return load_spec(root / split) if (root / split / "index_train.csv").exists() else load_spec(root)


def embedded_root(profile: str) -> Path:
    """Where the profile's embedded set lives (a YAML path's file stem names the folder, as in ``sbir data``)."""
    return paths.embedded_dir(Path(profile).stem)
