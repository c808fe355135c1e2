"""`app.defaults`: without arguments `sbir app` opens the checkpoints of the latest `make reproduce`."""

from __future__ import annotations

import json
import shutil

import pytest

from sbir_utils.app import defaults


def test_defaults_are_the_latest_reproduce_runs(tmp_path, monkeypatch, gallery):
    from sbir_utils.config import load_profile
    from sbir_utils.study import aafg_runs, convnext_runs, run_dir

    monkeypatch.setenv("SBIR_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("SBIR_RUNS_DIR", str(tmp_path / "runs"))
    (tmp_path / "reports").mkdir()
    meta = {"profile": "smoke", "dataset": "embedded", "data_root": None, "finished": "2026-01-02T03:04:05"}
    (tmp_path / "reports" / "run_metadata.json").write_text(json.dumps(meta))
    with pytest.raises(defaults.NoReproduceError, match="make reproduce"):
        defaults.latest_reproduce_sources()  # the metadata is there, the checkpoints are not
    profile = load_profile("smoke")
    expected = [run_dir(profile, r, "embedded") / "checkpoints" / "best.pt"
                for r in (next(r for r in aafg_runs(profile) if r.name == "aafg-fine-SA+CA"), convnext_runs(profile)[0])]
    for ckpt, src in zip(expected, gallery["ckpts"][::-1]):
        ckpt.parent.mkdir(parents=True)
        shutil.copy(src, ckpt)
    monkeypatch.setattr(defaults, "_test_gallery", lambda profile, run, dataset, root: (["p.png"], ["p"]))
    sources, notice = defaults.latest_reproduce_sources()
    assert [s.checkpoint for s in sources] == expected
    assert "latest 'make reproduce' (profile smoke" in notice and "2026-01-02T03:04:05" in notice
