"""The dashboard's files over HTTP (in process, no browser): open to a browser without a
key, each with the strict headers, and nothing else under `/ui` opened by them."""

from __future__ import annotations

import re
import tomllib
from collections.abc import AsyncIterator
from fnmatch import fnmatch

import httpx
import pytest

from daemons.common.settings import PROJECT_ROOT, Settings
from registry import Registry
from servers.http import create_app
from servers.http.ui.assets import STATIC, UI_PATHS


@pytest.fixture
async def anonymous(registry: Registry, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(registry, settings, mount_mcp=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


SHIPPED = sorted(path.name for path in STATIC.iterdir())


async def test_every_file_is_served_without_a_key_with_strict_headers(
    anonymous: httpx.AsyncClient,
) -> None:
    for name in [*SHIPPED, ""]:
        response = await anonymous.get(f"/ui/{name}")
        assert response.status_code == 200, name
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"
    assert (await anonymous.get("/ui/app.js")).headers["content-type"].startswith("text/javascript")
    moved = await anonymous.get("/ui")
    assert moved.status_code == 307 and moved.headers["location"] == "/ui/"


async def test_no_other_path_is_opened_by_the_dashboard(
    anonymous: httpx.AsyncClient, admin_key: str
) -> None:
    for path in ("/ui/nope.js", "/ui/static/app.js", "/uix", "/ui/app.js/", "/ui//app.js"):
        response = await anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthenticated"
    signed = await anonymous.get("/ui/nope.js", headers={"Authorization": f"Bearer {admin_key}"})
    assert signed.status_code == 404
    assert {"/ui", "/ui/", *(f"/ui/{name}" for name in SHIPPED)} == UI_PATHS


def test_the_pages_carry_no_inline_script_or_style_and_build_no_html_from_text() -> None:
    index = (STATIC / "index.html").read_text()
    assert all('src="/ui/' in tag for tag in re.findall(r"<script[^>]*>", index))
    assert " style=" not in index and "<style" not in index
    for script in STATIC.glob("*.js"):
        text = script.read_text()
        for risky in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert risky not in text, f"{script.name} uses {risky}"


def test_the_files_ship_in_the_package() -> None:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["servers.http.ui"]
    for name in SHIPPED:
        assert any(fnmatch(f"static/{name}", pattern) for pattern in globs), name
