"""The inspection notebooks run top to bottom on a real (tiny) run."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# The run each family's notebook inspects (fixtures of conftest).
RUNS = {
    "lm.ipynb": lambda request: request.getfixturevalue("trained_run"),
    "tts.ipynb": lambda request: request.getfixturevalue("tts_run"),
    "caption.ipynb": lambda request: request.getfixturevalue("caption_run")[0],
}


def test_every_family_has_a_notebook():
    assert {p.name for p in NOTEBOOKS} == set(RUNS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(path, request, monkeypatch):
    monkeypatch.setenv("AUDIOLM_CKPT", str(RUNS[path.name](request) / "checkpoints" / "last.ckpt"))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert any("parameters" in o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    stderr = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stderr")
    assert "IProgress not found" not in stderr, "progress bars render as widgets in a notebook"
