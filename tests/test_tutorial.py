"""docs/tutorial.md runs (issue 12): its ```python blocks, in order, in one namespace, on
ml-100k from $COLLABKIT_DATA."""

import os
import re
import sys
import types
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parents[1] / "docs" / "tutorial.md"
DATA = os.environ.get("COLLABKIT_DATA")


def blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_blocks_are_found():
    found = blocks(TUTORIAL.read_text())
    assert len(found) >= 10 and "collabkit.fit(data, model=" in "".join(found)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::collabkit.errors.DataWarning")
@pytest.mark.skipif(not DATA or not (Path(DATA) / "ml-100k").is_dir(),
                    reason="ml-100k not under $COLLABKIT_DATA")
def test_tutorial_runs(tmp_path, monkeypatch):  # issue 12
    monkeypatch.chdir(tmp_path)  # figures and the saved model go to the temporary folder
    # the tutorial's classes live in an importable module, as a user's script would
    mod = types.ModuleType("collabkit_tutorial")
    monkeypatch.setitem(sys.modules, "collabkit_tutorial", mod)
    for n, code in enumerate(blocks(TUTORIAL.read_text()), start=1):
        try:
            exec(compile(code, f"docs/tutorial.md block {n}", "exec"), mod.__dict__)
        except Exception as e:
            raise AssertionError(f"docs/tutorial.md block {n} failed: {e!r}") from e
    for fig in ("weight_decay.png", "pca.png", "shallow.png", "deep.png"):
        assert (tmp_path / "docs" / "tutorial" / fig).stat().st_size > 1000
