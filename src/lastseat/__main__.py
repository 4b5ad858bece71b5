"""`python -m lastseat` runs the CLI."""

from lastseat.cli.main import main

main()
