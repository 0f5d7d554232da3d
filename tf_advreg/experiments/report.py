"""The thesis's tables (markdown and CSV) and figures (PNG) from an experiment's workdirs.

Tables place our final-model numbers beside the thesis's published ones (tf_advreg/experiments
/thesis_results.csv), with the difference when our runs use the thesis's datasets; on other
data (digits) the thesis's numbers stay as a labelled reference, without a difference. Tables
count only finished runs; a missing cell is an unfinished one.
"""

import csv
import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tf_advreg import files  # noqa: E402
from tf_advreg.experiments import grid, results, sweep, thesis  # noqa: E402
from tf_advreg.experiments.grid import Run  # noqa: E402

THESIS_DATASETS = ("cifar10", "cinic10")
_NAMES = {"trades": "TRADES", "ar": "AR", "alp": "ALP", "mart": "MART", "natural": "Natural"}
_MODELS_5_5 = {"robopt": "Rob. Opt.", "trades": "TRADES", "ar": "Adv. Reg."}
_METRICS_5_5 = (
    "Natural Training",
    "Natural Testing",
    "Adversarial Training",
    "Adversarial Testing",
)
_COLORS = {"trades": "tab:blue", "ar": "tab:red"}  # the thesis's Figures 4-x colours
# Figures 5-1..5-4: the metric, the phase whose dataset it is measured on, the thesis's title.
_FIGURES_5 = (
    ("5_1", "pretrain_train/natural_accuracy", "pretrain", "Natural Trainset Accuracy"),
    ("5_2", "pretrain_train/adversarial_accuracy", "pretrain", "Adversarial Trainset Accuracy"),
    ("5_3", "test/natural_accuracy", "tune", "Natural Testset Accuracy"),
    ("5_4", "test/adversarial_accuracy", "tune", "Adversarial Testset Accuracy"),
)
_FIGURE_4_TITLES = (
    "Natural Trainset Accuracy",
    "Natural Testset Accuracy",
    "Adversarial Trainset Accuracy",
    "Adversarial Testset Accuracy",
)


def method_label(objective: str, beta: float) -> str:
    """As the thesis's tables name a training method: Rob Opt, TRADES 0.5, AR 5.0."""
    return "Rob Opt" if objective == "robopt" else f"{_NAMES[objective]} {beta:.1f}"


def regularization(config: dict) -> float:
    """The thesis's lambda of a chapter-4 run: 0 for its robust-optimization baseline."""
    return 0.0 if config["pretrain_objective"] == "robopt" else config["pretrain_beta"]


@dataclasses.dataclass
class Table:
    """One thesis table: our values by (row, column), the thesis's looked up by its number."""

    number: str
    corner: str
    ours: dict[tuple[str, str], float]
    rows: list[str]
    columns: list[str]

    def markdown(self, legend: str, comparable: bool) -> str:
        published = thesis.published(self.number)

        def cell(key: tuple[str, str]) -> str:
            ours = f"{self.ours[key]:.4f}" if key in self.ours else "—"
            if key not in published:
                return ours
            text = f"{ours} / {published[key]:.4f}"
            if comparable and key in self.ours:
                text += f" ({self.ours[key] - published[key]:+.4f})"
            return text

        lines = [
            f"# Table {self.number}: {thesis.CAPTIONS[self.number]}",
            "",
            legend,
            "",
            "| " + " | ".join([self.corner, *self.columns]) + " |",
            "|" + "---|" * (len(self.columns) + 1),
        ]
        lines += [
            "| " + " | ".join([row, *(cell((row, c)) for c in self.columns)]) + " |"
            for row in self.rows
        ]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        """Our values in the thesis's layout, then the thesis's as `thesis <column>` columns."""
        published = thesis.published(self.number)
        with files.replaced_atomically(path) as staging, staging.open("w", newline="") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow([self.corner, *self.columns, *(f"thesis {c}" for c in self.columns)])
            for row in self.rows:
                writer.writerow(
                    [row]
                    + [self.ours.get((row, c), "") for c in self.columns]
                    + [published.get((row, c), "") for c in self.columns]
                )


def _finished(sweep_: grid.Sweep, root: Path) -> list[tuple[Run, dict]]:
    """(entry, final metrics) of each entry whose run is finished, in the sweep's order."""
    return [
        (run, results.final_metrics(root / run.name))
        for run in sweep_.entries
        if sweep.status(run, root) is sweep.Status.FINISHED
    ]


def _grid_table(number: str, corner: str, cells: dict, rows: list, columns: list) -> Table:
    return Table(number, corner, cells, list(dict.fromkeys(rows)), list(dict.fromkeys(columns)))


def lambda_table(number: str, sweep_: grid.Sweep, root: Path) -> Table:
    """Tables 4.1, 4.2: rows lambda, columns the four metrics."""
    rows = [f"{regularization(run.config):.1f}" for run in sweep_.entries]
    cells = {}
    for run, metrics in _finished(sweep_, root):
        row = f"{regularization(run.config):.1f}"
        cells |= {
            (row, col): metrics[key] for col, key in results.METRICS.items() if key in metrics
        }
    return _grid_table(number, "λ", cells, rows, list(results.METRICS))


def _pretrain_label(config: dict) -> str:
    return method_label(config["pretrain_objective"], config["pretrain_beta"])


def _tune_label(config: dict) -> str:
    if not config["tune_dataset"]:
        return "None"
    return method_label(config["tune_objective"], config["tune_beta"])


def pretrain_tune_tables(sweep_: grid.Sweep, root: Path) -> list[Table]:
    """Tables 5.1-5.4, one metric each: rows the tuning, columns the pretraining."""
    rows = [_tune_label(run.config) for run in sweep_.entries]
    columns = [_pretrain_label(run.config) for run in sweep_.entries]
    finished = _finished(sweep_, root)
    tables = []
    for index, key in enumerate(results.METRICS.values(), 1):
        cells = {
            (_tune_label(run.config), _pretrain_label(run.config)): metrics[key]
            for run, metrics in finished
            if key in metrics
        }
        tables.append(_grid_table(f"5.{index}", "Tune/Pretrain", cells, rows, columns))
    return tables


def subset_table(sweep_: grid.Sweep, root: Path) -> Table:
    """Table 5.5: rows model and metric, columns the whole pretraining split and its sample."""

    def column(config: dict) -> str:
        return "Sample" if config["pretrain_subset"] else "Full Dataset"

    models = [_MODELS_5_5[run.config["pretrain_objective"]] for run in sweep_.entries]
    rows = [f"{m} / {metric}" for m in dict.fromkeys(models) for metric in _METRICS_5_5]
    cells = {}
    for run, metrics in _finished(sweep_, root):
        model = _MODELS_5_5[run.config["pretrain_objective"]]
        for metric, key in zip(_METRICS_5_5, results.METRICS.values()):
            if key in metrics:
                cells[(f"{model} / {metric}", column(run.config))] = metrics[key]
    columns = [column(run.config) for run in sweep_.entries]
    return _grid_table("5.5", "Model / Metric", cells, rows, columns)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    with files.replaced_atomically(path) as staging:
        figure.savefig(staging, dpi=120)
    plt.close(figure)
    return path


def lambda_figures(sweep_: grid.Sweep, root: Path, out: Path, comparable: bool) -> list[Path]:
    """Figures 4-1..4-4: each metric vs lambda, TRADES and AR, the thesis's values dashed."""
    finished = _finished(sweep_, root)
    reference = "thesis" if comparable else "thesis, CIFAR-10 reference"
    paths = []
    for index, (column, key) in enumerate(results.METRICS.items(), 1):
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for objective, number in (("trades", "4.1"), ("ar", "4.2")):
            color, name = _COLORS[objective], _NAMES[objective]
            ours = sorted(
                (regularization(run.config), metrics[key])
                for run, metrics in finished
                if run.config["pretrain_objective"] in ("robopt", objective) and key in metrics
            )
            if ours:
                axes.plot(*zip(*ours), "o-", color=color, label=f"{name} (ours)")
            published = sorted(
                (float(row), value)
                for (row, col), value in thesis.published(number).items()
                if col == column
            )
            axes.plot(
                *zip(*published), "s--", color=color, alpha=0.6, label=f"{name} ({reference})"
            )
        axes.set(
            xlabel="regularization λ",
            ylabel="accuracy",
            title=f"TRADES vs Adversarial Regularization:\n{_FIGURE_4_TITLES[index - 1]}",
        )
        axes.legend(fontsize="small")
        paths.append(_save(figure, out / f"fig_4_{index}.png"))
    return paths


def tuning_figures(sweep_: grid.Sweep, root: Path, out: Path) -> list[Path]:
    """Figures 5-1..5-4: each metric vs tuning epoch, one line per pretrain -> tune pair."""
    paths = []
    for number, key, phase, title in _FIGURES_5:
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for run in sweep_.entries:
            epochs, values = results.tuning_series(root / run.name, key)
            label = f"{_pretrain_label(run.config)} → {_tune_label(run.config)}"
            axes.plot(epochs, values, ".-", label=label)
        config = sweep_.entries[0].config
        split = config["pretrain_split"] if phase == "pretrain" else config["test_split"]
        data = f"{config[f'{phase}_dataset']} {split}"
        axes.set(xlabel="tuning epoch", ylabel="accuracy", title=f"{data}: {title} vs Tuning Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.legend(fontsize="small")
        paths.append(_save(figure, out / f"fig_{number}.png"))
    return paths


def _write_tables(tables: list[Table], out: Path, root: Path, comparable: bool) -> list[Path]:
    reference = "thesis" if comparable else "thesis's CIFAR-10 value (a reference: other data)"
    legend = (
        f"Runs under `{root}`. Each cell: ours / {reference}"
        + (" (ours − thesis)" if comparable else "")
        + "; — : no finished run."
    )
    paths = []
    for table in tables:
        stem = out / f"table_{table.number.replace('.', '_')}"
        files.write_text(stem.with_suffix(".md"), table.markdown(legend, comparable))
        table.write_csv(stem.with_suffix(".csv"))
        paths += [stem.with_suffix(".md"), stem.with_suffix(".csv")]
    return paths


_LAYOUTS: dict[str, Callable[[grid.Sweep, Path, Path, bool], list[Path]]] = {
    "table_4_1": lambda s, r, o, c: _write_tables([lambda_table("4.1", s, r)], o, r, c),
    "table_4_2": lambda s, r, o, c: _write_tables([lambda_table("4.2", s, r)], o, r, c),
    "figures_4": lambda_figures,
    "tables_5": lambda s, r, o, c: _write_tables(pretrain_tune_tables(s, r), o, r, c),
    "figures_5": lambda s, r, o, c: tuning_figures(s, r, o),
    "table_5_5": lambda s, r, o, c: _write_tables([subset_table(s, r)], o, r, c),
}


def write_report(
    experiment: ModuleType, root: str | os.PathLike, out: str | os.PathLike
) -> list[Path]:
    """Writes the experiment's tables or figures into `out`; returns their paths."""
    root, out = Path(root), Path(out)
    if experiment.REPORT not in _LAYOUTS:
        raise ValueError(f"Unknown REPORT {experiment.REPORT!r}; one of {', '.join(_LAYOUTS)}.")
    out.mkdir(parents=True, exist_ok=True)
    comparable = experiment.get_config().pretrain_dataset in THESIS_DATASETS
    return _LAYOUTS[experiment.REPORT](grid.expand(experiment, root), root, out, comparable)
