"""Checkpoint inspection: the learnt residual scales of the attention blocks.

Calls to the package's public functions go through ``sbir_utils.evaluation`` (imported late), so a patch of
``evaluation.X`` reaches every caller of ``X`` as it did when this was one module."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .. import study
from ..config import Profile


def attention_scales(profile: Profile | str, runs: Sequence[study.Run], dataset: str = "embedded"
                     ) -> pd.DataFrame:
    """The learnt residual scales ``gamma`` of the attention blocks in each run's best checkpoint (first
    seed). They start at 0 (identity blocks): near 0, a block (and stage-2 re-ranking) changes little."""
    import torch

    from .. import evaluation

    rows = []
    for run in evaluation.first_seed_runs(runs):
        ckpt = evaluation.checkpoint_path(profile, run, dataset)
        if run.family != "aafg" or not ckpt.is_file():
            continue
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["model"]
        rows.append({"run": run.name, **{k.removesuffix(".gamma") + " gamma": float(v)
                                         for k, v in state.items() if k.endswith(".gamma")}})
    return pd.DataFrame(rows)
