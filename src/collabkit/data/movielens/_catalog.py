"""The MovieLens catalogue: each data set's zip, its SHA-256 and size, and its file layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from collabkit.errors import ConfigError

_BASE_URL = "https://files.grouplens.org/datasets/movielens"
_YEAR_RE = r".*\((\d{4})(?:\s*[-–]\s*\d{0,4})?\)"  # the last "(1995)" or "(2006-2007)"
_NO_GENRES = frozenset({"(no genres listed)", "unknown"})
_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
_FREE_LICENSE = "may be redistributed, under the same license conditions (see its README)"
_NO_REDISTRIBUTION = "may NOT be redistributed without permission from GroupLens"
# ml-1m users.dat codes its occupations (README of ml-1m); ml-100k spells them out.
_ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip


@dataclass(frozen=True)
class _Spec:
    name: str
    folder: str  # top folder inside the zip
    sha256: str
    size_bytes: int  # of the zip
    n_ratings: int
    layout: Literal["100k", "dat", "csv"]
    rating_range: tuple[float, float]
    redistributable: bool

    @property
    def url(self) -> str:
        return f"{_BASE_URL}/{self.name}.zip"

    @property
    def ratings_file(self) -> str:
        return {"100k": "u.data", "dat": "ratings.dat", "csv": "ratings.csv"}[self.layout]

    @property
    def required(self) -> tuple[str, ...]:
        """The files a folder must hold to count as this data set."""
        if self.layout == "100k":
            return ("u.data", "u.item", "u.genre", "u.user")
        return (self.ratings_file, "movies.dat" if self.layout == "dat" else "movies.csv")

    def is_in(self, folder: Path) -> bool:
        return all((folder / name).is_file() for name in self.required)


# SHA-256 of each official zip, with its size in bytes. Sources (all agree where they overlap):
# - ml-latest-small, ml-100k, ml-1m, ml-20m, ml-25m: tensorflow/datasets,
#   tensorflow_datasets/url_checksums/movielens.txt (url, size, sha256); the same values are
#   hard-coded in ISG-Siegen/OmniRec src/omnirec/data_loaders/movielens_{100k,small,large}.py.
#   ml-100k's is also recorded in shared/datasets/ml-100k/PROVENANCE.md.
# - ml-10m: ISG-Siegen/OmniRec src/omnirec/data_loaders/movielens_small.py, and two more
#   public projects that pin the same sha256 and size (65,566,137 bytes) next to GroupLens'
#   published MD5 ce571fd55effeba0271552578f2648bd (ml-10m.zip.md5).
# - ml-32m: pinned, with size 238,950,008 bytes, by many independent public projects (data
#   manifests and loaders); its size matches the one recorded next to GroupLens' published
#   MD5 d472be332d4daa821edc399621853b57 (ml-32m.zip.md5).
# ml-latest-small is a "development" data set that GroupLens may regenerate; this hash is the
# 2018-09-26 release (100,836 ratings), the one bundled with collabkit.
_SPECS: dict[str, _Spec] = {
    s.name: s
    for s in (
        _Spec("ml-latest-small", "ml-latest-small",
              "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",
              978_202, 100_836, "csv", (0.5, 5.0), True),
        _Spec("ml-100k", "ml-100k",
              "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
              4_924_029, 100_000, "100k", (1.0, 5.0), False),
        _Spec("ml-1m", "ml-1m",
              "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
              5_917_549, 1_000_209, "dat", (1.0, 5.0), False),
        _Spec("ml-10m", "ml-10M100K",
              "813c411ccb6122564edfe752e7f80c4dcc5aa25fa94c93622f6877a7ba252862",
              65_566_137, 10_000_054, "dat", (0.5, 5.0), False),
        _Spec("ml-20m", "ml-20m",
              "96f243c338a8665f6bcc89c53edf6ee39162a846940de6b7c8c48aeada765ff3",
              198_702_078, 20_000_263, "csv", (0.5, 5.0), True),
        _Spec("ml-25m", "ml-25m",
              "8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",
              261_978_986, 25_000_095, "csv", (0.5, 5.0), True),
        _Spec("ml-32m", "ml-32m",
              "e4a68655d7386b8f95f2f2424b2ff975dfdd15ffd59e0d864a14dca43e99d6ee",
              238_950_008, 32_000_204, "csv", (0.5, 5.0), True),
    )
}  # fmt: skip


def _spec(name: str) -> _Spec:
    try:
        return _SPECS[name]
    except KeyError:
        raise ConfigError(
            f"unknown MovieLens data set {name!r}; known names are {sorted(_SPECS)}."
        ) from None

