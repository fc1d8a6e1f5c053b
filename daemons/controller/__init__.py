"""ops-controller: verifies signed ops from JetStream and dispatches each exactly once.

Public surface: `Controller`, `ControllerConfig`, `TokenVerifier`, `Dispatcher`,
`OrchestratorDispatcher`, the `AckResult` values, the ledger's `OpState` and
`open_controller` (one built from settings).
"""

from daemons.controller.acks import Ack, AckCounts, AckResult, Nak, Term
from daemons.controller.dispatch import Dispatcher, OrchestratorDispatcher, RunState
from daemons.controller.ledger import Ledger, OpState
from daemons.controller.runtime import open_controller
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
    "open_controller",
]
