"""docs/tutorial.ipynb runs top to bottom without an error (at smoke-test size)."""

import nbformat
import pytest
from nbclient import NotebookClient
from support import ROOT

NOTEBOOK = ROOT / "docs" / "tutorial.ipynb"


@pytest.mark.slow
def test_the_tutorial_executes_and_draws_its_pictures(monkeypatch):
    # The kernel inherits the environment: the first cell reads the flag that shrinks the run.
    monkeypatch.setenv("TF_ADVREG_TUTORIAL_QUICK", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()  # raises CellExecutionError, naming the cell, on any error
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]
    pictures = [output for output in outputs if "image/png" in output.get("data", {})]
    assert len(pictures) == 3  # two example grids and the robustness curve
    text = "".join(output.get("text", "") for output in outputs)
    assert "largest logit difference after reloading" in text
    assert "strongest" in text and "PGD-" in text


def test_the_committed_tutorial_holds_the_outputs_of_a_full_run():
    """What GitHub shows: every code cell ran, in order, at full size, pictures included."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    outputs = [output for cell in code for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert sum("image/png" in output.get("data", {}) for output in outputs) == 3
    settings = "".join(output.get("text", "") for output in code[1].outputs)
    assert settings.startswith("digits {'width': 16, 'epochs': 10")
