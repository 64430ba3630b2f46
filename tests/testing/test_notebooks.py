"""The notebooks run top to bottom against a root synced from the real samples.

They are executed by nbclient in a fresh kernel (a separate process, so TensorFlow in the
quickstart never shares a process with the torchvision of other tests), with the root
passed through ``COVID19_IMAGES_ROOT`` exactly as a user would.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import build_synced_root

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytestmark = [pytest.mark.upstream, pytest.mark.framework, pytest.mark.xdist_group("notebooks")]

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SOURCES = (
    "ieee8023-covid-chestxray",
    "zhanglab-pediatric-xray",
    "figure1-xray",
    "covid19-pos-case",
)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, mirrors: Path) -> Path:
    return build_synced_root(tmp_path_factory.mktemp("notebooks"), mirrors, SOURCES)


def _execute(name: str, root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> nbformat.NotebookNode:
    monkeypatch.setenv("COVID19_IMAGES_ROOT", str(root))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = nbclient.NotebookClient(
        book, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=dict(os.environ))
    return book


def _outputs(book, kind: str) -> list:
    return [
        o
        for cell in book.cells
        if cell.cell_type == "code"
        for o in cell.get("outputs", [])
        if kind in o.get("data", {})
    ]


def _text(book) -> str:
    parts = []
    for cell in book.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            parts.append(output.get("text", ""))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def test_quickstart_runs(root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    book = _execute("quickstart.ipynb", root, monkeypatch, tmp_path)
    text = _text(book)
    assert "research use only" in text
    assert "torch.Size([3, 224, 224])" in text
    assert "float32" in text and "int32" in text  # the TF element spec
    assert len(_outputs(book, "image/png")) >= 2, "the sample grid and fastai's show_batch"


def test_ct_notebook_runs(root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    book = _execute("ct.ipynb", root, monkeypatch, tmp_path)
    text = _text(book)
    assert "covid19-pos-case" in text and "slices" in text
    assert len(_outputs(book, "image/png")) >= 3, "series, non-axial series, volume slices"
