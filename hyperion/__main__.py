"""``python -m hyperion`` is the ``hyperion`` command."""

from hyperion.cli.main import main

main()
