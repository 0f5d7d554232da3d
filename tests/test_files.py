"""Atomic writes: the target is the old file or the new one, never a torn mix."""

import pytest

from tf_advreg import files


def test_write_text_replaces_the_whole_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("old\n")
    files.write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.jsonl"]


def test_a_failed_write_leaves_the_old_file_and_no_staging(tmp_path):
    path = tmp_path / "fig.png"
    path.write_text("old")
    with pytest.raises(RuntimeError), files.replaced_atomically(path) as staging:
        assert staging.suffix == ".png" and staging.parent == tmp_path
        staging.write_text("half")
        raise RuntimeError("killed mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["fig.png"]
