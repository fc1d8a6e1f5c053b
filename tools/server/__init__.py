"""The workspace inventory of servers (and, with the orchestrator, their lifecycle)."""
