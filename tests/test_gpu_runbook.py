"""docs/gpu.md stays true: its tools.* commands use real flags, and its sweep block runs."""

import os
import re
import shlex
import subprocess
import sys
import textwrap

import pytest
from support import ROOT

RUNBOOK = ROOT / "docs" / "gpu.md"
_BLOCK = re.compile(r"```sh\n(.*?)```", re.DOTALL)
_TESTED_BLOCK = re.compile(r"<!-- runbook-test: (\w+) -->\n```sh\n(.*?)```", re.DOTALL)
# A two-run Table 4.2 at width 4 on the digits: the runbook's sweep block in a minute.
TINY_TABLE_4_2 = """
from configs.digits import base

REPORT = "table_4_2"


def get_config():
    config = base.chapter4()
    config.model.width, config.batch_size, config.pretrain.epochs = 4, 100, 1
    config.attack.steps, config.attack.eval_steps, config.eval.train_subset = 2, 2, 100
    return config


# Flat field names, as experiment files of the first releases wrote them, still work.
def get_sweep():
    return [{"pretrain_objective": "robopt", "pretrain_beta": 0.0},
            {"pretrain_objective": "ar", "pretrain_beta": 1.0}]
"""


def _tool_commands(text: str) -> list[list[str]]:
    """Every `python -m tools.<name> ...` command in the file's shell blocks, as words."""
    commands = []
    for block in _BLOCK.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["python", "-m"] and words[2].startswith("tools."):
                commands.append(words)
    return commands


def _defined_flags(tool: str) -> set[str]:
    help_text = subprocess.run(
        [sys.executable, "-m", tool, "--helpfull"],
        cwd=ROOT,
        env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "3"},
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return set(re.findall(r"^\s+--(?:\[no\])?([\w.]+):", help_text, re.MULTILINE))


@pytest.mark.slow
def test_every_tool_command_in_the_runbook_uses_flags_its_tool_defines():
    commands = _tool_commands(RUNBOOK.read_text())
    tools = sorted({words[2] for words in commands})
    assert tools == ["tools.benchmark", "tools.report", "tools.sweep"]
    defined = {tool: _defined_flags(tool) for tool in tools}
    for words in commands:
        for word in words[3:]:
            name = word.removeprefix("--").split("=")[0]
            assert word.startswith("--") and name in defined[words[2]], (word, words)


@pytest.mark.slow
def test_the_runbook_sweep_block_trains_emits_resumes_and_reports(tmp_path):
    blocks = dict(_TESTED_BLOCK.findall(RUNBOOK.read_text()))
    script = blocks["sweep"]
    assert script.startswith("E=configs/thesis/table_4_2.py\n")
    experiment = tmp_path / "tiny_table_4_2.py"
    experiment.write_text(textwrap.dedent(TINY_TABLE_4_2))
    script = script.replace("configs/thesis/table_4_2.py", str(experiment), 1)
    python_dir = os.path.dirname(sys.executable)
    env = os.environ | {
        "PYTHONPATH": str(ROOT),
        "PATH": f"{python_dir}:{os.environ['PATH']}",  # `python` is this interpreter
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Wrote jobs/table_4_2.txt (2 of 2 runs unfinished)." in result.stdout
    assert len((tmp_path / "jobs" / "table_4_2.txt").read_text().splitlines()) == 2
    report = tmp_path / "runs" / "digits" / "chapter4" / "report" / "table_4_2.md"
    for row in ("0.0", "1.0"):  # our robopt and AR 1.0 beside the thesis's numbers
        cell = rf"^\| {row} \| 0\.\d{{4}}[^|]* / 0\.\d{{4}} \|"
        assert re.search(cell, report.read_text(), re.M), report.read_text()
    # After the jobs finished (or a preempted machine came back), --emit has nothing left.
    emit = [sys.executable, "-m", "tools.sweep", f"--config={experiment}"]
    again = subprocess.run(
        [*emit, "--emit=jobs/again.txt"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert "(0 of 2 runs unfinished)" in again.stdout, again.stderr[-2000:]
