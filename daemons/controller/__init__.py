"""ops-controller: verifies signed ops from JetStream and dispatches each exactly once.

Public surface: `Controller`, `ControllerConfig`, `TokenVerifier`, `Dispatcher`,
`OrchestratorDispatcher`, the `AckResult` values and the ledger's `OpState`.
"""

from daemons.controller.acks import Ack, AckCounts, AckResult, Nak, Term
from daemons.controller.dispatch import Dispatcher, OrchestratorDispatcher, RunState
from daemons.controller.ledger import Ledger, OpState
from daemons.controller.service import Controller, ControllerConfig
from daemons.controller.verify import TokenRefused, TokenVerifier

__all__ = [
    "Ack",
    "AckCounts",
    "AckResult",
    "Controller",
    "ControllerConfig",
    "Dispatcher",
    "Ledger",
    "Nak",
    "OpState",
    "OrchestratorDispatcher",
    "RunState",
    "Term",
    "TokenRefused",
    "TokenVerifier",
]
