"""`python -m jobkeeper …` is the `jobkeeper` command."""

from jobkeeper.cli import main

main()
