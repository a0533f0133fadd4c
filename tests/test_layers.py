"""issue 9: the layers that must not import upward (the full contract is .importlinter,
checked by `lint-imports`; these are the edges this package's users rely on)."""

from __future__ import annotations

import ast
from pathlib import Path

import collabkit

SRC = Path(collabkit.__file__).parent


def _imports(path: Path) -> set[str]:
    """Every module imported anywhere in ``path`` (function-level imports included)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_io_is_the_format_layer_only() -> None:
    """io.py imported models (load_model read the registry) and data (Vocabulary)."""
    bad = {m for m in _imports(SRC / "io.py")
           if m.startswith(("collabkit.models", "collabkit.data"))}
    assert not bad


def test_train_imports_no_model_and_no_plot() -> None:
    """train/sparse.py imported models.dot; lr_find imported models and plots."""
    for path in sorted((SRC / "train").glob("*.py")):
        bad = {m for m in _imports(path)
               if m.startswith(("collabkit.models", "collabkit.plots", "collabkit.recommend"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_models_base_reaches_up_only_through_the_three_facades() -> None:
    up = {m for m in _imports(SRC / "models" / "base.py")
          if m.startswith(("collabkit.recommend", "collabkit.interpret"))}
    assert up == {"collabkit.recommend.coldstart", "collabkit.recommend.foldin",
                  "collabkit.interpret"}
