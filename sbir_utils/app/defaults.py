"""What ``sbir app`` opens without arguments: the best checkpoints of the latest ``make reproduce`` (its
profile and dataset are in ``reports/run_metadata.json``), one per design (the full AAFG model and the
ConvNeXt-InfoNCE normal split, first seed), each over the unique photos of its own test split."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from .. import paths

REPRODUCE_FIRST = "run 'make reproduce' first, or pass --ckpt CKPT --gallery DIR"


class NoReproduceError(FileNotFoundError):
    """There is no finished ``make reproduce`` (or its checkpoints are gone); the message says what to do."""


@dataclass(frozen=True)
class GallerySource:
    """A checkpoint and the photos to search, with what the page says about them."""

    name: str
    checkpoint: Path
    photos: list[str]
    labels: list[str]
    note: str


def reproduce_metadata(reports: Path | None = None) -> dict:
    """``run_metadata.json`` of the latest ``make reproduce``; :class:`NoReproduceError` when there is none."""
    path = (reports or paths.reports_dir()) / "run_metadata.json"
    if not path.is_file():
        raise NoReproduceError(f"no results of 'make reproduce' found ({path} is missing): {REPRODUCE_FIRST}")
    return json.loads(path.read_text(encoding="utf-8"))


def _test_gallery(profile, run, dataset: str, data_root: str | None) -> tuple[list[str], list[str]]:
    """The unique photos of ``run``'s test split, sorted by path, and their labels."""
    from ..data.index import read_index
    from ..metrics import unique_gallery
    from ..study import dataset_spec

    spec = dataset_spec(profile, run, dataset, data_root)
    df = read_index(spec.csv("test"), spec)
    photos, labels, _ = unique_gallery(df["image_file"].tolist(), df["label"].astype(str).tolist())
    return [str(p) for p in photos], [str(x) for x in labels]


def latest_reproduce_sources(reports: Path | None = None) -> tuple[list[GallerySource], str]:
    """One :class:`GallerySource` per design from the latest ``make reproduce``, and a sentence saying so."""
    from ..config import load_profile
    from ..study import aafg_runs, convnext_runs, run_dir

    meta = reproduce_metadata(reports)
    profile, dataset, data_root = load_profile(meta["profile"]), meta["dataset"], meta.get("data_root")
    picks = [next(r for r in aafg_runs(profile, dataset) if r.group == "ablation" and r.name.endswith("-SA+CA")),
             convnext_runs(profile, dataset)[0]]
    sources = []
    for run in picks:
        ckpt = run_dir(profile, run, dataset) / "checkpoints" / "best.pt"
        if not ckpt.is_file():
            raise NoReproduceError(f"{ckpt} not found (the runs of the latest 'make reproduce', profile "
                                   f"{profile.name}, are gone): {REPRODUCE_FIRST}")
        photos, labels = _test_gallery(profile, run, dataset, data_root)
        design = "AAFG" if run.family == "aafg" else "ConvNeXt-InfoNCE"
        sources.append(GallerySource(f"{design}: {run.name}", ckpt, photos, labels,
                                     f"{ckpt} on the {len(photos)} photos of its test split"))
    notice = (f"Using the checkpoints and test galleries of the latest 'make reproduce' (profile {profile.name}, "
              f"dataset {dataset}, finished {meta.get('finished', '?')}).")
    return sources, notice
