"""sbir_utils.analysis.partial: stroke files beside raster sketches, the fractions, a missing manifest."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from sbir_utils import analysis


def test_stroke_file_and_fractions(tmp_path):
    assert analysis.stroke_file("/d/sketches/cup/7-2.png") == Path("/d/strokes/cup/7-2.npy")
    assert analysis.stroke_file("/sketches/x/sketches/c/1.png") == Path("/sketches/x/strokes/c/1.npy")
    with pytest.raises(ValueError, match="not under a 'sketches' folder"):
        analysis.stroke_file("/d/photos/1.png")
    assert analysis.FRACTIONS[0] == 0.1 and analysis.FRACTIONS[-1] == 1.0 and len(analysis.FRACTIONS) == 10
    spec = SimpleNamespace(index_dir=tmp_path / "a" / "b")
    assert not analysis.has_strokes(spec)
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        analysis._manifest(spec)
