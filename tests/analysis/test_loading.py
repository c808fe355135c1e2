"""sbir_utils.analysis.loading: which runs notebook 05 analyses, and RunResults' gallery size."""

from sbir_utils import analysis
from sbir_utils.config import load_profile
from tests.helpers import fake_results


def test_analysis_runs_roles():
    picks = analysis.analysis_runs(load_profile("smoke"))
    assert picks["fine"].name == "aafg-fine-SA+CA" and picks["fine"].group == "ablation"
    assert {"scene-normal", "scene-unseen-user"} <= set(picks)
    assert picks["scene-normal"].name == "convnext-normal" and picks["scene-unseen-user"].family == "convnext"
    assert len({(r.name, r.seed) for r in picks.values()}) == len(picks)


def test_run_results_gallery_size_and_no_attributes(tmp_path):
    assert fake_results().n_gallery == 4
    spec = fake_results().spec
    spec.index_dir = tmp_path / "a" / "b"
    assert analysis.load_attributes_for(spec) is None
