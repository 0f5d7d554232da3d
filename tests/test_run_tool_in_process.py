"""run_tool_in_process, which the bad-input tests use, answers as `python -m tools.<tool>` does."""

import pytest
from support import run_tool, run_tool_in_process


@pytest.mark.parametrize(
    "args",
    [
        ["--config.tune.attack.epss=0.1"],  # refused while tools.train defines its flags
        ["--config={broken}"],  # refused while parsing the flags
        ["--overwrite", "positional"],  # refused by main (absl's usage message)
    ],
)
def test_it_answers_as_a_new_process_does(args, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    args = [arg.format(broken=broken) for arg in args]
    real, here = run_tool("train", *args, timeout=120), run_tool_in_process("train", *args)
    assert here.returncode == real.returncode != 0
    assert here.stderr.splitlines()[-1:] == real.stderr.splitlines()[-1:]
    assert here.stdout == real.stdout


def test_it_leaves_none_of_the_tools_flags_behind():
    from absl import flags

    run_tool_in_process("train", "--overwrite", "--config.seed=3", "positional")
    assert not {"overwrite", "config", "config.seed", "width"} & set(flags.FLAGS)
