"""Readers for the item and user files of each MovieLens layout (100k, ``.dat``, ``.csv``)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from collabkit.data.movielens._catalog import _ML1M_OCCUPATIONS, _NO_GENRES, _YEAR_RE
from collabkit.errors import DataError


def _finish_items(ids: pd.Series, titles: pd.Series, genres: pd.Series) -> pd.DataFrame:
    import pandas as pd

    genres = genres.where(~genres.isin(_NO_GENRES), "")
    years = titles.str.extract(_YEAR_RE, expand=False)
    items = pd.DataFrame(
        {
            "title": titles.astype("str").to_numpy(),
            "genres": genres.astype("str").to_numpy(),
            "year": pd.to_numeric(years).astype("Int64").array,
        },
        index=pd.Index(ids.astype("int64").to_numpy(), name="item"),
    )
    return items


def _items_100k(path: Path) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    genre_names = [
        line.split("|")[0]
        for line in (path / "u.genre").read_text(encoding="latin-1").splitlines()
        if line.strip()
    ]
    raw = pd.read_csv(path / "u.item", sep="|", header=None, encoding="latin-1", dtype="str",
                      keep_default_na=False)  # fmt: skip
    if raw.shape[1] != 5 + len(genre_names):
        raise DataError(
            f"{path / 'u.item'}: expected {5 + len(genre_names)} '|'-separated fields per line "
            f"(5 + one flag per genre in u.genre), found {raw.shape[1]}. Re-extract ml-100k.zip."
        )
    names = np.array(genre_names, dtype=object)
    flags = (raw.iloc[:, 5:].to_numpy() == "1") & ~np.isin(names, list(_NO_GENRES))
    genres = pd.Series(["|".join(names[row]) for row in flags])
    items = _finish_items(raw[0], raw[1], genres)
    released = pd.to_datetime(raw[2], format="%d-%b-%Y", errors="coerce").dt.year
    items["year"] = items["year"].fillna(pd.Series(released.to_numpy(), index=items.index))
    items["year"] = items["year"].astype("Int64")
    return items


def _users_100k(path: Path) -> pd.DataFrame:
    import pandas as pd

    users = pd.read_csv(
        path / "u.user", sep="|", header=None, names=["user", "age", "gender", "occupation", "zip"],
        dtype={"user": "int64", "age": "int64", "gender": "str", "occupation": "str", "zip": "str"},
        encoding="latin-1", keep_default_na=False,
    )  # fmt: skip
    return users.set_index("user")


def _read_dat_lines(file: Path) -> list[list[str]]:
    """Split a ``::``-separated file (UTF-8, or latin-1 as in ml-1m's movies.dat)."""
    data = file.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return [line.split("::") for line in text.splitlines() if line.strip()]


def _items_dat(file: Path) -> pd.DataFrame:
    import pandas as pd

    rows = _read_dat_lines(file)
    bad = next((n for n, row in enumerate(rows, 1) if len(row) < 3), None)
    if bad is not None:
        raise DataError(
            f"{file}, line {bad}: expected 'id::title::genres'. Re-extract the data set's zip."
        )
    ids = pd.Series([row[0] for row in rows])
    titles = pd.Series(["::".join(row[1:-1]) for row in rows])
    genres = pd.Series([row[-1] for row in rows])
    return _finish_items(pd.to_numeric(ids), titles, genres)


def _users_1m(file: Path) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    rows = _read_dat_lines(file)
    frame = pd.DataFrame(rows, columns=["user", "gender", "age", "occupation", "zip"])
    codes = frame["occupation"].astype("int64").to_numpy()
    names = np.array(_ML1M_OCCUPATIONS, dtype=object)
    users = pd.DataFrame(
        {
            "age": frame["age"].astype("int64").to_numpy(),
            "gender": frame["gender"].astype("str").to_numpy(),
            "occupation": pd.array(names[np.clip(codes, 0, len(names) - 1)], dtype="str"),
            "zip": frame["zip"].astype("str").to_numpy(),
        },
        index=pd.Index(frame["user"].astype("int64").to_numpy(), name="user"),
    )
    return users


def _items_csv(file: Path) -> pd.DataFrame:
    import pandas as pd

    raw = pd.read_csv(file, dtype={"movieId": "int64", "title": "str", "genres": "str"},
                      keep_default_na=False, encoding="utf-8")  # fmt: skip
    return _finish_items(raw["movieId"], raw["title"], raw["genres"])
