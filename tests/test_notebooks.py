"""Every notebook's code cells still run against the package (they hold no logic of their own)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.stem for n in NOTEBOOKS])
def test_notebook_runs(notebook: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The notebooks read ../../shared/data from their own folder, as Jupyter runs them; mirror that layout.
    (tmp_path / "shared").symlink_to(shared_data.parent, target_is_directory=True)
    workdir = tmp_path / "repo" / "notebooks"
    workdir.mkdir(parents=True)
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["cell_type"] == "code":
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            exec(compile(source, f"{notebook.name}", "exec"), namespace)  # noqa: S102 - our own notebook; a failing cell fails the test
