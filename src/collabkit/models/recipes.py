"""Named training recipes: a set of constructor arguments per model kind (issue 12).

``recipe="chapter"`` (``collabkit.fit(data, "dot", recipe="chapter")``, CLI ``--recipe
chapter``) gives the fast.ai chapter's settings: AdamW with weight decay 0.1, batches of 64,
one-cycle at 5e-3 for 5 epochs, 20 % of the rows held out at random for validation and
``y_range=(0, 5.5)``; for ``"dot"`` without the closed-form passes the chapter does not have
(``refit_users=False``), for ``"nn"`` fastai's ``use_nn=True`` network (layers 100 and 50,
BatchNorm, no dropout).
"""

from __future__ import annotations

from typing import Any

from collabkit.errors import ConfigError

__all__ = ["RECIPES", "recipe_params"]

_CHAPTER: dict[str, Any] = {"epochs": 5, "lr": 5e-3, "wd": 0.1, "batch_size": 64,
                            "valid_frac": 0.2, "y_range": (0.0, 5.5)}

#: recipe -> kind -> constructor arguments
RECIPES: dict[str, dict[str, dict[str, Any]]] = {
    "chapter": {
        "dot": {**_CHAPTER, "n_factors": 50, "optimizer": "adamw", "auto_batch": False,
                "refit_users": False},
        "nn": {**_CHAPTER, "layers": (100, 50), "dropout": 0.0, "emb_dropout": 0.0,
               "use_bn": True, "optimizer": "adamw"},
        "module": {**_CHAPTER, "optimizer": "adamw"},
    },
}


def recipe_params(recipe: str, kind: str) -> dict[str, Any]:
    """The constructor arguments of ``recipe`` for model ``kind``.

    Raises
    ------
    ConfigError
        Unknown recipe, or one that has no settings for ``kind``.
    """
    kinds = RECIPES.get(recipe)
    if kinds is None:
        raise ConfigError(f"unknown recipe {recipe!r}; known recipes: {', '.join(RECIPES)}")
    if kind not in kinds:
        raise ConfigError(f"recipe {recipe!r} has settings for the model kinds "
                          f"{', '.join(kinds)}, not {kind!r}")
    return dict(kinds[kind])
