"""`fileio`: atomic writes (a failed write leaves the old file and no temporary), atomic hard links with a copy
where links are unsupported, and the SHA-256 of a file read in blocks."""

from __future__ import annotations

import errno
import hashlib
import os

import pytest

from sbir_utils.fileio import atomic_link, atomic_write, atomic_write_text, sha256_file
from tests.helpers import hard_links_work


def test_atomic_write_replaces_or_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "notes.txt"
    assert atomic_write_text(target, "first") == target and target.read_text() == "first"

    def fail(path):
        path.write_text("half")
        raise OSError(errno.ENOSPC, "full")

    with pytest.raises(OSError, match="full"):
        atomic_write(target, fail)
    assert target.read_text() == "first" and [p.name for p in target.parent.iterdir()] == ["notes.txt"]


def test_sha256_of_a_file_spanning_several_blocks(tmp_path):
    data = os.urandom((1 << 20) * 2 + 7)  # two full 1 MiB blocks and a short one
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == hashlib.sha256(b"").hexdigest()


def test_atomic_link_replaces_the_target_and_leaves_no_temporary(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "d" / "b"
    src.write_bytes(b"new")
    dst.parent.mkdir()
    dst.write_bytes(b"old")
    linked = atomic_link(src, dst)
    assert dst.read_bytes() == b"new" and linked == hard_links_work(tmp_path)
    if linked:
        assert os.stat(src).st_ino == os.stat(dst).st_ino
        assert atomic_link(src, dst)  # already a link to the same file: a rename that does nothing
    assert sorted(p.name for p in dst.parent.iterdir()) == ["b"]


@pytest.mark.parametrize("how", ["raises", "missing"])
def test_atomic_link_falls_back_to_an_atomic_copy(tmp_path, monkeypatch, how):
    if how == "raises":
        monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(OSError(errno.EXDEV, "cross-device")))
    else:
        monkeypatch.delattr(os, "link")
    src, dst = tmp_path / "a", tmp_path / "b"
    src.write_bytes(b"bytes")
    assert atomic_link(src, dst) is False
    assert dst.read_bytes() == b"bytes" and os.stat(src).st_ino != os.stat(dst).st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]
