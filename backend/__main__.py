"""`python -m backend` is the `dossier` command."""

from backend.cli import main

main()
