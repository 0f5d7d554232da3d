"""The thesis's tables (markdown and CSV) and figures (PNG) from an experiment's workdirs.

Every cell is trained with several seeds (grid.py); tables show each cell's mean ± standard
deviation over its finished seeds and their number n, and mark a cell with fewer finished
seeds than asked. Our numbers stand beside the thesis's published ones (tf_advreg/experiments
/thesis_results.csv, all measured on CIFAR-10), with the difference of means only when ours
are measured on CIFAR-10 too; on other data (digits) the thesis's numbers stay as a labelled
reference. Figures draw the mean over seeds with a band from the lowest to the highest seed.
Two layouts go beyond the thesis, its future work: `regularizers` (Tables D.1-D.4 and figures:
each distance in place of KL) and `pretrain_size` (Table S.1 and a figure: accuracy after tuning
against the pretraining sample size); they write tables and figures both. A third, `tune_alone`
(Table T.1), is Table 4.1's rows trained on chapter 5's tune data alone, for scales where Table
4.1 trains on other data; it stands in for Table 4.1 where the claims compare with it. A fourth,
`recipe` (Table R.1, docs/recipe.md), sets each run's final models side by side: the last
epoch's, the weight average and the best held-out epoch.

A run trained with those options has several final models; every other table reads the one
`model` names (results.MODEL_CHOICES, tools.report --model_choice) and its legend says which.
"""

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import matplotlib

matplotlib.use("Agg")  # files only: no display on a cluster node
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from tf_advreg import data, files, objectives  # noqa: E402
from tf_advreg.experiments import (  # noqa: E402
    distances,
    grid,
    ingredients,
    results,
    sizes,
    statistics,
    sweep,
    thesis,
)
from tf_advreg.experiments.grid import Cell  # noqa: E402

UNTUNED = "None"  # the thesis's row label of the untuned model in Tables 5.1-5.4
THESIS_DATA = "cifar10"  # every published number is measured on CIFAR-10 (multiples of 1/50k)
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


def regularization(config: dict) -> float:
    """The thesis's lambda of a chapter-4 run: 0 for its robust-optimization baseline."""
    pretrain = config["pretrain"]
    return pretrain["beta"] if objectives.objective_class(pretrain["objective"]).uses_beta else 0.0


def _display(objective: str) -> str:
    return objectives.objective_class(objective).display_name


PerSeed = dict[int, float]  # seed -> value


@dataclasses.dataclass
class Table:
    """One thesis table: our values by (row, column) and seed, the thesis's by its number."""

    number: str
    corner: str
    ours: dict[tuple[str, str], PerSeed]
    rows: list[str]
    columns: list[str]
    seeds: int  # asked per cell
    row_labels: dict[str, str] = dataclasses.field(default_factory=dict)  # shown instead
    caption: str = ""  # a table the thesis has not: its own caption (else thesis.CAPTIONS)
    stands_for: str = ""  # the thesis table whose rows it trains on other data (claims.py)

    def published(self) -> dict[tuple[str, str], float]:
        """The thesis's numbers of this table, or of the table it stands in for."""
        return thesis.published(self.stands_for or self.number)

    def summary(self, key: tuple[str, str]) -> statistics.Summary:
        return statistics.summarize(list(self.ours.get(key, {}).values()))

    def incomplete(self, key: tuple[str, str]) -> bool:
        return 0 < len(self.ours.get(key, {})) < self.seeds

    def markdown(self, legend: str, comparable: bool) -> str:
        published = self.published()

        def cell(key: tuple[str, str]) -> str:
            summary = self.summary(key)
            ours = summary.text()
            if summary.n:
                short = f"/{self.seeds} †" if self.incomplete(key) else ""
                ours += f" (n={summary.n}{short})"
            if key not in published:
                return ours
            text = f"{ours} / {published[key]:.4f}"
            if comparable and summary.n:
                text += f" ({summary.mean - published[key]:+.4f})"
            return text

        lines = [
            f"# Table {self.number}: {self.caption or thesis.CAPTIONS[self.number]}",
            "",
            legend,
            "",
            "| " + " | ".join([self.corner, *self.columns]) + " |",
            "|" + "---|" * (len(self.columns) + 1),
        ]
        lines += [
            "| "
            + " | ".join([self.row_labels.get(row, row), *(cell((row, c)) for c in self.columns)])
            + " |"
            for row in self.rows
        ]
        return "\n".join(lines) + "\n"

    def write_csv(self, path: Path) -> None:
        """Per row the seeds asked, per column mean, std and n_seeds, then the thesis's value."""
        published = self.published()
        header = [self.corner, "seeds"]
        for c in self.columns:
            header += [f"{c} mean", f"{c} std", f"{c} n_seeds"]
        header += [f"thesis {c}" for c in self.columns]
        rows = [header]
        for row in self.rows:
            line = [row, self.seeds]
            for c in self.columns:
                summary = self.summary((row, c))
                number = statistics.csv_number
                line += [number(summary.mean), number(summary.std), summary.n]
            rows.append(line + [published.get((row, c), "") for c in self.columns])
        files.write_csv(path, rows)


def _finished(
    sweep_: grid.Sweep, root: Path, model: str = "last"
) -> list[tuple[Cell, dict[int, dict]]]:
    """Per cell, {seed: final metrics} of its finished runs' `model` (results.MODEL_CHOICES),
    in the sweep's order."""
    return [
        (
            cell,
            {
                run.config["seed"]: results.final_metrics(root / run.name, run.config, model)
                for run in cell.runs
                if sweep.status(run, root) is sweep.Status.FINISHED
            },
        )
        for cell in sweep_.entries
    ]


def _per_seed(by_seed: dict[int, dict], key: str) -> PerSeed:
    return {seed: metrics[key] for seed, metrics in by_seed.items() if key in metrics}


def _grid_table(
    number: str, corner: str, cells: dict, rows: list, columns: list, seeds: int, caption=""
):
    return Table(
        number,
        corner,
        {key: values for key, values in cells.items() if values},
        list(dict.fromkeys(rows)),
        list(dict.fromkeys(columns)),
        seeds,
        caption=caption,
    )


def lambda_table(number: str, sweep_: grid.Sweep, root: Path, model: str = "last") -> Table:
    """Tables 4.1, 4.2: rows lambda, columns the four metrics (and AutoAttack where a run's
    evaluation.json has it)."""
    rows = [f"{regularization(cell.config):.1f}" for cell in sweep_.entries]
    metrics = results.METRICS | results.OPTIONAL_METRICS
    cells = {}
    for cell, by_seed in _finished(sweep_, root, model):
        row = f"{regularization(cell.config):.1f}"
        cells |= {(row, col): _per_seed(by_seed, key) for col, key in metrics.items()}
    shown = [
        c
        for c in metrics
        if c in results.METRICS or any(v for (_, k), v in cells.items() if k == c)
    ]
    return _grid_table(number, "λ", cells, rows, shown, sweep_.seeds)


def tune_alone_table(sweep_: grid.Sweep, root: Path, model: str = "last") -> Table:
    """Table T.1: Table 4.1's layout for runs trained from scratch on the tune data alone."""
    table = lambda_table("T.1", sweep_, root, model)
    trained = sweep_.entries[0].config["pretrain"]
    table.caption = (
        f"Table 4.1's rows trained on the tune data alone ({trained['dataset']} "
        f"{trained['split']}), from scratch"
    )
    table.stands_for = "4.1"
    return table


def _pretrain_label(config: dict) -> str:
    return objectives.label(config["pretrain"]["objective"], config["pretrain"]["beta"])


def _tune_label(config: dict) -> str:
    if not grid.tunes(config):
        return UNTUNED
    return objectives.label(config["tune"]["objective"], config["tune"]["beta"])


def pretrain_tune_tables(sweep_: grid.Sweep, root: Path, model: str = "last") -> list[Table]:
    """Tables 5.1-5.4, one metric each: rows the tuning, columns the pretraining. The untuned
    row is measured on the tune data, as every other row (results.table_data)."""
    rows = [_tune_label(cell.config) for cell in sweep_.entries]
    columns = [_pretrain_label(cell.config) for cell in sweep_.entries]
    finished = _finished(sweep_, root, model)
    untuned = f"{UNTUNED} (untuned, on {results.table_data(sweep_.entries[0].config).dataset})"
    tables = []
    for index, key in enumerate(results.METRICS.values(), 1):
        cells = {
            (_tune_label(cell.config), _pretrain_label(cell.config)): _per_seed(by_seed, key)
            for cell, by_seed in finished
        }
        table = _grid_table(f"5.{index}", "Tune/Pretrain", cells, rows, columns, sweep_.seeds)
        table.row_labels[UNTUNED] = untuned
        tables.append(table)
    return tables


def subset_table(sweep_: grid.Sweep, root: Path, model: str = "last") -> Table:
    """Table 5.5: rows model and metric, columns the whole pretraining split and its sample."""

    def column(config: dict) -> str:
        return "Sample" if config["pretrain"]["subset"] else "Full Dataset"

    models = [_MODELS_5_5[cell.config["pretrain"]["objective"]] for cell in sweep_.entries]
    rows = [f"{m} / {metric}" for m in dict.fromkeys(models) for metric in _METRICS_5_5]
    cells = {}
    for cell, by_seed in _finished(sweep_, root, model):
        model = _MODELS_5_5[cell.config["pretrain"]["objective"]]
        for metric, key in zip(_METRICS_5_5, results.METRICS.values()):
            cells[(f"{model} / {metric}", column(cell.config))] = _per_seed(by_seed, key)
    columns = [column(cell.config) for cell in sweep_.entries]
    return _grid_table("5.5", "Model / Metric", cells, rows, columns, sweep_.seeds)


def forgetting_table(sweep_: grid.Sweep, root: Path) -> Table:
    """Figure 5-2's endpoints per pair: adversarial accuracy on the pretraining data of the
    pretrained model (its pretrain phase's train sample) and of the tuned one (the same
    sample, as pretrain_train); the thesis publishes no numbers for it."""
    cells: dict[tuple[str, str], PerSeed] = {}
    for cell in sweep_.entries:
        pair = _pair_label(cell.config)
        for run in cell.runs:
            if not run.needs or any(
                sweep.status(r, root) is not sweep.Status.FINISHED
                for r in sweep_.runs
                if r.name in (run.name, run.needs)
            ):
                continue
            before = results.pretrained_metrics(root / run.needs)
            after = results.tuning_series(root / run.name, "pretrain_train/adversarial_accuracy")
            if "train/adversarial_accuracy" in before and after[1]:
                seed = run.config["seed"]
                cells.setdefault((pair, "pretrained"), {})[seed] = before[
                    "train/adversarial_accuracy"
                ]
                cells.setdefault((pair, "tuned"), {})[seed] = after[1][-1]
    rows = [_pair_label(c.config) for c in sweep_.entries]
    return _grid_table("F5.2", "Pair", cells, rows, ["pretrained", "tuned"], sweep_.seeds)


_TEST_METRICS = (("Adv. Test", "adversarial"), ("Nat. Test", "natural"))


def _by_objective(cells: list, objective: str) -> list:
    """The cells of `objective`'s curves: its own and the shared lambda = 0 baseline."""
    return [
        cell for cell in cells if cell[0].config["pretrain"]["objective"] in ("robopt", objective)
    ]


def regularizer_tables(sweep_: grid.Sweep, root: Path, model: str = "last") -> list[Table]:
    """Per objective (TRADES, AR) and test metric: rows lambda, columns the distance in place of
    KL; lambda = 0 (robust optimization) has no distance and fills every column."""
    finished = _finished(sweep_, root, model)
    distances = list(dict.fromkeys(c.config["pretrain"]["regularizer"] for c in sweep_.entries))
    tables = []
    for objective in ("trades", "ar"):
        for column, kind in _TEST_METRICS:
            cells: dict[tuple[str, str], PerSeed] = {}
            rows = []
            for cell, by_seed in _by_objective(finished, objective):
                row = f"{regularization(cell.config):.1f}"
                rows.append(row)
                robopt = cell.config["pretrain"]["objective"] == "robopt"
                for distance in distances if robopt else [cell.config["pretrain"]["regularizer"]]:
                    cells[(row, distance)] = _per_seed(by_seed, results.METRICS[column])
            number = f"D.{len(tables) + 1}"
            name = _display(objective)
            caption = f"{name}: {kind} test accuracy by distance and λ"
            tables.append(_grid_table(number, "λ", cells, rows, distances, sweep_.seeds, caption))
    return tables


def _recipe_label(config: dict) -> str:
    """E.g. "TRADES 6.0 + AWP 0.005 + EMA + held-out best": the objective and the options it
    ran (AWP with its gamma, which a grid may vary)."""
    phase = config["pretrain"]
    options = {
        f"AWP {phase['awp_gamma']:g}": phase["awp_gamma"],
        "EMA": phase["ema_decay"],
        "held-out best": phase["hold_out"],
    }
    parts = [objectives.label(phase["objective"], phase["beta"])]
    return " + ".join(parts + [name for name, value in options.items() if value])


def recipe_table(sweep_: grid.Sweep, root: Path) -> Table:
    """Table R.1: rows the runs' objective and options, columns the test accuracies of each
    final model (results.MODEL_CHOICES) where some run has it."""
    cells: dict[tuple[str, str], PerSeed] = {}
    for model in results.MODEL_CHOICES:
        for cell, by_seed in _finished(sweep_, root, model):
            for name, key in results.TEST_METRICS.items():
                label = (_recipe_label(cell.config), results.model_column(name, model))
                cells[label] = _per_seed(by_seed, key)
    columns = [
        results.model_column(name, model)
        for model in results.MODEL_CHOICES
        for name in results.TEST_METRICS
        if any(values for (_, c), values in cells.items() if c == results.model_column(name, model))
    ]
    rows = [_recipe_label(cell.config) for cell in sweep_.entries]
    caption = "Each ingredient of the recipe alone and together, by final model"
    return _grid_table("R.1", "Objective + options", cells, rows, columns, sweep_.seeds, caption)


def recipe_plain_rows(sweep_: grid.Sweep) -> dict[str, str | None]:
    """Each Table R.1 row's plain row: the same objective and λ without AWP or a held-out
    split (None when the grid has none)."""

    def objective(config: dict) -> tuple[str, float]:
        return config["pretrain"]["objective"], config["pretrain"]["beta"]

    plain = {
        objective(cell.config): _recipe_label(cell.config)
        for cell in sweep_.entries
        if not cell.config["pretrain"]["awp_gamma"] and not cell.config["pretrain"]["hold_out"]
    }
    return {_recipe_label(c.config): plain.get(objective(c.config)) for c in sweep_.entries}


def pretrain_size(config: dict) -> int:
    """Examples the pretraining read: its subset, or (0) the whole split."""
    if config["pretrain"]["subset"]:
        return config["pretrain"]["subset"]
    return data.split_size(
        config["pretrain"]["dataset"], config["pretrain"]["split"], config["data_dir"] or None
    )


def pretrain_size_table(sweep_: grid.Sweep, root: Path, model: str = "last") -> Table:
    """Rows the pretrain -> tune pair, columns the pretraining size: final adversarial test
    accuracy of the tuned model."""
    key = results.METRICS["Adv. Test"]
    cells = {
        (_pair_label(cell.config), f"{pretrain_size(cell.config):,}"): _per_seed(by_seed, key)
        for cell, by_seed in _finished(sweep_, root, model)
    }
    rows = [_pair_label(cell.config) for cell in sweep_.entries]
    sizes = sorted({pretrain_size(cell.config) for cell in sweep_.entries})
    caption = "Adversarial test accuracy after tuning, by pretraining sample size"
    return _grid_table(
        "S.1", "Pair / size", cells, rows, [f"{n:,}" for n in sizes], sweep_.seeds, caption
    )


def _pair_label(config: dict) -> str:
    return f"{_pretrain_label(config)} → {_tune_label(config)}"


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    with files.replaced_atomically(path) as staging:
        figure.savefig(staging, dpi=120)
    plt.close(figure)
    return path


_BAND = "band: lowest to highest seed"


def _draw(axes, points: list[tuple[float, PerSeed]], seeds: int, style: str, **kwargs) -> None:
    """The mean over seeds at each x with a min-max band; open markers where a point has
    fewer finished seeds than asked."""
    points = sorted((x, list(v.values())) for x, v in points if v)
    if not points:
        return
    xs = [x for x, _ in points]
    (line,) = axes.plot(xs, [sum(v) / len(v) for _, v in points], style, **kwargs)
    color = line.get_color()
    axes.fill_between(
        xs, [min(v) for _, v in points], [max(v) for _, v in points], alpha=0.2, color=color
    )
    short = [(x, sum(v) / len(v)) for x, v in points if len(v) < seeds]
    if short:
        axes.plot(*zip(*short), "o", mfc="white", color=color)


def lambda_figures(
    sweep_: grid.Sweep, root: Path, out: Path, comparable: bool, model: str = "last"
) -> list[Path]:
    """Figures 4-1..4-4: each metric vs lambda, TRADES and AR, the thesis's values dashed."""
    finished = _finished(sweep_, root, model)
    reference = "thesis" if comparable else "thesis, CIFAR-10 reference"
    paths = []
    for index, (column, key) in enumerate(results.METRICS.items(), 1):
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for objective, number in (("trades", "4.1"), ("ar", "4.2")):
            color, name = _COLORS[objective], _display(objective)
            ours = [
                (regularization(cell.config), _per_seed(by_seed, key))
                for cell, by_seed in finished
                if cell.config["pretrain"]["objective"] in ("robopt", objective)
            ]
            label = f"{name} (ours: mean of {sweep_.seeds} seeds, {_BAND})"
            _draw(axes, ours, sweep_.seeds, "o-", color=color, label=label)
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
        axes.legend(
            fontsize="small", title="open marker: fewer seeds than asked", title_fontsize="x-small"
        )
        paths.append(_save(figure, out / f"fig_4_{index}.png"))
    return paths


def tuning_figures(sweep_: grid.Sweep, root: Path, out: Path) -> list[Path]:
    """Figures 5-1..5-4: each metric vs tuning epoch, one line per pretrain -> tune pair."""
    paths = []
    for number, key, phase, title in _FIGURES_5:
        figure, axes = plt.subplots(figsize=(7, 4.5))
        for cell in sweep_.entries:
            by_epoch: dict[int, PerSeed] = {}
            for run in cell.runs:
                for epoch, value in zip(*results.tuning_series(root / run.name, key)):
                    by_epoch.setdefault(epoch, {})[run.config["seed"]] = value
            label = f"{_pretrain_label(cell.config)} → {_tune_label(cell.config)}"
            _draw(axes, list(by_epoch.items()), sweep_.seeds, ".-", label=label)
        config = sweep_.entries[0].config
        split = config["pretrain"]["split"] if phase == "pretrain" else config["eval"]["test_split"]
        data = f"{config[phase]['dataset']} {split}"
        axes.set(xlabel="tuning epoch", ylabel="accuracy", title=f"{data}: {title} vs Tuning Epoch")
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        _seeds_legend(axes, sweep_.seeds)
        paths.append(_save(figure, out / f"fig_{number}.png"))
    return paths


def _seeds_legend(axes, seeds: int) -> None:
    axes.legend(
        fontsize="small",
        title=f"mean of {seeds} seeds, {_BAND}; open marker: fewer seeds",
        title_fontsize="x-small",
    )


def regularizer_figures(
    sweep_: grid.Sweep, root: Path, out: Path, model: str = "last"
) -> list[Path]:
    """Per objective and test metric: accuracy vs lambda, one line per distance, each starting
    from the shared robust-optimization point at lambda = 0."""
    finished = _finished(sweep_, root, model)
    paths = []
    for objective in ("trades", "ar"):
        for column, kind in _TEST_METRICS:
            key = results.METRICS[column]
            figure, axes = plt.subplots(figsize=(7, 4.5))
            cells = _by_objective(finished, objective)
            baseline = [
                (0.0, _per_seed(s, key))
                for c, s in cells
                if c.config["pretrain"]["objective"] == "robopt"
            ]
            for distance in dict.fromkeys(c.config["pretrain"]["regularizer"] for c, _ in cells):
                points = [
                    (regularization(c.config), _per_seed(s, key))
                    for c, s in cells
                    if c.config["pretrain"]["objective"] == objective
                    and c.config["pretrain"]["regularizer"] == distance
                ]
                _draw(axes, baseline + points, sweep_.seeds, "o-", label=distance)
            axes.set(
                xlabel="regularization λ",
                ylabel="accuracy",
                title=f"{_display(objective)}: {kind} test accuracy by distance",
            )
            _seeds_legend(axes, sweep_.seeds)
            paths.append(_save(figure, out / f"fig_distances_{objective}_{kind}.png"))
    return paths


def pretrain_size_figure(
    sweep_: grid.Sweep, root: Path, out: Path, model: str = "last"
) -> list[Path]:
    """Final adversarial test accuracy vs pretraining size, one line per pair."""
    key = results.METRICS["Adv. Test"]
    figure, axes = plt.subplots(figsize=(7, 4.5))
    finished = _finished(sweep_, root, model)
    for label in dict.fromkeys(_pair_label(c.config) for c in sweep_.entries):
        points = [
            (pretrain_size(c.config), _per_seed(s, key))
            for c, s in finished
            if _pair_label(c.config) == label
        ]
        _draw(axes, points, sweep_.seeds, "o-", label=label)
    config = sweep_.entries[0].config
    pretrain = config["pretrain"]
    data_name = results.table_data(config)
    axes.set(
        xscale="log",
        xlabel=f"pretraining examples ({pretrain['dataset']} {pretrain['split']})",
        ylabel="accuracy",
        title=f"{data_name.dataset} {data_name.test_split}: adversarial test accuracy after tuning",
    )
    _seeds_legend(axes, sweep_.seeds)
    return [_save(figure, out / "fig_pretrain_size.png")]


def _legend(root: Path, model: str | None, comparable: bool | None) -> str:
    """What a table's cells hold. `comparable`: whether the thesis's numbers are on the same
    data (None: the table has none, so its cells name no reference)."""
    which = f"; model: {results.MODEL_CHOICES[model]} ({model})" if model else ""
    reference = {
        True: " / thesis (ours − thesis)",
        False: " / thesis's CIFAR-10 value (a reference: other data)",
        None: "",
    }[comparable]
    return (
        f"Runs under `{root}`{which}. Each cell: ours, the mean ± standard deviation over n seeds"
        f"{reference}; — : no finished run; † : fewer finished seeds than asked "
        "(n = finished/asked)."
    )


def _write_tables(
    tables: list[Table], out: Path, root: Path, comparable: bool, model: str | None
) -> list[Path]:
    """`model`: the final model the tables read (None: each column names its own)."""
    paths = []
    for table in tables:
        stem = out / f"table_{table.number.replace('.', '_')}"
        legend = _legend(root, model, comparable if table.published() else None)
        files.write_text(stem.with_suffix(".md"), table.markdown(legend, comparable))
        table.write_csv(stem.with_suffix(".csv"))
        paths += [stem.with_suffix(".md"), stem.with_suffix(".csv")]
    return paths


def tables(
    experiment: ModuleType, root: Path, seeds: int | None = None, model: str = "last"
) -> list[Table]:
    """The tables of a table experiment (REPORT table_4_1, table_4_2, tune_alone, tables_5,
    table_5_5, regularizers, pretrain_size, recipe), of the runs' final `model`
    (results.MODEL_CHOICES; the recipe table shows every model)."""
    results.check_model_choice(model)
    sweep_ = grid.expand(experiment, root, seeds)
    if experiment.REPORT in ("table_4_1", "table_4_2"):
        return [lambda_table(experiment.REPORT[-3:].replace("_", "."), sweep_, root, model)]
    if experiment.REPORT == "tune_alone":
        return [tune_alone_table(sweep_, root, model)]
    if experiment.REPORT == "tables_5":
        return pretrain_tune_tables(sweep_, root, model)
    if experiment.REPORT == "table_5_5":
        return [subset_table(sweep_, root, model)]
    if experiment.REPORT == "regularizers":
        return regularizer_tables(sweep_, root, model)
    if experiment.REPORT == "pretrain_size":
        return [pretrain_size_table(sweep_, root, model)]
    if experiment.REPORT == "recipe":
        return [recipe_table(sweep_, root)]
    raise ValueError(f"REPORT {experiment.REPORT!r} has no tables.")


_FIGURES: dict[str, Callable[[grid.Sweep, Path, Path, bool, str], list[Path]]] = {
    "figures_4": lambda_figures,
    "figures_5": lambda s, r, o, c, m: tuning_figures(s, r, o),  # every epoch, not a final model
}
# Layouts beyond the thesis: tables and figures both.
_BOTH: dict[str, Callable[[grid.Sweep, Path, Path, str], list[Path]]] = {
    "regularizers": regularizer_figures,
    "pretrain_size": pretrain_size_figure,
}
_TABLES = ("table_4_1", "table_4_2", "tune_alone", "tables_5", "table_5_5", "recipe")
LAYOUTS = (*_TABLES, *_FIGURES, *_BOTH)


def comparable(experiment: ModuleType) -> bool:
    """Whether our numbers are measured on the thesis's data, so differences mean something."""
    config = experiment.get_config().to_dict()
    return results.table_data(config).dataset == THESIS_DATA


def write_report(
    experiment: ModuleType,
    root: str | os.PathLike,
    out: str | os.PathLike,
    seeds: int | None = None,
    model: str = "last",
) -> list[Path]:
    """Writes the experiment's tables or figures into `out`; returns their paths. `seeds`
    overrides the experiment's SEEDS (the number of seeds each cell is asked to have); `model`
    chooses the runs' final model (results.MODEL_CHOICES)."""
    root, out = Path(root), Path(out)
    results.check_model_choice(model)
    if experiment.REPORT not in LAYOUTS:
        raise ValueError(f"Unknown REPORT {experiment.REPORT!r}; one of {', '.join(LAYOUTS)}.")
    sweep_ = grid.expand(experiment, root, seeds)
    if not any((root / run.name).is_dir() for run in sweep_.runs):
        raise ValueError(
            f"None of the experiment's {len(sweep_.runs)} runs is under {root} (e.g. "
            f"{root / sweep_.runs[0].name}); point --root at the sweep's root, or train the "
            "runs first (python -m tools.sweep)."
        )
    out.mkdir(parents=True, exist_ok=True)
    if experiment.REPORT in _FIGURES:
        return _FIGURES[experiment.REPORT](sweep_, root, out, comparable(experiment), model)
    found = tables(experiment, root, seeds, model)
    named = None if experiment.REPORT == "recipe" else model
    paths = _write_tables(found, out, root, comparable(experiment), named)
    if experiment.REPORT in _BOTH:
        paths += _BOTH[experiment.REPORT](sweep_, root, out, model)
    if experiment.REPORT == "regularizers":
        paths += distances.write_comparison(found, out)
    if experiment.REPORT == "pretrain_size":
        paths += sizes.write_comparison(found[0], out)
    if experiment.REPORT == "recipe":
        paths += ingredients.write_comparison(found[0], recipe_plain_rows(sweep_), out)
    return paths
