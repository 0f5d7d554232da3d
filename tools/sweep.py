"""Train an experiment's grid of runs, each in its own workdir under one root.

    python -m tools.sweep --config=configs/digits/table_4_1.py             # train here, in turn
    python -m tools.sweep --config=configs/thesis/table_4_1.py --dry_run   # list runs, status
    python -m tools.sweep --config=configs/thesis/tables_5_1_to_5_4.py --emit=jobs/t5.txt
    python -m tools.sweep --config=configs/digits/table_4_2.py --only=ar5
    python -m tools.sweep --config=configs/digits/table_4_1.py --seeds=5 --dry_run

Each cell of the grid is trained once per seed (the experiment's SEEDS, or --seeds), each seed
its own run and workdir (<name>-seed<N>). Finished runs are skipped and interrupted ones
resumed. --emit writes one tools.train command per line (pretrainings before the tunings that
start from them) and a bash script that runs them stage by stage, JOBS at a time. Experiment
files are Python: only run ones you trust. Stopping the sweep (SIGTERM, Ctrl-C) stops the run
in progress with it, which the next sweep resumes.
"""

import signal
import sys

from absl import app, flags

from tf_advreg.experiments import grid, sweep

_CONFIG = flags.DEFINE_string("config", None, "Experiment file (configs/thesis/*.py, ...).")
_ROOT = flags.DEFINE_string("root", None, "Parent of the runs' workdirs (default: its workdir).")
_DRY_RUN = flags.DEFINE_bool("dry_run", False, "List the runs, their status and command; no run.")
_EMIT = flags.DEFINE_string(
    "emit", None, "Write the unfinished runs' commands here (and a .sh script) instead of running."
)
_SEEDS = flags.DEFINE_integer(
    "seeds", None, "Runs per cell, seeds <config seed> + 0..N-1 (default: the file's SEEDS or 1)."
)
_ONLY = flags.DEFINE_string("only", "", "Only the runs whose name contains this (and their needs).")
flags.mark_flag_as_required("config")


class _Stopped(Exception):
    """SIGTERM arrived; raised where the sweep waits, so subprocess.call stops its run too."""


def _stop(signum, frame):
    raise _Stopped


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    # Python's default SIGTERM ends the sweep alone: its run would go on training as an orphan,
    # beside the run a restarted sweep starts in the same workdir.
    signal.signal(signal.SIGTERM, _stop)
    try:
        experiment = grid.load_experiment(_CONFIG.value)
        root = _ROOT.value or experiment.get_config().workdir
        runs = sweep.select(grid.expand(experiment, root, _SEEDS.value).runs, _ONLY.value)
        if _DRY_RUN.value:
            print(sweep.describe(runs, _CONFIG.value, root))
        elif _EMIT.value:
            pending = sweep.pending(runs, _CONFIG.value, root)
            for path in sweep.write_commands(pending, _CONFIG.value, root, _EMIT.value):
                print(f"Wrote {path} ({len(pending)} of {len(runs)} runs unfinished).")
        else:
            sweep.run_all(runs, _CONFIG.value, root)
    except (ValueError, OSError, RuntimeError) as error:
        sys.exit(f"error: {error}")
    except (_Stopped, KeyboardInterrupt) as stop:
        print("error: stopped, with the run in progress (re-run to resume).", file=sys.stderr)
        sys.exit(128 + (signal.SIGTERM if isinstance(stop, _Stopped) else signal.SIGINT))


if __name__ == "__main__":
    app.run(main)
