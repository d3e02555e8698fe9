"""``python -m vigil.agent.cli`` runs the ``vigil`` command."""

from vigil.agent.cli import main

main()
