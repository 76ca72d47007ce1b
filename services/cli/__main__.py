"""`python -m services.cli …` is `regbridge …`."""

from services.cli.app import main

main()
