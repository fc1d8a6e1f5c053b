"""Authentication: API keys (and, with the RBAC issue, users and sessions)."""
