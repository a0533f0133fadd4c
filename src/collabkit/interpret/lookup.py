"""Finding an item by its title, forgivingly (issue 12): case, punctuation, a trailing
article (``"Silence of the Lambs, The (1991)"``) and the year do not matter."""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from collabkit.errors import UnknownIdError

__all__ = ["normalise_title", "find_item"]

_YEAR = re.compile(r"\((\d{4})\)")
_ARTICLES = ("the", "a", "an", "les", "la", "le", "il", "el", "die", "das", "der")


def normalise_title(title: str) -> tuple[str, str | None]:
    """``(words, year)``: lowercase words without punctuation or a leading/trailing article.

    >>> normalise_title("Silence of the Lambs, The (1991)")
    ('silence of the lambs', '1991')
    >>> normalise_title("the silence of the LAMBS")
    ('silence of the lambs', None)
    """
    years = _YEAR.findall(title)
    text = _YEAR.sub(" ", title).lower()
    words = re.sub(r"[^\w]+", " ", text).split()
    if words and words[-1] in _ARTICLES and "," in text:
        words = words[:-1]
    if words and words[0] in _ARTICLES and len(words) > 1:
        words = words[1:]
    return " ".join(words), (years[-1] if years else None)


def find_item(model: Any, query: Any) -> Any:
    """The raw id of the item ``query`` names: an id the model knows, else a title.

    A title matches when its words equal the query's (see :func:`normalise_title`), or, when
    none does, when it contains them; a year in the query must match. Among several matches
    the most-rated item wins when its title matches exactly, otherwise the error lists them.

    Raises
    ------
    UnknownIdError
        Neither an id nor a title; the message names the query and close titles.
    """
    from collabkit.recommend.onboarding import item_counts

    known = model.item_vocab_.index([query])
    if int(known[0]) >= 0:
        return model.item_vocab_.ids(known)[0]
    if not isinstance(query, str) or model.item_meta_ is None \
            or "title" not in model.item_meta_.columns:
        raise UnknownIdError(f"item {query!r} is not in the model and it has no titles to "
                             "search; give an item id from the training data")
    words, year = normalise_title(query)
    titles = model.item_meta_["title"].tolist()
    norm = [normalise_title(t) if isinstance(t, str) else ("", None) for t in titles]
    ok_year = np.array([year is None or y == year for _, y in norm])
    exact = np.flatnonzero(np.array([w == words for w, _ in norm]) & ok_year)
    counts = item_counts(model)
    if len(exact):
        best = exact[np.argmax(counts[exact])]
        return model.item_vocab_.ids([best])[0]
    part = np.flatnonzero(np.array([bool(words) and words in w for w, _ in norm]) & ok_year)
    if len(part) == 1:
        return model.item_vocab_.ids(part)[0]
    if len(part) > 1:
        top = part[np.argsort(-counts[part], kind="stable")][:5]
        ids = model.item_vocab_.ids(top).tolist()  # plain Python ids: 260, not np.int64(260)
        names = "; ".join(f"{titles[k]} (id {i!r})" for k, i in zip(top, ids, strict=True))
        raise UnknownIdError(f"{query!r} matches {len(part)} titles: {names}"
                             f"{' ...' if len(part) > 5 else ''}; give more of the title or "
                             "the item id")
    raise UnknownIdError(f"no item id or title matches {query!r}; give an item id from the "
                         "training data or a title as it appears in the data set")
