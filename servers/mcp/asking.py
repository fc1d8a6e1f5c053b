"""Asking the user in place (MCP elicitation): when a call may ask, shared by every tool
that does (`approvals`: a decision on an op; `answers`: a tool's missing answers).

Only a client that declared the elicitation capability, on a handshake-era connection
(the one with server-to-client requests), is asked, and only when the call's `_meta` does
not say its client confirmed it already (`prvng/confirmed: true`). Whatever the user
answers becomes an ordinary call through the pipeline, as the caller.
"""

from __future__ import annotations

from fastmcp.server.dependencies import get_context
from mcp_types import ClientCapabilities, ElicitationCapability
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from servers.mcp.calls import request_meta

CONFIRMED_META = "prvng/confirmed"
"""A call whose `_meta` sets this to true was confirmed by its client already."""
_ELICITATION = ClientCapabilities(elicitation=ElicitationCapability())


def may_ask() -> bool:
    """The client can be asked now: it declared elicitation, on a connection that has
    server-to-client requests, and did not confirm the call itself."""
    if request_meta().get(CONFIRMED_META) is True:
        return False
    try:
        session = get_context().session
    except RuntimeError:
        return False
    return (
        session.protocol_version not in MODERN_PROTOCOL_VERSIONS
        and session.check_client_capability(_ELICITATION)
    )
