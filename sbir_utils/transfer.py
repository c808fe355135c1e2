"""Real-data transfer: does what a model learns on the embedded set carry over to real sketches?

The table (``sbir transfer``, :mod:`sbir_utils.transfer_cli`), on a fine-grained real index folder with
train / val / test photos (e.g.
``sbir index folders ../shared/data/shoes-real-dev --out DATA/shoes-transfer --test_fraction 0.5
--val_fraction 0.2 --seed 0``: 80 train, 20 val, 100 test photos), each learned row over several seeds:

* ``random`` and ``HOG`` (settings tuned on the real training split only);
* ``scratch``: the model trained from random initialisation on the real training split;
* ``zero-shot``: the model trained on the embedded fine-grained objects only (chosen on the embedded
  validation split), applied to the real test split without seeing a real sketch;
* ``fine-tuned``: the zero-shot model, then trained on the real training split (``--init_from``);
* ``pretrained-init`` (only with ``--weights imagenet``, a packaged source such as ``efficientnet_lite0``
  or a state-dict file): the backbone starting from those weights instead of random ones (what every
  published figure starts from); scratch's schedule and photos unless the section sets ``init_*``.
* ``pretrained-init+HOG``: the pretrained-init checkpoints, their scores fused with HOG's at test time
  (``baselines.fuse_scores``: per-query z-scores, HOG weighted by the weight from ``FUSION_WEIGHTS`` with
  the best validation MRR, chosen per seed; nothing is trained for it).
* ``pretrained-refit``: the pretrained-init row's settings trained again on the training and validation
  shoes together, for the number of epochs validation chose for that seed (its ``best_epoch``); the last
  epoch's checkpoint is tested. Nothing is selected on the validation split after it has been trained on,
  and its minutes include the validation run that chose the epochs.
* ``pretrained-ensemble`` (when the section lists ``ensemble`` members): the pretrained-init run and one run
  per member (its settings with a few changed, e.g. ``{embed_dim: 512}``), each ``best.pt`` chosen on
  validation; cosine similarities summed at test time (``fusion.summed_scores``); all runs' minutes.
* ``pretrained-ensemble+HOG``: the same sum fused with HOG's scores as ``pretrained-init+HOG`` is (weight
  chosen per seed on validation MRR; nothing more is trained).
* ``frozen-trunk``: pretrained-init's trunk untrained, a shape descriptor (``baselines.frozen_trunk_baseline``);
  ``pretrained-ensemble+HOG+frozen``: the ensemble fused with HOG and it (one weight, chosen as HOG's is).

``--rows NAME[,NAME...]`` runs only the named rows (``random`` and ``HOG`` cost seconds; ``zero-shot`` and
``fine-tuned`` share the embedded pre-training run).

Equal budget: ``scratch`` sees as many training pairs as ``zero-shot`` pre-training plus fine-tuning
together (same model, same input size, so about the same compute); each row's measured minutes are
reported beside it. Real runs choose ``best.pt`` by validation MRR (smoother than acc@1 on a small
validation gallery); the test split is read once per checkpoint, after training.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from . import study
from .config import TrainConfig, TransferConfig, check_train_changes, check_train_config, load_profile
from .data import sources
from .data.index import DatasetSpec, load_spec, read_index
from .data.transforms import require_photo_mode
from .fileio import atomic_write_text
from .fusion import scores_metrics, summed_scores
from .models.backbones import build_trunk
from .models.frozen_shape import PHOTO_MODE as FROZEN_PHOTO_MODE
from .transfer_references import HogReference, baseline_rows, frozen_rows, fused_row
from .transfer_table import (  # noqa: F401  (ROWS, GOAL, parse_rows ... are part of this module's interface)
    ENSEMBLE_ROWS,
    FROZEN_ROWS,
    FUSED_ROWS,
    GOAL,
    HOG_ROWS,
    METRICS,
    OPTIONAL_ROWS,
    ROWS,
    markdown,
    parse_rows,
    summarise,
)


@dataclasses.dataclass
class TransferPlan:
    """One transfer table: a real fine-grained index folder, an output folder, the profile whose embedded
    set and ``transfer`` section are used, and optional changes to that section."""

    real_root: Path
    out: Path
    profile: str = "cpu"
    changes: dict[str, Any] = dataclasses.field(default_factory=dict)  # TransferConfig fields

    def settings(self) -> TransferConfig:
        return dataclasses.replace(load_profile(self.profile).transfer, **self.changes)


def base_config(plan: TransferPlan) -> TrainConfig:
    """The profile's TrainConfig for the transfer model, with the transfer section's settings, random initial
    weights (the section's ``weights`` go to the pretrained-init row only) and best epochs chosen by MRR."""
    t, profile = plan.settings(), load_profile(plan.profile)
    cfg = profile.aafg if t.model == "aafg" else profile.convnext
    changes: dict[str, Any] = {"model": t.model, "backbone": t.backbone, "weights": "random",  # scratch is scratch
                               "freeze_bn": False,  # random BN statistics are nothing to keep
                               "image_size": t.image_size, "batch_size": t.batch_size, "lr": t.lr,
                               "temperature": t.temperature, "photo_mode": t.photo_mode, "crop": t.crop,
                               "select_metric": "mrr"}
    if t.model == "convnext_infonce":
        changes["loss"] = "infonce"
    return dataclasses.replace(cfg, **changes)


def _n_train_pairs(spec: DatasetSpec) -> int:
    return len(read_index(spec.csv("train"), spec))


def scratch_epochs(epochs: int, pretrain_epochs: int, n_real: int, n_embedded: int) -> int:
    """Real epochs that see as many training pairs as ``pretrain_epochs`` embedded plus ``epochs`` real ones."""
    return epochs + math.ceil(pretrain_epochs * n_embedded / n_real)


def _test_metrics(ckpt: str, real_root: Path) -> dict[str, float]:
    from .engine import evaluate

    res = evaluate(ckpt, real_root, "index_test.csv", rerank_k=0)
    return {m: float(res["stage1"][m]) for m in METRICS} | {"n_queries": res["stage1"]["n_queries"],
                                                           "n_gallery": res["stage1"]["n_gallery"]}


def ensemble_members(t: TransferConfig, init_cfg: TrainConfig) -> list[tuple[str, TrainConfig]]:
    """The ``pretrained-ensemble`` row's further members as ``(name, settings)``: ``init_cfg`` (the
    pretrained-init row's) changed by each entry of ``t.ensemble``, named after the changes (``{"embed_dim":
    512}`` -> ``"embed_dim512"``). An entry that is not a mapping of TrainConfig fields, changes nothing,
    repeats another or gives invalid settings is a ``ValueError`` naming it."""
    members: list[tuple[str, TrainConfig]] = []
    for i, changes in enumerate(t.ensemble):
        where = f"transfer.ensemble[{i}]"
        check_train_changes(changes, where)
        name, cfg = "+".join(f"{k}{v}" for k, v in sorted(changes.items())), dataclasses.replace(init_cfg, **changes)
        if cfg == init_cfg or name in {n for n, _ in members}:
            raise ValueError(f"{where} = {changes!r}: nothing changes (the pretrained-init row's settings, or a member already)")
        check_train_config(cfg)
        members.append((name, cfg))
    return members


def init_config(t: TransferConfig, scr_cfg: TrainConfig) -> TrainConfig:
    """The pretrained-init row's settings: the scratch row's ``scr_cfg`` with the section's weights, trunk,
    epochs, input size, BatchNorm, pooling and photo choices."""
    return dataclasses.replace(scr_cfg, weights=t.weights, epochs=t.init_epochs or scr_cfg.epochs,
                               backbone=t.init_backbone or scr_cfg.backbone,
                               image_size=t.init_image_size or scr_cfg.image_size, freeze_bn=t.freeze_bn,
                               pool=t.init_pool, photo_mode=t.init_photo_mode or scr_cfg.photo_mode)


def _refit(init_cfg: TrainConfig, init: dict[str, Any], real: DatasetSpec, out: Path, seed: int,
           progress: bool) -> tuple[dict[str, Any], int]:
    """Train ``init_cfg`` on the training and validation rows of ``real`` together for ``init``'s best epoch
    count (``init``: the summary of the run validation chose it in); returns the run's summary, whose
    ``last_checkpoint`` is the model (its validation scores are not a measure: it has trained on them), and
    the number of rows it trained on."""
    out.mkdir(parents=True, exist_ok=True)
    both = pd.concat([read_index(real.csv(split), real)[["path_sketch", "path_image", "label"]]
                      for split in ("train", "val")], ignore_index=True)
    train_csv = out / "index_train+val.csv"
    atomic_write_text(train_csv, both.to_csv(index=False))
    cfg = dataclasses.replace(init_cfg, epochs=int(init["best_epoch"]), train_csv=str(train_csv.resolve()))
    summary = study.train_once(cfg, real, out / "run", {"row": "pretrained-refit", "seed": seed,
                                                        "epochs_from": init["run_dir"]}, progress)
    return summary, len(both)


_Learned = tuple[str, dict[str, Any], float, int, str]  # (row, run summary, minutes, pairs seen, detail)


@dataclasses.dataclass
class _Table:
    """What every seed's rows share: the settings, the wanted rows, the real data and where runs go."""
    t: TransferConfig
    wanted: tuple[str, ...]
    real: DatasetSpec
    runs: Path
    n_real: int
    progress: bool
    hog: HogReference | None
    test_df: pd.DataFrame


def _pretrained_rows(tab: _Table, scr_cfg: TrainConfig, seed: int) -> tuple[list[_Learned], list[dict[str, Any]]]:
    """The pretrained-init run of one seed, and the rows made of it: ``pretrained-init``, the HOG-fused row
    (returned apart: it goes after the learned rows) and ``pretrained-refit``."""
    t, real, runs, learned, fused = tab.t, tab.real, tab.runs, [], []
    init_cfg = init_config(t, scr_cfg)
    e_init = init_cfg.epochs
    init = study.train_once(init_cfg, real, runs / "pretrained-init" / f"seed{seed}",
                            {"row": "pretrained-init", "seed": seed, "weights": t.weights}, tab.progress)
    detail = (f"{init_cfg.backbone} from {t.weights} weights, {init_cfg.image_size} px, photos {init_cfg.photo_mode}, "
              f"{'BN statistics frozen, ' if t.freeze_bn else ''}"
              f"{'' if t.init_pool == 'avg' else t.init_pool + ' pooling, '}{e_init} real epochs")
    if "pretrained-init" in tab.wanted:
        learned.append(("pretrained-init", init, init["wall_time_s"] / 60, e_init * tab.n_real, detail))
    if "pretrained-init+HOG" in tab.wanted:
        assert tab.hog is not None and tab.hog.val_df is not None  # baseline_rows made it for this row
        init_scores = summed_scores([init["best_checkpoint"]], (tab.hog.val_df, tab.test_df))
        fused.append(fused_row("pretrained-init+HOG", init_scores, seed, init["wall_time_s"] / 60, e_init * tab.n_real,
                               f"pretrained-init ({detail})", tab.hog, tab.test_df, init["best_epoch"]))
    if "pretrained-refit" in tab.wanted:
        refit, n_both = _refit(init_cfg, init, real, runs / "pretrained-refit" / f"seed{seed}", seed, tab.progress)
        learned.append(("pretrained-refit", {**refit, "best_checkpoint": refit["last_checkpoint"],
                                             "best_epoch": refit["epochs_run"]},
                        (init["wall_time_s"] + refit["wall_time_s"]) / 60,
                        e_init * tab.n_real + refit["epochs_run"] * n_both,
                        f"{detail}, then trained again on train + val for as many epochs as validation chose for "
                        "its seed (best_epoch); its last epoch tested"))
    if set(ENSEMBLE_ROWS) & set(tab.wanted):
        fused += _ensemble_rows(tab, init_cfg, init, seed, detail)
    return learned, fused


def _ensemble_rows(tab: _Table, init_cfg: TrainConfig, init: dict[str, Any], seed: int, detail: str
                   ) -> list[dict[str, Any]]:
    """The ``pretrained-ensemble`` row of one seed (the pretrained-init run ``init``, settings ``init_cfg``,
    and one run per further member, their test similarities summed) and its fused twins (``FUSED_ROWS``), those wanted."""
    ckpts, seconds, epochs, names = [init["best_checkpoint"]], init["wall_time_s"], init_cfg.epochs, []
    for name, cfg in ensemble_members(tab.t, init_cfg):
        run = study.train_once(cfg, tab.real, tab.runs / "pretrained-ensemble" / name / f"seed{seed}",
                               {"row": "pretrained-ensemble", "member": name, "seed": seed}, tab.progress)
        ckpts.append(run["best_checkpoint"])
        seconds, epochs = seconds + run["wall_time_s"], epochs + cfg.epochs
        names.append(name)
    what = (f"pretrained-init ({detail}) and {len(names)} more runs of it, one per change ({', '.join(names)}), "
            "each best.pt chosen on validation; cosine similarities summed")
    fused_methods = [r for r in ENSEMBLE_ROWS if r in FUSED_ROWS and r in tab.wanted]
    val_df = tab.hog.val_df if fused_methods and tab.hog is not None else None  # baseline_rows made it for the fused row
    learned = summed_scores(ckpts, (tab.test_df,) if val_df is None else (tab.test_df, val_df))  # once for both rows
    rows = []
    if "pretrained-ensemble" in tab.wanted:
        m = scores_metrics(learned[0], tab.test_df)
        print(f"pretrained-ensemble seed {seed}: acc@1 {m['acc@1']:.3f} acc@10 {m['acc@10']:.3f} mrr {m['mrr']:.3f} "
              f"({seconds / 60:.1f} min, {len(ckpts)} runs)", file=sys.stderr)
        rows.append({"method": "pretrained-ensemble", "seed": seed, "train_minutes": seconds / 60,
                     "pairs_seen": epochs * tab.n_real, "detail": f"{what} at test time",
                     **{k: m[k] for k in (*METRICS, "n_queries", "n_gallery")}})
    for method in fused_methods:
        rows.append(fused_row(method, learned[::-1], seed, seconds / 60, epochs * tab.n_real,
                              f"pretrained-ensemble ({what})", tab.hog, tab.test_df))
    return rows


def _embedded_rows(tab: _Table, base: TrainConfig, embedded: DatasetSpec, n_emb: int, seed: int) -> list[_Learned]:
    """``zero-shot`` (the embedded pre-training run) and ``fine-tuned`` (it, then the real training split)."""
    t, runs, learned = tab.t, tab.runs, []
    pre_cfg = dataclasses.replace(base, seed=seed, epochs=t.pretrain_epochs)
    pre = study.train_once(pre_cfg, embedded, runs / "pretrain" / f"seed{seed}", {"row": "pretrain", "seed": seed},
                           tab.progress)
    if "zero-shot" in tab.wanted:
        learned.append(("zero-shot", pre, pre["wall_time_s"] / 60, t.pretrain_epochs * n_emb,
                        f"{t.pretrain_epochs} embedded epochs, no real sketch"))
    if "fine-tuned" in tab.wanted:
        fine_cfg = dataclasses.replace(base, seed=seed, epochs=t.epochs, model_path=pre["best_checkpoint"])
        fine = study.train_once(fine_cfg, tab.real, runs / "fine-tuned" / f"seed{seed}",
                                {"row": "fine-tuned", "seed": seed, "init_from": pre["best_checkpoint"]}, tab.progress)
        learned.append(("fine-tuned", fine, pre["wall_time_s"] / 60 + fine["wall_time_s"] / 60,
                        t.pretrain_epochs * n_emb + t.epochs * tab.n_real,
                        f"{t.pretrain_epochs} embedded + {t.epochs} real epochs"))
    return learned


def run_transfer(plan: TransferPlan, progress: bool = False, rows_wanted: tuple[str, ...] | None = None
                 ) -> pd.DataFrame:
    """Train and evaluate the rows of the table (``rows_wanted``, default all); returns one row per
    (method, seed) and writes ``transfer_runs.csv``, ``transfer.csv`` (mean and sd) and ``transfer.md``
    into ``plan.out``. Finished runs with unchanged settings are reused (``study.train_once``)."""
    real = load_spec(plan.real_root)
    if real.protocol != "fine":
        raise ValueError(f"{real.index_dir}: the transfer table needs a fine-grained index (protocol "
                         f"{real.protocol!r})")
    if not real.csv("test").is_file():
        raise FileNotFoundError(f"{real.csv('test')}: missing; the transfer table evaluates on the test split")
    sources.prepare_embedded(plan.profile)  # the scratch row's budget and the embedded rows need the set
    embedded = sources.object_spec(plan.profile, "embedded", protocol="fine")
    n_emb = _n_train_pairs(embedded)
    base, t = base_config(plan), plan.settings()
    wanted = rows_wanted or tuple(r for r in parse_rows(None, t.weights) if r not in ENSEMBLE_ROWS or t.ensemble)
    pretrained = bool(set(OPTIONAL_ROWS) & set(wanted))
    if pretrained:  # fail before anything is trained when the weights cannot be had
        if t.weights == "random":
            raise ValueError("the pretrained-init row needs pretrained weights (--weights)")
        build_trunk(t.init_backbone or t.backbone, t.weights)
    train_df, test_df = read_index(real.csv("train"), real), read_index(real.csv("test"), real)
    n_real = len(train_df)
    e_scratch = scratch_epochs(t.epochs, t.pretrain_epochs, n_real, n_emb)
    # members checked against the pretrained-init settings the runs will have (scratch's epochs by default)
    ensemble = bool(set(ENSEMBLE_ROWS) & set(wanted))
    init_cfg = init_config(t, dataclasses.replace(base, epochs=e_scratch))
    members = ensemble_members(t, init_cfg) if ensemble else []
    if ensemble and not members:
        raise ValueError(f"the pretrained-ensemble row needs members: --ensemble, or transfer.ensemble in profile "
                         f"{plan.profile!r} (e.g. [{{embed_dim: 512}}])")
    frozen = bool(set(FROZEN_ROWS) & set(wanted))
    for mode in {t.photo_mode, *([init_cfg.photo_mode] if pretrained else []), *(c.photo_mode for _, c in members),
                 *([FROZEN_PHOTO_MODE] if frozen else [])}:
        require_photo_mode(mode)  # e.g. HED's weights for a photo_mode: hed member, before anything trains
    rows, hog = baseline_rows(t, wanted, real, train_df, test_df)
    rows += frozen_rows(t, init_cfg, wanted, test_df, hog) if frozen else []
    tab = _Table(t, wanted, real, plan.out / "runs", n_real, progress, hog, test_df)
    for seed in t.seeds:
        learned: list[_Learned] = []
        fused: list[dict[str, Any]] = []  # the HOG-fused row, after the learned rows of its seed
        scr_cfg = dataclasses.replace(base, seed=seed, epochs=e_scratch)
        if "scratch" in wanted:
            scr = study.train_once(scr_cfg, real, tab.runs / "scratch" / f"seed{seed}", {"row": "scratch", "seed": seed},
                                   progress)
            learned.append(("scratch", scr, scr["wall_time_s"] / 60, e_scratch * n_real, f"{e_scratch} real epochs"))
        if pretrained:
            learned_init, fused = _pretrained_rows(tab, scr_cfg, seed)
            learned += learned_init
        if "zero-shot" in wanted or "fine-tuned" in wanted:
            learned += _embedded_rows(tab, base, embedded, n_emb, seed)
        for name, summary, minutes, pairs, detail in learned:
            m = _test_metrics(summary["best_checkpoint"], real.index_dir)
            rows.append({"method": name, "seed": seed, **m, "train_minutes": minutes, "pairs_seen": pairs,
                         "best_epoch": summary["best_epoch"], "detail": detail})
            print(f"{name} seed {seed}: acc@1 {m['acc@1']:.3f} acc@10 {m['acc@10']:.3f} mrr {m['mrr']:.3f} "
                  f"({minutes:.1f} min)", file=sys.stderr)
        rows += fused

    long = pd.DataFrame(rows)
    summary_table = summarise(long)
    plan.out.mkdir(parents=True, exist_ok=True)
    long.to_csv(plan.out / "transfer_runs.csv", index=False)
    summary_table.to_csv(plan.out / "transfer.csv", index=False)
    atomic_write_text(plan.out / "transfer.md", markdown(summary_table, plan, base, n_real, n_emb))
    return long
