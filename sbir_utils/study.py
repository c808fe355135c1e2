"""The study's experiment plan: which runs notebooks 02 and 03 train, where they live, and the tables and
figures that summarise them. One place, so notebook 04 evaluates exactly what was trained.

A run lives in ``runs_dir()/<profile>/<dataset>/<run name>/seed<seed>/`` (see ``sbir_utils.engine`` for
its contents) plus ``plan.json``, the fingerprint of its settings and input indexes: a run whose
fingerprint is unchanged and which finished is not trained again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator, NullFormatter

from . import paths
from .config import OPTION_FIELDS, Profile, TrainConfig, check_train_config, core_fields
from .data import sources
from .data.index import DatasetSpec
from .fileio import atomic_write_text
from .models.weight_sources import is_packaged

# AAFG ablation rows of the seed's table: (self-attention, cross-attention)
ABLATIONS: dict[str, tuple[bool, bool]] = {
    "baseline": (False, False), "+SA": (True, False), "+CA": (False, True), "SA+CA": (True, True),
}
TEMPERATURES = (0.02, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class Run:
    """One training run: a model family, the data it trains on and its overrides of the profile's settings."""

    name: str  # e.g. "aafg-fine-SA+CA"
    family: str  # "aafg" | "convnext"
    data: str  # "fine" | "category" | "scene-normal" | "scene-unseen-user" | "real"
    seed: int
    overrides: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    group: str = ""  # what the run belongs to: "ablation", "seeds", "temperature", ...


def _seeds(profile: Profile) -> list[int]:
    return list(profile.evaluation.seeds) or [profile.aafg.seed]


def _random_init(cfg: TrainConfig) -> dict[str, Any]:
    """Overrides of the random-initialisation ablation; empty when the profile trains from random already."""
    if cfg.weights == "random":
        return {}
    return {"weights": "random", "freeze_bn": False} if cfg.freeze_bn else {"weights": "random"}


def aafg_runs(profile: Profile, dataset: str = "embedded") -> list[Run]:
    """The four-way ablation on fine-grained data (first seed), the full model on every seed, the full model
    without its BN neck (the collapse), the full model from random initialisation when the profile starts
    from pretrained weights (what pretraining is worth), and the full model on category-level data
    (embedded data only: a real dataset has one protocol)."""
    seeds = _seeds(profile)
    data = "fine" if dataset == "embedded" else "real"
    runs = [Run(f"aafg-{data}-{name}", "aafg", data, seeds[0],
                {"self_attention": sa, "cross_attention": ca}, group="ablation")
            for name, (sa, ca) in ABLATIONS.items()]
    runs += [Run(f"aafg-{data}-SA+CA", "aafg", data, s, group="seeds") for s in seeds[1:]]
    # Without the BN neck, batch-hard triplet from random initialisation collapses (every embedding alike):
    # the study shows it rather than hiding it.
    runs.append(Run(f"aafg-{data}-SA+CA-no-bn-neck", "aafg", data, seeds[0],
                    {"head_bn": False, "warmup_epochs": 0},
                    group="collapse"))
    if _random_init(profile.aafg):
        runs.append(Run(f"aafg-{data}-SA+CA-random-init", "aafg", data, seeds[0], _random_init(profile.aafg),
                        group="pretraining"))
    if dataset == "embedded":
        runs.append(Run("aafg-category-SA+CA", "aafg", "category", seeds[0], group="category"))
    return runs


def convnext_runs(profile: Profile, dataset: str = "embedded") -> list[Run]:
    """Normal split on every seed, the true unseen-drawer split, a temperature sweep (first seed), the
    normal split from random initialisation when the profile starts from pretrained weights, and the normal
    split with region pooling instead of the seed's global pool (first seed; the profile's ``layout_runs``)."""
    seeds = _seeds(profile)
    base = profile.convnext.temperature
    runs = [Run("convnext-normal", "convnext", "scene-normal", s, group="seeds") for s in seeds]
    if _random_init(profile.convnext):
        runs.append(Run("convnext-normal-random-init", "convnext", "scene-normal", seeds[0],
                        _random_init(profile.convnext), group="pretraining"))
    runs.append(Run("convnext-unseen-user", "convnext", "scene-unseen-user", seeds[0], group="unseen"))
    runs += [Run(f"convnext-normal-t{t:g}", "convnext", "scene-normal", seeds[0], {"temperature": t},
                 group="temperature") for t in TEMPERATURES if t != base]
    if profile.convnext.pool == "avg":  # the seed's global pool drops the layout; region pooling keeps some
        runs += [Run(f"convnext-normal-{layout_name(changes)}", "convnext", "scene-normal", seeds[0], changes,
                     group="layout") for changes in profile.layout_runs]
    return runs


def layout_name(changes: dict[str, Any]) -> str:
    """A layout run's name from its changes: ``{"pool": "grid4", "image_size": 128}`` -> ``"grid4-128px"``."""
    parts = {"pool": str(changes.get("pool", "")), "image_size": f"{changes['image_size']}px" if "image_size" in changes else ""}
    return "-".join([p for p in parts.values() if p] + [f"{k}{v}" for k, v in changes.items() if k not in parts])


def train_config(profile: Profile, run: Run) -> TrainConfig:
    base = profile.aafg if run.family == "aafg" else profile.convnext
    return dataclasses.replace(base, seed=run.seed, **run.overrides)


def dataset_spec(profile: Profile, run: Run, dataset: str = "embedded", data_root: str | None = None) -> DatasetSpec:
    if run.data.startswith("scene-"):
        return sources.scene_spec(profile.name, dataset, data_root, run.data.removeprefix("scene-"))
    protocol = run.data if run.data in ("fine", "category") else "fine"
    return sources.object_spec(profile.name, dataset, data_root, protocol)


def run_dir(profile: Profile, run: Run, dataset: str = "embedded") -> Path:
    return paths.runs_dir() / profile.name / dataset / run.name / f"seed{run.seed}"


# TrainConfig fields added after runs were made: at these defaults they are left out of the fingerprint,
# so that those runs stay valid.
LATER_FIELDS: dict[str, Any] = {"photo_mode": "rgb", "crop": False, "freeze_bn": False, "pool": "avg",
                                "augment_on": "loader"}
# Before issue 22 the training procedure (OPTION_FIELDS) was given to engine.fit as keywords, and so was
# the warm-up of the collapse run, over its profile's: fingerprints hash a run the way it was given then.
KEYWORD_FIELDS = ("warmup_epochs", "warmup_loss")


def fingerprint_values(cfg: TrainConfig, keyword_bases: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """``[config, options]``, the settings a run's fingerprint hashes, in their shape before issue 22: the
    TrainConfig fields of then (LATER_FIELDS left out at their defaults) and the fit keywords given (the
    OPTION_FIELDS not at their defaults). ``keyword_bases``: KEYWORD_FIELDS the run set, with the values
    they were given over (hashed among the config; ``cfg``'s among the options)."""
    bases = keyword_bases or {}
    config = {k: bases.get(k, v) for k, v in core_fields(cfg).items() if LATER_FIELDS.get(k, object()) != v}
    default = TrainConfig()
    options = {k: getattr(cfg, k) for k in OPTION_FIELDS if getattr(cfg, k) != getattr(default, k)}
    options.update({k: getattr(cfg, k) for k in bases})
    return [config, options]


def _fingerprint(cfg: TrainConfig, spec: DatasetSpec, keyword_bases: dict[str, Any] | None = None) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps(fingerprint_values(cfg, keyword_bases), sort_keys=True, default=str).encode())
    for split in ("train", "val"):
        digest.update(spec.csv(split).read_bytes())
    for init in (cfg.model_path, cfg.weights):  # a run initialised from a file is stale when it changes
        if init and init not in ("random", "imagenet") and not is_packaged(init):  # packaged: checksum-pinned
            digest.update(Path(init).read_bytes())
    return digest.hexdigest()


def train_once(cfg: TrainConfig, spec: DatasetSpec, out: Path, describe: dict[str, Any] | None = None,
               progress: bool = False, keyword_bases: dict[str, Any] | None = None) -> dict[str, Any]:
    """``engine.fit(cfg, spec.index_dir, out)`` unless ``out`` holds a finished run with the same settings
    and input indexes (then its summary is returned, ``reused`` True); an identical unfinished run is
    resumed from its last epoch checkpoint. ``describe`` is stored in ``out/plan.json`` for readers;
    ``keyword_bases``: see :func:`fingerprint_values`."""
    from . import engine

    check_train_config(cfg)
    fingerprint = _fingerprint(cfg, spec, keyword_bases)
    plan_file, summary_file = out / "plan.json", out / "summary.json"
    same_plan = plan_file.exists() and json.loads(plan_file.read_text()).get("fingerprint") == fingerprint
    if same_plan and summary_file.exists():
        return {**json.loads(summary_file.read_text()), "reused": True}
    # an interrupted run with the same plan continues from its last epoch checkpoint
    resume = same_plan and engine.latest_checkpoint(out) is not None
    if not same_plan:
        atomic_write_text(plan_file, json.dumps({"fingerprint": fingerprint, "run": describe or {}}, indent=2,
                                                default=str))
    summary_file.unlink(missing_ok=True)
    summary = engine.fit(cfg, spec.index_dir, out, resume=resume, overwrite=not resume, progress=progress)
    atomic_write_text(summary_file, json.dumps(summary, indent=2, default=str))
    return {**summary, "reused": False}


def keyword_bases(profile: Profile, run: Run) -> dict[str, Any]:
    """The profile's values of the KEYWORD_FIELDS ``run`` overrides (see :func:`fingerprint_values`)."""
    base = profile.aafg if run.family == "aafg" else profile.convnext
    return {k: getattr(base, k) for k in KEYWORD_FIELDS if k in run.overrides}


def train(profile: Profile, run: Run, dataset: str = "embedded", data_root: str | None = None,
          progress: bool = False) -> dict[str, Any]:
    """Train ``run`` unless an identical finished run exists (an identical unfinished one is resumed);
    returns the engine's summary. The embedded set is generated first when missing or stale."""
    if dataset == "embedded":
        sources.prepare_embedded(profile.name)
    return train_once(train_config(profile, run), dataset_spec(profile, run, dataset, data_root),
                      run_dir(profile, run, dataset), dataclasses.asdict(run), progress, keyword_bases(profile, run))


def train_all(profile: Profile, runs: list[Run], dataset: str = "embedded", data_root: str | None = None
              ) -> pd.DataFrame:
    """Train every run (reusing finished ones); one row per run with its best validation result."""
    rows = []
    for run in runs:
        s = train(profile, run, dataset, data_root)
        rows.append({"run": run.name, "group": run.group, "seed": run.seed, "best_epoch": s["best_epoch"],
                     "select_metric": s["best_metric"], "val_best": s["best_value"],
                     "pairs_per_s": s["pairs_per_s"], "train_minutes": s["wall_time_s"] / 60,
                     "reused": s["reused"], "run_dir": s["run_dir"]})
        print(f"{run.name} seed {run.seed}: best {s['best_metric']} = {s['best_value']:.3f} "
              f"(epoch {s['best_epoch']}, {s['wall_time_s'] / 60:.1f} min{', reused' if s['reused'] else ''})")
    return pd.DataFrame(rows)


def history(run_dir: str | Path) -> pd.DataFrame:
    """The per-epoch log (``metrics.csv``) of a run."""
    return pd.read_csv(Path(run_dir) / "metrics.csv")


def plot_learning_curves(results: pd.DataFrame, metrics: tuple[str, ...] = ("train_loss", "val_acc@1"),
                         title: str = "") -> plt.Figure:
    """One panel per metric, one line per run (first seed only, so lines stay readable).

    A run trained for a single epoch has no curve: its value is drawn as a marker labelled with the
    number. A panel where every run has one epoch says so, spreads the runs' markers side by side around
    epoch 1 (labels above them, so equal values stay readable) and starts its y axis at 0, so the values'
    sizes can be read (not lone dots on matplotlib's default 0.96-1.04 axis).
    """
    first = results.drop_duplicates("run")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.8 * len(metrics), 3.3), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        runs = [(row.run, h) for row in first.itertuples() if metric in (h := history(row.run_dir)).columns]
        single = bool(runs) and all(len(h) == 1 for _, h in runs)
        step = min(0.15, 0.8 / len(runs)) if single else 0.0
        for i, (run, h) in enumerate(runs):
            x = h["epoch"] + (i - (len(runs) - 1) / 2) * step
            line, = ax.plot(x, h[metric], marker="o", ms=3 if len(h) > 1 else 7, label=run)
            if len(h) == 1:
                ax.annotate(f"{h[metric].iloc[0]:.3g}", (x.iloc[0], h[metric].iloc[0]), textcoords="offset points",
                            xytext=(0, 7) if single else (6, 0), ha="center" if single else "left",
                            va="bottom" if single else "center", fontsize=8, color=line.get_color())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if single:
            _single_epoch_axes(ax, [float(h[metric].iloc[0]) for _, h in runs])
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _single_epoch_axes(ax: plt.Axes, values: list[float]) -> None:
    """Axes for a panel whose runs all trained one epoch: y from 0 (or a quarter below the lowest negative
    value) to a third above the highest (room for the labels), x around epoch 1, and a note at the top
    (above every point) that there is no curve to see."""
    finite = [v for v in values if v == v]  # NaN (a metric not computed) leaves the default limits
    if finite:
        low, high = min(0.0, *finite), max(0.0, *finite)
        ax.set_ylim(low * 1.25, high * 1.35 if high > 0 else (0.0 if low < 0 else 1.0))
    ax.set_xlim(0.5, 1.5)
    ax.set_xticks([1])
    ax.text(0.5, 0.96, "1 epoch: no curve, one value per run", transform=ax.transAxes, ha="center",
            va="top", fontsize=8, color="#555")


def validation_table(results: pd.DataFrame, group: str | None = None,
                     columns: tuple[str, ...] = ("val_acc@1", "val_acc@10", "val_mAP@all", "val_s2_acc@1")
                     ) -> pd.DataFrame:
    """Best-epoch validation metrics per run (mean and std over seeds where a run has several)."""
    rows = []
    for row in results.itertuples():
        if group is not None and row.group != group:
            continue
        h = history(row.run_dir)
        best = h.loc[h["epoch"] == row.best_epoch].iloc[0]
        rows.append({"run": row.run, "seed": row.seed, **{c: best.get(c, float("nan")) for c in columns}})
    df = pd.DataFrame(rows)
    stats = df.groupby("run", sort=False)[[c for c in columns if c in df.columns]].agg(["mean", "std"])
    stats.columns = [f"{c} {s}" for c, s in stats.columns]
    return stats.assign(seeds=df.groupby("run", sort=False).size()).dropna(axis=1, how="all")


def plot_temperature_sweep(results: pd.DataFrame, profile: Profile, metric: str = "val_acc@1") -> plt.Figure:
    """Best validation ``metric`` against the InfoNCE temperature (first seed of the normal split)."""
    rows = []
    for row in results.itertuples():
        if row.group == "temperature" or (row.run == "convnext-normal" and row.seed == _seeds(profile)[0]):
            h = history(row.run_dir)
            temp = json.loads((Path(row.run_dir) / "config.json").read_text())["train"]["temperature"]
            rows.append({"temperature": temp, metric: h.loc[h["epoch"] == row.best_epoch, metric].iloc[0]})
    df = pd.DataFrame(rows).sort_values("temperature")
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(df["temperature"], df[metric], marker="o")
    ax.set_xscale("log")
    # one plain label per temperature run (the log axis' own 2x10^-2, 3x10^-2 ... labels overlapped)
    ax.set_xticks(df["temperature"].tolist(), [f"{t:g}" for t in df["temperature"]])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("InfoNCE temperature")
    ax.set_ylabel(f"best {metric} (validation)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
