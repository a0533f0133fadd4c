"""``collabkit serve``: a saved model over HTTP (the ``serve`` extra)."""

from __future__ import annotations

import click

from collabkit.errors import ConfigError


@click.command()
@click.argument("model_dir", metavar="MODEL")
@click.option("--db", default=None, metavar="PATH",
              help="SQLite feedback database (default: MODEL.feedback.sqlite3 beside MODEL).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option("--workers", default=1, show_default=True, type=int,
              help="Processes; SIGHUP reloads the model without failing requests at 1.")
@click.option("--cache-size", default=4096, show_default=True, type=int,
              help="Recommendation lists kept in memory (never stale); 0 turns it off.")
@click.option("--min-personal", default=5, show_default=True, type=int,
              help="Ratings a new visitor needs for personal (fold-in) recommendations.")
@click.option("--policy", default="top", show_default=True,
              type=click.Choice(["top", "mmr", "debias", "explore"]),
              help="Re-ranking of recommendation lists when a request names none "
                   "(docs/feedback-loop.md compares them).")
@click.option("--retrain-every", default=0, show_default=True, type=int, metavar="N",
              help="Retrain in a separate process after every N new feedback rows; serve the "
                   "new model when it predicts the newest feedback no worse (0: never).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
def serve(model_dir: str, db: str | None, host: str, port: int, workers: int,
          cache_size: int, min_personal: int, policy: str, retrain_every: int,
          log_level: str) -> None:
    """Serve MODEL over HTTP (JSON under /v1, docs at /docs), storing feedback in SQLite.

    The app key is read from COLLABKIT_API_KEY (never a flag: flags show in `ps`).
    """
    try:
        from collabkit.serve.server import run
    except ImportError as e:
        raise ConfigError(f"collabkit serve needs the serve extra ({e.name} is missing); "
                          "install it with: pip install 'collabkit[serve]'") from None
    run(model_dir, db=db, host=host, port=port, workers=workers, cache_size=cache_size,
        min_personal=min_personal, policy=policy, retrain_every=retrain_every,
        log_level=log_level)
