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
from lastseat.lab.runner import LabError


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
    except LabError as exc:
        fail(str(exc), 1)
    except OSError as exc:
        fail(f"{exc.strerror or exc}: {exc.filename or ''}", EXIT_USAGE)
    sys.exit(code if isinstance(code, int) else 0)
