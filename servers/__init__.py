"""The tiers: MCP, HTTP and the CLI (plus the platform supervisor). No operation logic here."""
