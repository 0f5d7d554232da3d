"""Fabricated workdirs, laid out as tools.train leaves them, for sweep and report tests."""

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tf_advreg.experiments import grid, sweep
from tf_advreg.training import callbacks


def write_run(
    root: Path,
    run: grid.Run,
    metrics: Callable[[int], dict] = lambda epoch: {},
    epochs: int | None = None,
) -> Path:
    """config.json, and per phase a metrics.jsonl up to `epochs` (default: every epoch), with
    a test evaluation at each epoch its eval.every asks for, and, when the phase is complete,
    its saved_model."""

    def evaluation(epoch: int, total: int) -> dict:
        due = callbacks.evaluation_due(epoch, run.config["eval"]["every"], total)
        return {"test/num_examples": 1} if due else {}

    workdir = root / run.name
    workdir.mkdir(parents=True)
    (workdir / "config.json").write_text(json.dumps(run.config | {"workdir": str(workdir)}))
    for phase, total in sweep.phase_epochs(run.config).items():
        done = total if epochs is None else min(epochs, total)
        (workdir / phase).mkdir()
        lines = [
            json.dumps({"phase": phase, "epoch": e, **evaluation(e, total), **metrics(e)})
            for e in range(1, done + 1)
        ]
        (workdir / phase / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
        if done == total:
            (workdir / phase / "saved_model").mkdir()
            (workdir / phase / "saved_model" / "saved_model.pb").write_bytes(b"pb")
    return workdir


@pytest.fixture(scope="session")
def fabricate():
    return write_run
