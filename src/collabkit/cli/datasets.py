"""``collabkit datasets list|download|path``: the MovieLens datasets collabkit knows."""

from __future__ import annotations

import click

from collabkit.cli import output as out
from collabkit.cli.options import common


@click.group()
def datasets() -> None:
    """List, download or locate MovieLens datasets."""


@datasets.command("list")
@common
def datasets_list(as_json: bool, quiet: bool) -> None:
    """Known datasets, where each is read from, and whether its license allows passing it on."""
    from collabkit.data.movielens import list_datasets

    rows = [{"name": d.name, "available": str(d.path) if d.path else None,
             "redistributable": d.redistributable, "license": d.license, "url": d.url}
            for d in list_datasets()]
    if as_json:
        out.emit_json({"datasets": rows})
    else:  # long paths and URLs fold onto more lines: nothing is cut at the console's width
        out.stdout.print(out.folded_table(
            [{"name": r["name"],
              "available": r["available"] or "(not here: downloads on first use)",
              "redistributable": "yes" if r["redistributable"] else "no", "url": r["url"]}
             for r in rows], "MovieLens datasets"))


@datasets.command("download")
@click.argument("name")
@common
def datasets_download(name: str, as_json: bool, quiet: bool) -> None:
    """Download NAME into the cache (checked against its SHA-256)."""
    from collabkit.data.movielens import download

    path = download(name, progress=not (as_json or quiet))
    out.emit_json({"name": name, "path": str(path)}) if as_json else out.stdout.print(str(path))


@datasets.command("path")
@click.argument("name")
@common
def datasets_path(name: str, as_json: bool, quiet: bool) -> None:
    """Print the folder NAME is read from; exit 1 when it is not on this machine.

    When it is not, the folder it would be downloaded into is printed instead (so
    `collabkit datasets path NAME` always names a folder), with a note on stderr.
    """
    from collabkit.data.movielens import cache_path, dataset_path, incomplete_copy

    path = dataset_path(name)
    found = path is not None
    shown = str(path if found else cache_path(name))
    if as_json:
        out.emit_json({"name": name, "path": shown, "available": found})
    else:
        out.stdout.print(shown, soft_wrap=True)
    if not found:
        if not as_json:
            out.stderr.print(incomplete_copy(name) or f"{name} is not on this machine; "
                             f"`collabkit datasets download {name}` puts it in the folder above",
                             soft_wrap=True)
        raise click.exceptions.Exit(1)
