"""Write an experiment's thesis tables (markdown, CSV) or figures (PNG) from its runs.

    python -m tools.report --config=configs/thesis/table_4_1.py     # -> <root>/report/table_4_1.*
    python -m tools.report --config=configs/digits/figures_5_1_to_5_4.py --out=reports/digits

Our numbers stand beside the thesis's published ones; see tf_advreg/experiments/report.py.
"""

import os
import sys

from absl import app, flags

from tf_advreg.experiments import grid, report

_CONFIG = flags.DEFINE_string("config", None, "Experiment file (configs/thesis/*.py, ...).")
_ROOT = flags.DEFINE_string("root", None, "Parent of the runs' workdirs (default: its workdir).")
_OUT = flags.DEFINE_string("out", None, "Output directory (default: <root>/report).")
flags.mark_flag_as_required("config")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        experiment = grid.load_experiment(_CONFIG.value)
        root = _ROOT.value or experiment.get_config().workdir
        out = _OUT.value or os.path.join(root, "report")
        for path in report.write_report(experiment, root, out):
            print(path)
    except (ValueError, OSError) as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    app.run(main)
