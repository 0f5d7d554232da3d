"""One training per workdir: a second process is refused, a killed one frees the workdir."""

import subprocess
import sys
import textwrap

import pytest
from support import ROOT

from configs import digits_demo
from tf_advreg.training import run_config, workdir_lock
from tf_advreg.training.run_config import RUN_MARKER

REFUSED = "another process is training"


def test_a_held_workdir_refuses_a_second_holder_until_released(tmp_path):
    workdir = tmp_path / "run"
    with workdir_lock.hold(workdir):
        with pytest.raises(ValueError, match=REFUSED):
            with workdir_lock.hold(workdir):
                pass
    with workdir_lock.hold(workdir):  # released with the block
        pass
    assert list(workdir.iterdir()) == []  # the lock writes nothing into the workdir


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
                import sys, time
                from tf_advreg.training import workdir_lock
                with workdir_lock.hold({str(workdir)!r}):
                    print("held", flush=True)
                    time.sleep(600)
            """),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(ValueError, match=REFUSED):
            with workdir_lock.hold(workdir):
                pass
    finally:
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        holder.wait()
    with workdir_lock.hold(workdir):
        pass


def test_overwriting_a_run_keeps_the_lock_on_the_workdir(tmp_path):
    """--overwrite empties the directory it holds instead of replacing it: a new directory
    would be unlocked for a second process while the first trains in it."""
    workdir = tmp_path / "run"
    config = digits_demo.get_config()
    run_config.prepare_workdir(workdir, config, overwrite=False)
    (workdir / "pretrain").mkdir()
    config.attack.eps = 0.2
    with workdir_lock.hold(workdir):
        run_config.prepare_workdir(workdir, config, overwrite=True)
        assert sorted(p.name for p in workdir.iterdir()) == sorted(["config.json", RUN_MARKER])
        with pytest.raises(ValueError, match=REFUSED):
            with workdir_lock.hold(workdir):
                pass


def test_an_overwrite_stopped_midway_leaves_no_run_to_resume(tmp_path, monkeypatch):
    """The marker and config go first: what a kill leaves is refused, never resumed."""
    workdir = tmp_path / "run"
    config = digits_demo.get_config()
    run_config.prepare_workdir(workdir, config, overwrite=False)
    (workdir / "pretrain" / "checkpoints").mkdir(parents=True)
    (workdir / "aaa.txt").write_text("sorted before the marker and the config")

    def killed(path, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_config.shutil, "rmtree", killed)
    config.attack.eps = 0.2
    with pytest.raises(KeyboardInterrupt):
        run_config.prepare_workdir(workdir, config, overwrite=True)
    assert not run_config.is_run_dir(workdir)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="holds no tf_advreg run"):
        run_config.prepare_workdir(workdir, digits_demo.get_config(), overwrite=False)


def test_a_workdir_that_is_a_file_is_named_and_left_alone(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("a user's file")
    with pytest.raises(ValueError, match=f"--workdir={path} is a file; choose a directory"):
        with workdir_lock.hold(path):
            pass
    assert path.read_text() == "a user's file"
