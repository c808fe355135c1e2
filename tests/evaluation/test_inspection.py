"""sbir_utils.evaluation.inspection: the attention blocks' learnt residual scales read from a checkpoint."""

import torch

from sbir_utils import evaluation, study
from sbir_utils.config import load_profile


def test_attention_scales_reads_gammas(tmp_path, monkeypatch):
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path))
    profile = load_profile("smoke")
    runs = [study.Run("aafg-x", "aafg", "fine", 1), study.Run("aafg-x", "aafg", "fine", 2),
            study.Run("convnext-normal", "convnext", "scene-normal", 1), study.Run("aafg-untrained", "aafg", "fine", 1)]
    ckpt = evaluation.checkpoint_path(profile, runs[0])
    ckpt.parent.mkdir(parents=True)
    torch.save({"model": {"self_attn.gamma": torch.tensor(0.25), "cross_attn.gamma": torch.tensor(-0.5),
                          "head.weight": torch.zeros(2)}}, ckpt)
    table = evaluation.attention_scales(profile, runs)
    assert table.to_dict("records") == [{"run": "aafg-x", "self_attn gamma": 0.25, "cross_attn gamma": -0.5}]
