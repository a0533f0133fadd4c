"""MovieLens: the real ml-100k and bundled ml-latest-small, tiny fixtures of the other layouts,
the resolution order, and verified downloads from local ``file://`` zips (never the network)."""

from __future__ import annotations

import dataclasses
import hashlib
import socket
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from collabkit.data import (
    MovieLens,
    canonical_split,
    dataset_path,
    download,
    list_datasets,
    load_movielens,
)
from collabkit.data import movielens as ml_module
from collabkit.errors import ConfigError, DatasetNotAvailableError

SRC = Path(ml_module.__file__).resolve().parents[2]  # src/collabkit (data/movielens/__init__.py)
BUNDLED = SRC / "datasets" / "ml-latest-small"


@pytest.fixture(scope="module")
def ml100k(ml100k_dir: Path) -> MovieLens:
    """The shared ml-100k (the tests using it skip with one reason when it is absent)."""
    return load_movielens("ml-100k", data_dir=ml100k_dir.parent, download=False)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty cache and no $COLLABKIT_DATA, so only what a test puts there is found."""
    monkeypatch.setenv("COLLABKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("COLLABKIT_DATA", raising=False)
    return tmp_path / "cache" / "movielens"


# ---------------------------------------------------------------------------------------------
# tiny data sets in each layout


GENRES_100K = ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
               "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
               "Romance", "Sci-Fi", "Thriller", "War", "Western"]  # fmt: skip


def make_100k(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "u.data").write_text("1\t1\t5\t881250949\n2\t1\t3\t881250950\n1\t2\t4\t881250951\n")
    (folder / "u.genre").write_text("".join(f"{g}|{i}\n" for i, g in enumerate(GENRES_100K)) + "\n")
    flags1 = ["0"] * 19
    flags1[3] = flags1[4] = "1"
    flags2 = ["1"] + ["0"] * 18
    (folder / "u.item").write_bytes(
        ("1|Amélie (2001)|01-Jan-2001||http://x|" + "|".join(flags1) + "\n"
         "2|Untitled|01-Jan-1997||http://y|" + "|".join(flags2) + "\n").encode("latin-1")
    )  # fmt: skip
    (folder / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|T8H1N\n")
    return folder


def make_dat(folder: Path, *, users: bool, encoding: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.dat").write_text("1::10::5::978300760\n2::10::3.5::978300761\n")
    (folder / "movies.dat").write_bytes(
        "10::Café: The Movie (1999)::Comedy|Drama\n11::Nothing (2000)::(no genres listed)\n"
        .encode(encoding)
    )  # fmt: skip
    if users:
        (folder / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n")
    return folder


def make_csv(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,7,0.5,10\n3,7,5.0,11\n")
    (folder / "movies.csv").write_text(
        'movieId,title,genres\n7,"Good, the Bad (1966)",Western\n8,Series (2006-2007),'
        "(no genres listed)\n"
    )
    return folder


def zip_folder(folder: Path, zip_path: Path, top: str) -> str:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(folder.iterdir()):
            archive.write(file, f"{top}/{file.name}")
    return hashlib.sha256(zip_path.read_bytes()).hexdigest()


@pytest.fixture
def serve_zip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str, Callable[[Path], Path], str | None], None]:
    """Make data set `name` downloadable from a local file:// zip (sha256 None: the real one)."""

    def serve(name: str, make: Callable[[Path], Path], sha256: str | None = None) -> None:
        spec = ml_module._SPECS[name]
        folder = make(tmp_path / "zip-src" / name)
        zip_path = tmp_path / "server" / f"{name}.zip"
        zip_path.parent.mkdir(exist_ok=True)
        digest = zip_folder(folder, zip_path, spec.folder)
        fake = dataclasses.replace(spec, sha256=sha256 or digest)
        monkeypatch.setitem(ml_module._SPECS, name, fake)
        monkeypatch.setattr(
            type(fake), "url", property(lambda s: (zip_path.parent / f"{s.name}.zip").as_uri())
        )

    return serve


# ---------------------------------------------------------------------------------------------
# the real data


def test_ml100k_ratings(ml100k: MovieLens) -> None:
    ratings = ml100k.ratings
    assert ratings.shape == (100_000, 4)
    assert list(ratings.columns) == ["user", "item", "rating", "timestamp"]
    assert ratings["user"].nunique() == 943 and ratings["item"].nunique() == 1682
    assert ratings.dtypes.astype(str).tolist() == ["int64", "int64", "float64", "int64"]
    assert ratings.iloc[0].tolist() == [196, 242, 3.0, 881250949]
    assert ml100k.rating_range == (1.0, 5.0)
    assert "100000 ratings" in repr(ml100k)


def test_ml100k_items(ml100k: MovieLens) -> None:
    items = ml100k.items
    assert len(items) == 1682 and items.index.name == "item"
    assert items.loc[1, "title"] == "Toy Story (1995)"
    assert set(items.loc[1, "genres"].split("|")) >= {"Animation", "Children's", "Comedy"}
    assert items.loc[1, "year"] == 1995 and str(items["year"].dtype) == "Int64"
    assert items.loc[543, "title"] == "Misérables, Les (1995)"  # latin-1 decoded
    assert items.loc[267, "title"] == "unknown" and pd.isna(items.loc[267, "year"])
    assert items.loc[267, "genres"] == ""


def test_ml100k_users(ml100k: MovieLens) -> None:
    users = ml100k.users
    assert users is not None and len(users) == 943 and users.index.name == "user"
    assert list(users.columns) == ["age", "gender", "occupation", "zip"]
    assert users.loc[1].tolist() == [24, "M", "technician", "85711"]


@pytest.mark.parametrize(
    ("split", "n_train", "n_test"), [("u1", 80_000, 20_000), ("ub", 90_570, 9_430)]
)
def test_ml100k_canonical_split(ml100k: MovieLens, split: str, n_train: int, n_test: int) -> None:
    train, test = canonical_split(ml100k, split)
    assert (len(train), len(test)) == (n_train, n_test)
    assert list(train.columns) == list(ml100k.ratings.columns)
    pairs = pd.concat([train, test])[["user", "item"]]
    assert not pairs.duplicated().any() and len(pairs) == 100_000


def test_canonical_split_errors(ml100k: MovieLens) -> None:
    with pytest.raises(ConfigError, match=r"\['u1', 'u2', 'u3', 'u4', 'u5', 'ua', 'ub'\]"):
        canonical_split(ml100k, "u6")
    latest = load_movielens("ml-latest-small")
    with pytest.raises(ConfigError, match="only for ml-100k"):
        canonical_split(latest, "u1")


def test_bundled_latest_small(cache: Path) -> None:
    ml = load_movielens("ml-latest-small", download=False)
    assert ml.path.resolve() == BUNDLED.resolve()
    assert ml.ratings.shape == (100_836, 4) and ml.ratings["user"].nunique() == 610
    assert len(ml.items) == 9742 and ml.users is None
    assert ml.items.loc[1, "title"] == "Toy Story (1995)" and ml.rating_range == (0.5, 5.0)
    assert ml.items.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert not list(cache.parent.glob("**/*"))  # nothing written to the cache


def test_bundle_is_byte_identical_and_carries_its_readme(data_dir: Path) -> None:
    shared = data_dir / "ml-latest-small"
    names = ["README.txt", "links.csv", "movies.csv", "ratings.csv", "tags.csv"]
    for name in names:
        assert (BUNDLED / name).is_file()
        if shared.is_dir():
            assert (BUNDLED / name).read_bytes() == (shared / name).read_bytes()
    expected = "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"
    assert hashlib.sha256((BUNDLED / "ratings.csv").read_bytes()).hexdigest() == expected


def test_no_ml100k_file_is_inside_the_package() -> None:
    forbidden = {"u.data", "u.item", "u.user", "u1.base", "u1.test", "ua.base"}
    assert not [p for p in SRC.rglob("*") if p.name in forbidden]


# ---------------------------------------------------------------------------------------------
# other layouts, from tiny fixtures


def test_ml1m_layout(tmp_path: Path) -> None:
    make_dat(tmp_path / "ml-1m", users=True, encoding="latin-1")
    ml = load_movielens("ml-1m", data_dir=tmp_path, download=False)
    assert ml.ratings.to_dict("list") == {
        "user": [1, 2], "item": [10, 10], "rating": [5.0, 3.5], "timestamp": [978300760, 978300761],
    }  # fmt: skip
    assert ml.items.loc[10].tolist() == ["Café: The Movie (1999)", "Comedy|Drama", 1999]
    assert ml.items.loc[11, "genres"] == ""
    assert ml.users is not None
    assert ml.users.loc[1].tolist() == [1, "F", "K-12 student", "48067"]
    assert ml.users.loc[2, "occupation"] == "self-employed"


def test_ml10m_layout_in_its_zip_folder_name(tmp_path: Path) -> None:
    make_dat(tmp_path / "ml-10M100K", users=False, encoding="utf-8")
    ml = load_movielens("ml-10m", data_dir=tmp_path, download=False)
    assert ml.name == "ml-10m" and ml.users is None and ml.rating_range == (0.5, 5.0)
    assert ml.items.loc[10, "title"] == "Café: The Movie (1999)"


@pytest.mark.parametrize("name", ["ml-20m", "ml-25m", "ml-32m"])
def test_csv_layouts(tmp_path: Path, name: str) -> None:
    make_csv(tmp_path / name)
    ml = load_movielens(name, data_dir=tmp_path, download=False)
    assert ml.ratings["rating"].tolist() == [0.5, 5.0]
    assert ml.items.loc[7].tolist() == ["Good, the Bad (1966)", "Western", 1966]
    assert ml.items.loc[8].tolist() == ["Series (2006-2007)", "", 2006]


def test_ml100k_fixture_genres_and_year(tmp_path: Path) -> None:
    make_100k(tmp_path / "ml-100k")
    ml = load_movielens("ml-100k", data_dir=tmp_path, download=False)
    assert ml.items.loc[1].tolist() == ["Amélie (2001)", "Animation|Children's", 2001]
    assert ml.items.loc[2].tolist() == ["Untitled", "", 1997]  # year from the release date
    assert ml.users is not None and ml.users.loc[2, "zip"] == "T8H1N"


# ---------------------------------------------------------------------------------------------
# resolution order


def test_resolution_order(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    for root in (explicit, env, cache):
        make_100k(root / "ml-100k")
    monkeypatch.setenv("COLLABKIT_DATA", str(env))
    assert dataset_path("ml-100k", data_dir=explicit) == explicit / "ml-100k"
    assert dataset_path("ml-100k") == env / "ml-100k"
    assert dataset_path("ml-100k", data_dir=tmp_path / "empty") == env / "ml-100k"
    monkeypatch.delenv("COLLABKIT_DATA")
    assert dataset_path("ml-100k") == cache / "ml-100k"
    assert load_movielens("ml-100k", download=False).path == cache / "ml-100k"


def test_bundled_comes_after_env_and_before_cache(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_csv(cache / "ml-latest-small")
    assert dataset_path("ml-latest-small") == BUNDLED
    make_csv(tmp_path / "env" / "ml-latest-small")
    monkeypatch.setenv("COLLABKIT_DATA", str(tmp_path / "env"))
    assert dataset_path("ml-latest-small") == tmp_path / "env" / "ml-latest-small"


def test_not_found_without_download(cache: Path) -> None:
    with pytest.raises(DatasetNotAvailableError) as info:
        load_movielens("ml-1m", download=False)
    message = str(info.value)
    assert "ml-1m" in message and str(cache / "ml-1m") in message and "COLLABKIT_DATA" in message


def test_unknown_name_lists_known_names() -> None:
    with pytest.raises(ConfigError, match=r"'ml-100k'.*'ml-latest-small'"):
        load_movielens("ml-5m")


def test_list_datasets(cache: Path) -> None:
    infos = {info.name: info for info in list_datasets()}
    assert list(infos) == ["ml-latest-small", "ml-100k", "ml-1m", "ml-10m", "ml-20m", "ml-25m",
                           "ml-32m"]  # fmt: skip
    assert infos["ml-latest-small"].path == BUNDLED and infos["ml-100k"].path is None
    assert infos["ml-10m"].url.endswith("/movielens/ml-10m.zip")
    assert infos["ml-100k"].sha256.startswith("50d2a982") and not infos["ml-100k"].redistributable
    assert infos["ml-25m"].redistributable and infos["ml-32m"].n_ratings == 32_000_204
    assert all(len(info.sha256) == 64 for info in infos.values())


# ---------------------------------------------------------------------------------------------
# downloading (from local file:// zips)


def test_download_verifies_and_extracts(cache: Path, serve_zip: Callable[..., None]) -> None:
    serve_zip("ml-10m", lambda f: make_dat(f, users=False, encoding="utf-8"))
    ml = load_movielens("ml-10m", progress=True)
    assert ml.path == cache / "ml-10m" and len(ml.ratings) == 2
    assert sorted(p.name for p in cache.iterdir()) == ["ml-10m"]  # no temporary leftovers
    assert download("ml-10m") == cache / "ml-10m"  # already there: no second download


def test_download_hash_mismatch_leaves_nothing(cache: Path, serve_zip: Callable[..., None]) -> None:
    serve_zip("ml-100k", make_100k, "0" * 64)
    with pytest.raises(DatasetNotAvailableError, match="SHA-256 .* not the expected 0000") as info:
        load_movielens("ml-100k", progress=False)
    assert "deleted" in str(info.value)
    assert list(cache.iterdir()) == []


def test_download_zip_without_the_data(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "junk"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")
    zip_path = tmp_path / "ml-1m.zip"
    digest = zip_folder(folder, zip_path, "ml-1m")
    spec = dataclasses.replace(ml_module._SPECS["ml-1m"], sha256=digest)
    monkeypatch.setitem(ml_module._SPECS, "ml-1m", spec)
    monkeypatch.setattr(type(spec), "url", property(lambda s: zip_path.as_uri()))
    with pytest.raises(
        DatasetNotAvailableError, match="lacks some of ml-1m/{ratings.dat,movies.dat}"
    ):
        download("ml-1m", progress=False)
    assert list(cache.iterdir()) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("kind", ["missing file", "refused connection"])
def test_unreachable_url(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    url = (
        (tmp_path / "nowhere" / "ml-100k.zip").as_uri()
        if kind == "missing file"
        else f"http://127.0.0.1:{_closed_port()}/ml-100k.zip"
    )
    monkeypatch.setattr(type(ml_module._SPECS["ml-100k"]), "url", property(lambda s: url))
    with pytest.raises(DatasetNotAvailableError) as info:
        load_movielens("ml-100k", progress=False)
    message = str(info.value)
    assert url in message
    assert str(cache / "ml-100k" / "u.data") in message and "COLLABKIT_DATA" in message
    assert list(cache.iterdir()) == []


def test_incomplete_folder_is_skipped(tmp_path: Path, cache: Path) -> None:
    (tmp_path / "ml-20m").mkdir()
    (tmp_path / "ml-20m" / "ratings.csv").write_text("userId,movieId,rating,timestamp\n")
    assert dataset_path("ml-20m", data_dir=tmp_path) is None
