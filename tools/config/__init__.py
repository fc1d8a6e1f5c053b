"""Workspace configuration: Nickel files evaluated to JSON."""
