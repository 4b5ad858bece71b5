"""Entry point: `lastseat race | check | bench | serve` and the admin commands."""

from __future__ import annotations

import sys

import click

from lastseat import __version__
from lastseat.cli.admin import availability, buy, event, sweep, wallet
from lastseat.cli.bench import bench
from lastseat.cli.errors import EXIT_USAGE, exit_code_for, fail
from lastseat.cli.payments import payments
from lastseat.cli.race import check_command, race
from lastseat.cli.serve import serve
from lastseat.domain.errors import LastseatError
from lastseat.lab.history import HistoryFormatError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lastseat")
def cli() -> None:
    """lastseat: sell the last seat exactly once, and prove it."""


for command in (
    race,
    check_command,
    bench,
    event,
    wallet,
    availability,
    buy,
    sweep,
    serve,
    payments,
):
    cli.add_command(command)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn every expected failure into one line and an exit code."""
    try:
        code = cli.main(args=argv, prog_name="lastseat", standalone_mode=False)
    except click.exceptions.Exit as done:
        sys.exit(done.exit_code)
    except click.Abort:
        fail("aborted", 130)
    except click.UsageError as exc:
        fail(exc.format_message(), EXIT_USAGE)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except (LastseatError, HistoryFormatError) as exc:
        fail(str(exc), exit_code_for(exc))
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}", EXIT_USAGE)
    except RuntimeError as exc:
        if not _is_lab_error(exc):
            raise
        fail(str(exc), 1)
    sys.exit(code if isinstance(code, int) else 0)


def _is_lab_error(exc: BaseException) -> bool:
    """True for the race lab's own failure (a worker process that died, not a buyer outcome).

    Only a command that ran the lab can raise one, and that command loaded the lab already;
    the start-up of every other command does not pay for importing it (issue 8).
    """
    runner = sys.modules.get("lastseat.lab.runner")
    return runner is not None and isinstance(exc, runner.LabError)
