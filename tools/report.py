"""Write an experiment's thesis tables (markdown, CSV) or figures (PNG) from its runs, or the
table of the thesis's claims tested on every experiment of a directory.

    python -m tools.report --config=configs/thesis/table_4_1.py     # -> <root>/report/table_4_1.*
    python -m tools.report --config=configs/digits/figures_5_1_to_5_4.py --out=reports/digits
    python -m tools.report --claims=configs/digits --out=docs/results/digits   # claims.md, .csv
    python -m tools.report --config=configs/digits/table_4_1.py --model_choice=best

Cells show the mean ± sd over their finished seeds beside the thesis's published numbers; see
tf_advreg/experiments/report.py. --model_choice picks which final model of each run the
tables read (runs trained with ema_decay or hold_out have several; the legend names it).
--claims reads each experiment file's runs at its own root
(its config's workdir) and computes each claim's verdict; see tf_advreg/experiments/claims.py.
"""

import os
import sys

from absl import app, flags

from tf_advreg.experiments import claims, grid, report, results

_CONFIG = flags.DEFINE_string("config", None, "Experiment file (configs/thesis/*.py, ...).")
_CLAIMS = flags.DEFINE_string(
    "claims", None, "Directory of experiment files (configs/digits): write claims.md and .csv."
)
_ROOT = flags.DEFINE_string("root", None, "Parent of the runs' workdirs (default: its workdir).")
_OUT = flags.DEFINE_string("out", None, "Output directory (default: <root>/report).")
_MODEL_CHOICE = flags.DEFINE_enum(
    "model_choice",
    "last",
    list(results.MODEL_CHOICES),
    "Which final model of each run the tables read: "
    + "; ".join(f"{name}: {text}" for name, text in results.MODEL_CHOICES.items())
    + ". The recipe layout shows them all.",
)
_SEEDS = flags.DEFINE_integer(
    "seeds", None, "Seeds asked per cell (default: the experiment's SEEDS or 1)."
)


def _paths():
    if (_CONFIG.value is None) == (_CLAIMS.value is None):
        raise ValueError("Pass exactly one of --config and --claims.")
    if _CLAIMS.value is not None:
        if _ROOT.value or not _OUT.value:
            raise ValueError("--claims reads each file's own root: pass --out and no --root.")
        if not os.path.isdir(_CLAIMS.value):
            raise ValueError(f"--claims={_CLAIMS.value} is not a directory of experiment files.")
        return claims.write_claims(claims.load_sources(_CLAIMS.value, _SEEDS.value), _OUT.value)
    experiment = grid.load_experiment(_CONFIG.value)
    root = _ROOT.value or experiment.get_config().workdir
    out = _OUT.value or os.path.join(root, "report")
    return report.write_report(experiment, root, out, _SEEDS.value, _MODEL_CHOICE.value)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        for path in _paths():
            print(path)
    except (ValueError, OSError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    app.run(main)
