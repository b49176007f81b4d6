"""Run the ``rtt`` command line as ``python -m rtt_models.cli``."""

from rtt_models.cli import main

main()
