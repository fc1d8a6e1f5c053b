"""Low-level helpers shared by daemons, tools and servers (settings, files, state)."""
