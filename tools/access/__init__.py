"""Identity and access: users, roles, API keys, sessions, policies, `whoami`."""
