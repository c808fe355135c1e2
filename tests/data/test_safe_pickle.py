from __future__ import annotations

import collections
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from sbir_utils.data import safe_pickle
from sbir_utils.data.safe_pickle import UnsafePickleError
from tests.helpers import SHARED_DATA

CHAIR = SHARED_DATA / "chairv2-strokes" / "ChairV2_Coordinate"


class _RunsCommand:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Evaluates:
    def __reduce__(self):
        return (eval, ("1 + 1",))


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_arrays_round_trip(tmp_path, protocol):
    data = {
        "/train/a_1": np.arange(12, dtype=np.float64).reshape(4, 3),
        "/test/b_2": np.zeros((0, 3), dtype=np.float32),
        "ints": np.array([[1, 2, 3]], dtype=np.int16),
        "scalar": np.float64(2.5),
        "nested": [np.ones(2), (np.eye(2), {"x": np.array([True, False])})],
        "ordered": collections.OrderedDict(k=np.arange(3)),
        "set": {1, 2},
    }
    path = tmp_path / "strokes.pkl"
    with open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)
    loaded = safe_pickle.load(path)
    assert sorted(loaded) == sorted(data)
    np.testing.assert_array_equal(loaded["/train/a_1"], data["/train/a_1"])
    assert loaded["/train/a_1"].dtype == np.float64
    assert loaded["/test/b_2"].shape == (0, 3) and loaded["/test/b_2"].dtype == np.float32
    assert loaded["ints"].dtype == np.int16
    assert loaded["scalar"] == 2.5
    np.testing.assert_array_equal(loaded["nested"][1][0], np.eye(2))
    assert loaded["nested"][1][1]["x"].tolist() == [True, False]
    assert loaded["set"] == {1, 2}


def test_code_running_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"/train/x_1": _RunsCommand(marker)}))
    with pytest.raises(UnsafePickleError) as info:
        safe_pickle.load(path)
    message = str(info.value)
    assert str(path) in message
    assert "system" in message  # the refused global (posix.system / os.system / nt.system)
    assert not marker.exists()


def test_builtin_eval_is_refused(tmp_path):
    path = tmp_path / "eval.pkl"
    path.write_bytes(pickle.dumps([_Evaluates()]))
    with pytest.raises(UnsafePickleError, match=r"builtins\.eval"):
        safe_pickle.load(path)


def test_object_arrays_cannot_smuggle_code(tmp_path):
    marker = tmp_path / "pwned"
    arr = np.empty(1, dtype=object)
    arr[0] = _RunsCommand(marker)
    path = tmp_path / "object_array.pkl"
    path.write_bytes(pickle.dumps(arr))
    with pytest.raises(UnsafePickleError, match="system"):
        safe_pickle.load(path)
    assert not marker.exists()


def test_broken_and_missing_files_name_the_file(tmp_path):
    path = tmp_path / "truncated.pkl"
    path.write_bytes(pickle.dumps({"a": np.ones(100)})[:40])
    with pytest.raises(UnsafePickleError, match="truncated.pkl"):
        safe_pickle.load(path)
    with pytest.raises(FileNotFoundError, match="nothing.pkl"):
        safe_pickle.load(tmp_path / "nothing.pkl")


@pytest.mark.realdata
@pytest.mark.skipif(not CHAIR.exists(), reason="../shared/data is absent")
def test_real_chairv2_file_loads():
    data = safe_pickle.load(CHAIR)
    assert isinstance(data, dict) and len(data) == 1275
    assert all(isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[1] == 3 for v in data.values())
    assert sum(k.startswith("/train/") for k in data) == 952
    assert sum(k.startswith("/test/") for k in data) == 323
