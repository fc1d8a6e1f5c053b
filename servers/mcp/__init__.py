"""The MCP tier: tools (`server`), resources and their subscriptions (`resources`,
`subscriptions`), argument completion (`completions`) and prompts (`prompts`), every one
read through `Registry.invoke` as the caller (`calls`)."""

from servers.mcp.server import INSTRUCTIONS, SERVER_NAME, RegistryTool, UnknownTools, build_mcp

__all__ = ["INSTRUCTIONS", "SERVER_NAME", "RegistryTool", "UnknownTools", "build_mcp"]
