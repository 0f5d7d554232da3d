"""Experiment grids (their sizes match the thesis's tables), run names, skip and resume."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from support import assert_one_line_error, run_tool_in_process, wait_for_first_checkpoint

from tf_advreg import data
from tf_advreg.experiments import grid, results, sweep
from tf_advreg.training import run_config, schema, workdir_lock
from tf_advreg.training.callbacks import read_metrics

ROOT = Path(__file__).resolve().parents[2]


def load(path: str):
    return grid.load_experiment(ROOT / "configs" / path)


# (file, unique runs, entries): Table 4.x has 9 lambdas; Tables 5.1-5.4 5 pretrainings, each
# alone and with 6 tunings; Figures 5-x 3 pairs; Table 5.5 the 3 pairs x {full, sample}.
SIZES = [
    ("table_4_1.py", 9, 9),
    ("table_4_2.py", 9, 9),
    ("figures_4_1_to_4_4.py", 17, 18),  # lambda = 0 is one run shared by TRADES and AR
    ("tables_5_1_to_5_4.py", 5 + 30, 35),
    ("figures_5_1_to_5_4.py", 3 + 3, 3),
    ("table_5_5.py", 6 + 6, 6),
    # The future work: 1 + 2 objectives x 4 distances x 8 lambdas; 3 pairs x 5 sizes.
    ("regularizers.py", 65, 65),
    ("pretrain_size.py", 15 + 15, 15),
]


@pytest.mark.parametrize("scale,seeds", [("thesis", 1), ("digits", 3)])
@pytest.mark.parametrize("name,num_runs,num_entries", SIZES)
def test_grid_sizes_match_the_thesis(scale, seeds, name, num_runs, num_entries, tmp_path):
    expanded = grid.expand(load(f"{scale}/{name}"), tmp_path)
    assert expanded.seeds == seeds
    assert len(expanded.runs) == num_runs * seeds
    assert len(expanded.entries) == num_entries
    assert all(len(cell.runs) == seeds for cell in expanded.entries)
    assert len({run.name for run in expanded.runs}) == num_runs * seeds


def test_each_cell_runs_once_per_seed_and_tunes_from_its_own_seeds_pretraining(tmp_path):
    expanded = grid.expand(load("thesis/figures_5_1_to_5_4.py"), tmp_path, seeds=3)
    cell = expanded.entries[1]
    assert [run.name for run in cell.runs] == [f"trades3__trades5-seed{k}" for k in range(3)]
    assert [run.config["seed"] for run in cell.runs] == [0, 1, 2]
    assert [run.needs for run in cell.runs] == [f"trades3-seed{k}" for k in range(3)]
    assert (
        cell.runs[2].config["tune"]["init_checkpoint"].startswith(str(tmp_path / "trades3-seed2"))
    )
    assert "--config.seed=2" in sweep.command(cell.runs[2], "x.py", tmp_path)
    with pytest.raises(ValueError, match="at least 1"):
        grid.expand(load("thesis/figures_5_1_to_5_4.py"), tmp_path, seeds=0)


def test_runs_name_their_distance_unless_it_is_kl(tmp_path):
    """KL runs keep their names, so the distance grid reuses Figures 4-x's runs."""
    names = {run.name for run in grid.expand(load("thesis/regularizers.py"), tmp_path).runs}
    figures = grid.expand(load("thesis/figures_4_1_to_4_4.py"), tmp_path).runs
    assert {run.name for run in figures} < names
    assert {"trades3-total_variation-seed0", "ar0.1-jensen_shannon-seed0"} < names
    assert "ar5-symmetric_kl-seed0" in names


def test_lambda_zero_is_the_robust_optimization_baseline_in_both_chapter_4_tables(tmp_path):
    for name, objective in (("table_4_1.py", "trades"), ("table_4_2.py", "ar")):
        runs = grid.expand(load(f"thesis/{name}"), tmp_path).runs
        assert [
            (r.config["pretrain"]["objective"], r.config["pretrain"]["beta"]) for r in runs
        ] == [
            ("robopt", 0.0),
            *((objective, beta) for beta in (0.1, 0.2, 0.4, 0.8, 1.0, 2.0, 3.0, 5.0)),
        ]
        assert all(r.config["pretrain"]["dataset"] == "cifar10" for r in runs)
        assert all(
            r.config["tune"]["dataset"] == "" and r.config["pretrain"]["epochs"] == 100
            for r in runs
        )


def test_tunings_start_from_the_shared_pretraining_and_still_evaluate_on_its_data(tmp_path):
    runs = {
        run.name: run for run in grid.expand(load("thesis/tables_5_1_to_5_4.py"), tmp_path).runs
    }
    pretraining, tuning = runs["trades3-seed0"], runs["trades3__trades5-seed0"]
    assert (
        pretraining.config["tune"]["epochs"] == 0
        and pretraining.config["pretrain"]["epochs"] == 100
    )
    assert pretraining.config["pretrain"]["dataset"] == "cinic10"
    assert pretraining.config["tune"]["dataset"] == "cifar10"  # the untuned row is measured on it
    assert tuning.needs == "trades3-seed0"
    assert tuning.config["pretrain"]["epochs"] == 0
    assert tuning.config["pretrain"]["dataset"] == "cinic10"  # each tuning epoch evaluated on it
    assert tuning.config["tune"]["init_checkpoint"] == str(
        tmp_path / "trades3-seed0" / "pretrain" / "checkpoints" / "epoch_0100"
    )
    assert (tuning.config["tune"]["objective"], tuning.config["tune"]["beta"]) == ("trades", 5.0)
    order = list(runs)
    assert all(order.index(r.needs) < order.index(r.name) for r in runs.values() if r.needs)


def test_table_5_5_samples_the_pretraining_and_shares_the_full_runs_with_figures_5(tmp_path):
    figures = grid.expand(load("thesis/figures_5_1_to_5_4.py"), tmp_path).runs
    table = {run.name: run for run in grid.expand(load("thesis/table_5_5.py"), tmp_path).runs}
    assert {run.name for run in figures} < set(table)
    for run in figures:  # the same run: only a field a workdir may change on resume differs
        assert run_config.config_differences(table[run.name].config, run.config) == []
        differing = {
            path
            for path, value in schema.flatten(run.config).items()
            if schema.flatten(table[run.name].config)[path] != value
        }
        assert differing == {"keep_checkpoints", "eval.every"}
        assert all(schema.FIELDS[path].resumable for path in differing)
    assert table["ar1-sub50000-seed0"].config["pretrain"]["subset"] == 50_000
    assert table["ar1-sub50000__ar5-seed0"].needs == "ar1-sub50000-seed0"


def test_two_different_runs_with_one_name_are_refused(tmp_path):
    experiment = load("digits/table_4_1.py")
    clash = type(experiment)("clash")
    clash.get_config = experiment.get_config
    clash.get_sweep = lambda: [
        {"pretrain_objective": "ar"},
        {"pretrain_objective": "ar", "eps": 0.2},
    ]
    with pytest.raises(ValueError, match="both named ar3-seed0"):
        grid.expand(clash, tmp_path)


def test_the_command_sets_each_override_and_the_workdir(tmp_path):
    (run,) = [
        r for r in grid.expand(load("digits/table_5_5.py"), tmp_path).runs if r.name == "ar1-seed0"
    ]
    assert sweep.command(run, "configs/digits/table_5_5.py", tmp_path) == [
        "python",
        "-m",
        "tools.train",
        "--config=configs/digits/table_5_5.py",
        "--config.pretrain.objective=ar",
        "--config.pretrain.beta=1.0",
        "--config.pretrain.subset=0",
        "--config.seed=0",
        "--config.tune.epochs=0",
        f"--workdir={tmp_path / 'ar1-seed0'}",
    ]


def test_finished_runs_are_skipped_and_the_others_run_or_resume(tmp_path, fabricate):
    runs = grid.expand(load("digits/figures_5_1_to_5_4.py"), tmp_path, seeds=1).runs
    by_name = {run.name.removesuffix("-seed0"): run for run in runs}
    fabricate(tmp_path, by_name["robopt"])
    fabricate(tmp_path, by_name["robopt__robopt"], epochs=2)  # killed after tuning epoch 2 of 4
    fabricate(tmp_path, by_name["ar1"])
    (
        tmp_path / "ar1-seed0" / "pretrain" / "saved_model" / "saved_model.pb"
    ).unlink()  # before export
    assert sweep.status(by_name["robopt"], tmp_path) is sweep.Status.FINISHED
    assert sweep.status(by_name["robopt__robopt"], tmp_path) is sweep.Status.PARTIAL
    assert sweep.status(by_name["ar1"], tmp_path) is sweep.Status.PARTIAL
    assert sweep.status(by_name["trades3"], tmp_path) is sweep.Status.NEW

    executed = []
    sweep.run_all(
        runs, "configs/digits/figures_5_1_to_5_4.py", tmp_path, lambda a: executed.append(a) or 0
    )
    workdirs = [next(a for a in args if a.startswith("--workdir=")) for args in executed]
    assert workdirs == [
        f"--workdir={tmp_path / name}-seed0"
        for name in ("trades3", "ar1", "robopt__robopt", "trades3__trades5", "ar1__ar5")
    ]
    assert executed[0][:3] == [sys.executable, "-m", "tools.train"]


def test_dry_run_lists_each_run_with_its_status_and_command(tmp_path, fabricate):
    runs = grid.expand(load("digits/table_4_2.py"), tmp_path).runs
    fabricate(tmp_path, runs[0])
    fabricate(tmp_path, runs[1], epochs=3)
    lines = sweep.describe(runs, "configs/digits/table_4_2.py", tmp_path).splitlines()
    assert lines[0] == f"27 runs of configs/digits/table_4_2.py under {tmp_path}:"
    assert [line.split()[:2] for line in lines[1:4]] == [
        ["finished", "robopt-seed0"],
        ["partial", "ar0.1-seed0"],
        ["new", "ar0.2-seed0"],
    ]
    assert lines[3].endswith(
        "python -m tools.train --config=configs/digits/table_4_2.py "
        "--config.pretrain.objective=ar --config.pretrain.beta=0.2 --config.seed=0 "
        f"--workdir={tmp_path / 'ar0.2-seed0'}"
    )
    seeds = [line.split()[1] for line in lines[1:] if line.split()[1].startswith("ar5")]
    assert seeds == ["ar5-seed0", "ar5-seed1", "ar5-seed2"]  # each (cell, seed) one run


def test_the_sweep_tool_lists_every_cell_and_seed(tmp_path):
    result = run_tool_in_process(
        "sweep",
        "--config=configs/digits/table_4_1.py",
        "--seeds=2",
        "--dry_run",
        f"--root={tmp_path}",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"18 runs of configs/digits/table_4_1.py under {tmp_path}:"
    assert [line.split()[1] for line in lines[1:] if "trades5-" in line] == [
        "trades5-seed0",
        "trades5-seed1",
    ]
    assert not any(tmp_path.iterdir())  # a dry run writes nothing


def test_the_tune_alone_sweep_lists_table_4_1s_rows_of_the_tunings(tmp_path):
    result = run_tool_in_process(
        "sweep", "--config=configs/digits/tune_alone.py", "--dry_run", f"--root={tmp_path}"
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"15 runs of configs/digits/tune_alone.py under {tmp_path}:"
    names = ["robopt", "trades0.1", "trades1", "trades3", "trades5"]
    assert [line.split()[1] for line in lines[1:]] == [
        f"{name}-seed{seed}" for seed in range(3) for name in names
    ]
    assert all("--config=configs/digits/tune_alone.py" in line for line in lines[1:])
    assert not any(tmp_path.iterdir())


def test_a_workdir_of_another_config_stops_the_sweep(tmp_path, fabricate):
    run = grid.expand(load("digits/table_4_1.py"), tmp_path).runs[0]
    other = run.config | {"model": run.config["model"] | {"width": 4}}
    fabricate(tmp_path, grid.Run(run.name, {}, other))
    assert sweep.status(run, tmp_path) is sweep.Status.CONFLICT
    with pytest.raises(RuntimeError, match="another config"):
        sweep.run_all([run], "configs/digits/table_4_1.py", tmp_path, lambda args: 0)


def test_a_tables_run_that_a_figure_needs_evaluated_every_epoch_stops_the_figures_sweep(
    tmp_path, fabricate
):
    """Tables evaluate the final epoch only; a run they share with Figures 5-x trained by the
    table's sweep first lacks the figure's per-epoch curve, and must not count as finished."""
    table = {run.name: run for run in grid.expand(load("digits/table_5_5.py"), tmp_path).runs}
    figures = grid.expand(load("digits/figures_5_1_to_5_4.py"), tmp_path).runs
    shared = figures[-1]
    assert table[shared.name].config["eval"]["every"] == 0
    assert shared.config["eval"]["every"] == 1
    fabricate(tmp_path, table[shared.name])
    assert sweep.status(table[shared.name], tmp_path) is sweep.Status.FINISHED
    assert sweep.status(shared, tmp_path) is sweep.Status.UNDER_EVALUATED
    with pytest.raises(RuntimeError, match="evaluating fewer epochs .* another --root"):
        sweep.run_all([shared], "configs/digits/figures_5_1_to_5_4.py", tmp_path, lambda a: 0)
    emitted = tmp_path / "jobs.txt"
    result = run_tool_in_process(
        "sweep", "--config=configs/digits/figures_5_1_to_5_4.py", f"--root={tmp_path}",
        f"--emit={emitted}",
    )  # fmt: skip
    assert_one_line_error(result, f"{tmp_path / shared.name} was trained evaluating fewer")
    assert not emitted.exists()

    other_root = tmp_path / "figures_first"  # the other order: the table reads the figure's
    fabricate(other_root, shared)
    assert sweep.status(table[shared.name], other_root) is sweep.Status.FINISHED


def test_a_failed_run_stops_the_sweep(tmp_path):
    runs = grid.expand(load("digits/table_4_1.py"), tmp_path).runs
    executed = []
    with pytest.raises(RuntimeError, match="robopt-seed0 failed"):
        sweep.run_all(runs, "cfg.py", tmp_path, lambda args: executed.append(args) or 1)
    assert len(executed) == 1


def test_only_selects_runs_by_name_with_the_pretraining_they_need(tmp_path):
    runs = grid.expand(load("thesis/tables_5_1_to_5_4.py"), tmp_path).runs
    assert [r.name for r in sweep.select(runs, "__trades5")][:2] == [
        "robopt-seed0",
        "trades0.1-seed0",
    ]
    assert [r.name for r in sweep.select(runs, "trades3__trades5")] == [
        "trades3-seed0",
        "trades3__trades5-seed0",
    ]


def test_only_matching_no_run_says_so(tmp_path):
    runs = grid.expand(load("digits/table_4_2.py"), tmp_path).runs
    with pytest.raises(ValueError, match="No run's name contains 'nomatch'; the runs are: "):
        sweep.select(runs, "nomatch")


def test_emit_writes_one_command_per_line_and_a_staged_script(tmp_path):
    runs = grid.expand(load("thesis/figures_5_1_to_5_4.py"), "runs/ch5").runs
    commands, script = sweep.write_commands(
        runs, "configs/thesis/figures_5_1_to_5_4.py", "runs/ch5", tmp_path / "jobs.txt"
    )
    lines = commands.read_text().splitlines()
    assert len(lines) == 6 and all(
        line.startswith("python -m tools.train --config=") for line in lines
    )
    assert lines[3].endswith("--workdir=runs/ch5/robopt__robopt-seed0")
    text = script.read_text()
    assert text.count("stage <<'EOF'") == 2  # pretrainings, then the tunings
    assert os.access(script, os.X_OK)
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


TINY_EXPERIMENT = """
from configs.digits import base

REPORT = "figures_5"


def get_config():
    config = base.chapter5()
    config.model.width, config.batch_size = 4, 100
    config.pretrain.epochs, config.tune.epochs = 1, 1
    config.attack.steps, config.attack.eval_steps = 2, 2
    config.eval.train_subset = 100
    return config


# Flat field names, as experiment files of the first releases wrote them, still work.
def get_sweep():
    return [{"pretrain_objective": "trades", "pretrain_beta": 1.0, "tune_objective": "ar",
             "tune_beta": 2.0}, {"pretrain_objective": "trades", "pretrain_beta": 1.0,
             "tune_epochs": 0}]
"""


@pytest.mark.slow
def test_a_tiny_sweep_trains_the_pretraining_once_then_tunes_from_it(tmp_path):
    experiment_file = tmp_path / "tiny.py"
    experiment_file.write_text(textwrap.dedent(TINY_EXPERIMENT))
    root = tmp_path / "runs"
    runs = grid.expand(grid.load_experiment(experiment_file), root).runs
    assert [run.name for run in runs] == ["trades1-seed0", "trades1__ar2-seed0"]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    sweep.run_all(
        runs,
        str(experiment_file),
        root,
        lambda args: subprocess.run(args, cwd=ROOT, env=env, timeout=300).returncode,
    )
    assert all(sweep.status(run, root) is sweep.Status.FINISHED for run in runs)
    assert not (root / "trades1__ar2-seed0" / "pretrain" / "metrics.jsonl").exists()
    (tuned,) = read_metrics(root / "trades1__ar2-seed0" / "tune" / "metrics.jsonl")
    assert "pretrain_train/adversarial_accuracy" in tuned  # thesis Figures 5-1, 5-2
    (untuned,) = read_metrics(root / "trades1-seed0" / "pretrain" / "metrics.jsonl")
    final = results.final_metrics(root / "trades1-seed0", runs[0].config)
    assert final["train/natural_accuracy"] == untuned["tune_train/natural_accuracy"]
    assert final["test/natural_accuracy"] == untuned["test/natural_accuracy"]  # digits: shared


@pytest.mark.slow
def test_stopping_the_sweep_stops_its_run_too(tmp_path):
    """An orphaned run would go on training beside the run a restarted sweep starts there."""
    experiment_file = tmp_path / "long.py"
    long_pretraining = textwrap.dedent(TINY_EXPERIMENT).replace("epochs = 1, 1", "epochs = 200, 1")
    experiment_file.write_text(long_pretraining)
    root = tmp_path / "runs"
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.sweep", f"--config={experiment_file}", f"--root={root}"],
        cwd=ROOT,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, for the clean-up below
    )
    try:
        wait_for_first_checkpoint(process, root / "trades1-seed0" / "pretrain")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
        assert [line for line in stderr.splitlines() if line.startswith("error:")] == [
            "error: stopped, with the run in progress (re-run to resume)."
        ]
        with workdir_lock.hold(root / "trades1-seed0"):  # no process trains it any more
            pass
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # an orphaned run, if the test failed


@pytest.mark.parametrize(
    "scale, dataset, runs, steps",
    [
        # 19 x 8 for all 997 digits; 1 x 152, 3 x 51, 6 x 25, 11 x 14 for the samples
        ("digits", "digits", 2 * 15 * 3, {152, 153, 150, 154}),
        # 1,800 x 100 for all 180k of CINIC-10; 100 x 1,800, 250 x 720, 500 x 360, 1,000 x 180
        ("thesis", "cinic10", 2 * 15, {180_000}),
    ],
)
def test_the_same_steps_size_grid_pretrains_every_sample_as_long_as_the_whole_split(
    tmp_path, scale, dataset, runs, steps
):
    """Only the number of distinct images changes along its curve, not the training's length."""
    experiment = load(f"{scale}/pretrain_size_same_steps.py")
    expanded = grid.expand(experiment, tmp_path).runs
    assert len(expanded) == runs
    pretrainings = [run.config["pretrain"] for run in expanded if not run.needs]
    assert {p["subset"] for p in pretrainings} == set(load(f"{scale}/pretrain_size.py").SIZES)
    whole = data.split_size(dataset, pretrainings[0]["split"])
    batch_size = experiment.get_config().batch_size
    assert {(p["subset"] or whole) // batch_size * p["epochs"] for p in pretrainings} == steps
    assert experiment.get_config().workdir != load(f"{scale}/pretrain_size.py").get_config().workdir
