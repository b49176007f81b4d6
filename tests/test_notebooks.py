"""The notebooks run top to bottom in a real Jupyter kernel and are stored without outputs."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import SHARED_DATA_DIR

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    os.environ["RTT_SHARED_DATA"] = str(SHARED_DATA_DIR)
    client = NotebookClient(notebook, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    client.execute()
    return notebook


@pytest.mark.parametrize("name", ["quickstart.ipynb", "cdnow_case_study.ipynb"])
def test_stored_without_outputs(name):
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


def test_quickstart_runs(tmp_path):
    notebook = execute("quickstart.ipynb", tmp_path)
    text = "".join(str(output.get("text", "")) for cell in notebook.cells for output in cell.get("outputs", []))
    assert "rows read" in text
    assert "Tiers: overdue" in text
    assert "Value at stake of the list" in text


def test_cdnow_case_study_runs(tmp_path, shared_data_dir):
    notebook = execute("cdnow_case_study.ipynb", tmp_path)
    text = "".join(str(output.get("text", "")) for cell in notebook.cells for output in cell.get("outputs", []))
    assert "customers 23,570; repeat buyers 9,451; repeat occasions 24,337" in text
    assert "holdout occasions 19,684; buyers 7,058; within 30 days 1,806" in text
