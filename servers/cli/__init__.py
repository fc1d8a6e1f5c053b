"""`prvng`, the command line: generated commands per tool, `call`, platform and daemon commands.

`main` is the entry point. Start-up stays cheap: the listing comes from a cache and
pydantic, the tools and the servers are imported only when a command needs them.
"""

from servers.cli.main import main

__all__ = ["main"]
