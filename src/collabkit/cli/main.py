"""``collabkit``: train, evaluate, predict and recommend from the shell.

Every command takes ``--json`` and then prints one JSON object on stdout. Errors print one
line on stderr and exit non-zero, never a traceback (set ``COLLABKIT_DEBUG=1`` to see one).

This module builds the root group: each command lives in its own module (which imports
neither this module nor another command's) and is added below with one ``add_command`` line.
Nothing registers by import side effect. Command modules import torch, pandas and numpy
only inside their functions, so ``collabkit --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from collabkit._version import __version__
from collabkit.cli import output as out
from collabkit.cli.datasets import datasets
from collabkit.cli.evaluate import evaluate_cmd
from collabkit.cli.inspect import explain_cmd, inspect_cmd, onboard_cmd, plot_cmd, similar_cmd
from collabkit.cli.loop_report import loop_report_cmd
from collabkit.cli.lr_find import lr_find_cmd
from collabkit.cli.predict import predict
from collabkit.cli.recommend import recommend
from collabkit.cli.retrain import retrain
from collabkit.cli.serve import serve
from collabkit.cli.train import train
from collabkit.cli.tune import tune_cmd
from collabkit.errors import CollabkitError, DataWarning

__all__ = ["cli", "main"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(version=__version__, prog_name="collabkit")
def cli() -> None:
    """Collaborative filtering: train on ratings, evaluate honestly, recommend."""


cli.add_command(datasets)
cli.add_command(train)
cli.add_command(evaluate_cmd)
cli.add_command(predict)
cli.add_command(recommend)
cli.add_command(inspect_cmd)
cli.add_command(similar_cmd)
cli.add_command(explain_cmd)
cli.add_command(plot_cmd)
cli.add_command(onboard_cmd)
cli.add_command(lr_find_cmd)
cli.add_command(serve)
cli.add_command(retrain)
cli.add_command(loop_report_cmd)
cli.add_command(tune_cmd)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; map errors to one stderr line and an exit code.

    Warnings print as one ``warning: ...`` line each on stderr; collabkit's own
    (:class:`~collabkit.errors.DataWarning`) are also listed under ``"warnings"`` in ``--json``.
    """
    out.warnings_seen.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("always", DataWarning)  # every run reports its own warnings
        warnings.showwarning = out.show_warning
        return _run(argv)


def _run(argv: list[str] | None) -> int:
    try:
        args = list(sys.argv[1:] if argv is None else argv)
        code = cli.main(args=args, prog_name="collabkit", standalone_mode=False,
                        obj={"argv": args})
        if isinstance(code, int):  # click.exceptions.Exit(n) raised by a command
            return code
    except click.exceptions.Abort:
        out.stderr.print("aborted")
        return 130
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except CollabkitError as e:
        if os.environ.get("COLLABKIT_DEBUG"):
            raise
        _report(f"{out.cli_message(str(e))}")
        return e.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a bug: still one line, with how to get details
        if os.environ.get("COLLABKIT_DEBUG"):
            raise
        _report(f"{type(e).__name__}: {e} (set COLLABKIT_DEBUG=1 for a traceback and please "
                "report it)", "internal error")
        return 70
    return 0


def _report(message: str, what: str = "error") -> None:
    """Print ``what: message`` on stderr; a rank of a job (issue 15) also leaves it in
    torchelastic's error file, and a rank started by ``--nproc`` only there: the launcher
    prints it once for the whole job."""
    if "TORCHELASTIC_ERROR_FILE" in os.environ:
        from collabkit.distributed.launch import launched_child, write_error

        if write_error(f"{what}: {message}" if what != "error" else message) and launched_child():
            return
    print(f"{what}: {message}", file=sys.stderr)


def _entry() -> None:  # pragma: no cover - the console script
    sys.exit(main())
