"""Workflows and their tasks: submitted to, and read back from, the orchestrator."""
