"""The dashboard in a real headless Chromium: Debian's `chromium` driven by playwright
(never `playwright install`), against a real platform started as a subprocess on port 0.

One platform and one browser per module; each test gets a new browser context, and a
test fails when its page logged a console error or threw, unless it said it expects it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from daemons.common.settings import PROJECT_ROOT
from tests.subprocesses import read_line

SHOTS = PROJECT_ROOT / "tests" / "output" / "ui"
MISSING = (
    "the browser tests need Debian's chromium: run `make system-packages` "
    "(apt-get install chromium) and `make .venv/.installed-test` (playwright)"
)


def chromium_path() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        import playwright  # noqa: F401  (the test extra)
    except ImportError:
        found = None
    if found is None:
        if os.environ.get("CI"):
            pytest.fail(MISSING, pytrace=False)
        pytest.skip(MISSING)
    return found


@dataclass
class Platform:
    """A running platform: its URL and the bootstrap admin's key."""

    url: str
    admin_key: str

    def call(self, tool: str, args: dict[str, Any], key: str | None = None) -> httpx.Response:
        return httpx.post(
            f"{self.url}/v1/tools/{tool}",
            json=args,
            headers={"Authorization": f"Bearer {key or self.admin_key}"},
            timeout=60,
            trust_env=False,
        )

    def data(self, tool: str, args: dict[str, Any], key: str | None = None) -> Any:
        response = self.call(tool, args, key)
        assert response.status_code == 200, response.text
        return response.json()["data"]

    def user(self, name: str, roles: list[str]) -> str:
        """A new user with `roles` and an API key of theirs (as an admin makes one)."""
        self.data("user.create", {"name": name, "roles": roles})
        key: str = self.data("apikey.create", {"user": name, "name": "browser test"})["key"]
        return key


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    root = tmp_path_factory.mktemp("ui-platform")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRVNG_")}
    env.update(
        PRVNG_HOME=str(root / "home"),
        PRVNG_SURREAL_URL="mem://",
        PRVNG_RATE_LIMITS="off",
        XDG_CACHE_HOME=str(root / "cache"),
        XDG_DATA_HOME=str(root / "data"),
    )
    code = (
        "import sys; from daemons.common.settings import Settings; "
        "from servers.cli.processes import run_platform; "
        "sys.exit(run_platform(Settings.from_env(), '127.0.0.1', 0))"
    )
    with (root / "platform.log").open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    try:
        line = read_line(proc, within_s=90)
        assert line.startswith("platform ready at "), line + (root / "platform.log").read_text()
        key = (root / "home" / "credentials" / "admin-api-key").read_text().strip()
        yield Platform(url=line.split()[3], admin_key=key)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium_path()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)  # a loaded machine; a pass returns at once

    args = ["--no-sandbox"] if os.geteuid() == 0 else []  # chromium refuses root otherwise
    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=executable, args=args)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Console:
    """What the page logged as an error or threw; `expect` names an error a test causes."""

    errors: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)

    def expect(self, fragment: str) -> None:
        self.expected.append(fragment)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(f in e for f in self.expected)]


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def new_page(browser: Any, console: Console) -> Iterator[Any]:
    """A factory of pages, each in a new context; errors of any of them fail the test."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda m: m.type == "error" and console.errors.append(m.text))
        page.on("pageerror", lambda exc: console.errors.append(f"pageerror: {exc}"))
        return page

    try:
        yield make
    finally:
        for context in contexts:
            context.close()
    assert console.unexpected() == []


def shot(page: Any, name: str) -> None:
    """A screenshot artifact under tests/output/ui/ (gitignored)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
