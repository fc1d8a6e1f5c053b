"""The control-center dashboard at `/ui/`: static files the HTTP daemon serves.

The app is plain HTML, CSS and JavaScript modules (no build step); it calls only the
public REST API (`POST /v1/tools/{name}`) and `/events`, with the API key as a bearer
header. Its files are open paths (a browser fetches them before it has a key), each
answered with a strict Content-Security-Policy. See docs/dashboard.md."""

from servers.http.ui.assets import UI_PATHS, ui_route

__all__ = ["UI_PATHS", "ui_route"]
