"""Running a grid: which runs are finished, the tools.train command of each, and running them
one after another here or writing them out for a cluster scheduler.

Interrupted runs need nothing special: tools.train continues a workdir from its last complete
checkpoint when given the same command again.
"""

import enum
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from tf_advreg import files
from tf_advreg.experiments.grid import Run
from tf_advreg.training.callbacks import evaluation_due, read_metrics
from tf_advreg.training.run_config import config_differences
from tf_advreg.training.schema import PHASES


class Status(enum.Enum):
    NEW = "new"
    PARTIAL = "partial"  # started: the same command resumes it
    FINISHED = "finished"
    CONFLICT = "conflict"  # the workdir holds a run of another config
    # finished, but evaluated at fewer epochs than the config asks for (a table's run that a
    # figure needs too: chapter 5's tables evaluate only the final epoch)
    UNDER_EVALUATED = "under-evaluated"


def phase_epochs(config: dict) -> dict[str, int]:
    """The phases a run trains and their epochs; a 0-epoch pretraining trains nothing."""
    return {
        phase: config[phase]["epochs"]
        for phase in PHASES
        if config[phase]["dataset"] and config[phase]["epochs"] > 0
    }


def _lacks_evaluations(records: list[dict], every: int, epochs: int) -> bool:
    """Whether an evaluation `eval.every` asks for is missing from a phase's records; `test`
    is in every evaluation (schema.EVAL["sets"])."""
    evaluated = {
        record["epoch"] for record in records if any(key.startswith("test/") for key in record)
    }
    due = {epoch for epoch in range(1, epochs + 1) if evaluation_due(epoch, every, epochs)}
    return not due <= evaluated


def status(run: Run, root: str | os.PathLike) -> Status:
    """Finished when every phase has its SavedModel, a metrics line for its last epoch and the
    evaluations its config asks for. A config.json in the flat layout of the first releases
    is read in the nested one."""
    workdir = Path(root) / run.name
    saved_path = workdir / "config.json"
    if not saved_path.is_file():
        return Status.NEW
    saved = json.loads(saved_path.read_text())
    if config_differences(saved, run.config):
        return Status.CONFLICT
    for phase, epochs in phase_epochs(run.config).items():
        records = read_metrics(workdir / phase / "metrics.jsonl")
        exported = (workdir / phase / "saved_model" / "saved_model.pb").is_file()
        if not exported or not records or records[-1]["epoch"] < epochs:
            return Status.PARTIAL
        if _lacks_evaluations(records, run.config["eval"]["every"], epochs):
            return Status.UNDER_EVALUATED
    return Status.FINISHED


def _flag_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def command(
    run: Run, config_path: str, root: str | os.PathLike, python: str = "python"
) -> list[str]:
    """The tools.train command line of `run`: the experiment file plus the run's overrides."""
    flags = [f"--config.{path}={_flag_value(value)}" for path, value in run.overrides.items()]
    return [
        python,
        "-m",
        "tools.train",
        f"--config={config_path}",
        *flags,
        f"--workdir={Path(root) / run.name}",
    ]


def describe(runs: Sequence[Run], config_path: str, root: str | os.PathLike) -> str:
    """What --dry_run prints: per run its status, name and command."""
    lines = [f"{len(runs)} runs of {config_path} under {root}:"]
    for run in runs:
        line = shlex.join(command(run, config_path, root))
        lines.append(f"{status(run, root).value:9} {run.name:24} {line}")
    return "\n".join(lines)


def select(runs: Sequence[Run], only: str) -> list[Run]:
    """The runs whose name contains `only`, with the pretrainings they tune from."""
    chosen = {run.name for run in runs if only in run.name}
    if not chosen:
        raise ValueError(
            f"No run's name contains {only!r}; the runs are: {', '.join(r.name for r in runs)}."
        )
    chosen |= {run.needs for run in runs if run.name in chosen and run.needs}
    return [run for run in runs if run.name in chosen]


def check_trainable(run: Run, state: Status, config_path: str, root: str | os.PathLike) -> None:
    """Raises when training `run` cannot give what the experiment needs: its workdir holds
    another config's run, or a finished run that lacks evaluations."""
    if state is Status.CONFLICT:
        raise RuntimeError(f"{Path(root) / run.name} holds a run of another config.")
    if state is Status.UNDER_EVALUATED:
        raise RuntimeError(
            f"{Path(root) / run.name} was trained evaluating fewer epochs than "
            f"{config_path} asks for (eval.every); sweep this experiment under another "
            "--root, or sweep it before the experiments that share its runs."
        )


def pending(runs: Sequence[Run], config_path: str, root: str | os.PathLike) -> list[Run]:
    """The unfinished runs, for --emit; raises (check_trainable) before any is written."""
    states = [(run, status(run, root)) for run in runs]
    for run, state in states:
        check_trainable(run, state, config_path, root)
    return [run for run, state in states if state is not Status.FINISHED]


def run_all(
    runs: Sequence[Run],
    config_path: str,
    root: str | os.PathLike,
    execute: Callable[[list[str]], int] = subprocess.call,
) -> None:
    """Trains (or resumes) each unfinished run in order; stops at the first failure."""
    for index, run in enumerate(runs, 1):
        state = status(run, root)
        print(f"[{index}/{len(runs)}] {run.name}: {state.value}", flush=True)
        if state is Status.FINISHED:
            continue
        check_trainable(run, state, config_path, root)
        returncode = execute(command(run, config_path, root, python=sys.executable))
        if returncode != 0:
            raise RuntimeError(f"Run {run.name} failed (exit status {returncode}).")


def write_commands(
    runs: Sequence[Run], config_path: str, root: str | os.PathLike, path: str | os.PathLike
) -> tuple[Path, Path]:
    """Writes `path` (one command per line, dependencies first) and a bash script beside it.

    The script runs the pretrainings, then the tunings that start from them, each stage
    `JOBS` runs at a time (default 1), and stops when a run fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [shlex.join(command(run, config_path, root)) for run in runs]
    files.write_text(path, "".join(line + "\n" for line in lines))
    script = path.with_suffix(".sh")
    stages = [
        [line for run, line in zip(runs, lines) if bool(run.needs) == tunes]
        for tunes in (False, True)
    ]
    body = [
        "#!/usr/bin/env bash",
        f"# {len(runs)} runs of {config_path} under {root}, written by tools.sweep.",
        "set -euo pipefail",
        f"cd {shlex.quote(os.getcwd())}",
        "stage() { xargs -d '\\n' -P \"${JOBS:-1}\" -I{} bash -c {}; }",
    ]
    for stage_lines in filter(None, stages):
        body += ["stage <<'EOF'", *stage_lines, "EOF"]
    files.write_text(script, "\n".join(body) + "\n")
    script.chmod(0o755)
    return path, script
