"""The orchestrator: a durable workflow engine (DAGs, priorities, retries, rollback)."""
