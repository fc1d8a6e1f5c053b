"""Serving the orchestrator over HTTP: the internal API (`api`), the standalone daemon
that recovers, serves and shuts down cleanly (`daemon`, `python -m daemons.orchestrator`),
the `OrchestratorClient` that speaks that API for split mode and the controller (`client`),
and the bearer token both ends share (`token`).
"""

from daemons.orchestrator.serving.api import create_app
from daemons.orchestrator.serving.client import OrchestratorClient
from daemons.orchestrator.serving.daemon import DEFAULT_PORT, run_daemon
from daemons.orchestrator.serving.token import orchestrator_token

__all__ = ["DEFAULT_PORT", "OrchestratorClient", "create_app", "orchestrator_token", "run_daemon"]
