"""Tier D: `prvng` as a subprocess, talking to a platform this tier serves on its own home.

The platform writes its run file into the tier's PRVNG_HOME, so each `prvng call` finds
it the way a user's shell does. Set-up calls go straight to the served registry (same
state, answers not compared), which saves a CLI cold start per set-up step.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from typing import Any

from contracts.tiers.base import (
    Listing,
    Outcome,
    Tier,
    parse_json,
    prvng_executable,
)
from registry import Call, Principal, Registry
from registry.errors import exit_code


class CliTier(Tier):
    key = "D"
    name = "cli"

    async def _start(self, stack: AsyncExitStack) -> None:
        from servers.runfile import read_run_file
        from servers.supervisor import serve

        self._prvng = prvng_executable()
        self._owner: Principal = self.env.caller()
        self._registry: Registry = await self.env.open_registry(stack)
        settings = self.env.settings
        await stack.enter_async_context(serve(self._registry, settings, write_run_file=True))
        if read_run_file(settings.run_file) is None:
            raise RuntimeError(
                f"serve(..., write_run_file=True) left no live run file at {settings.run_file}"
            )

    async def setup(self, call: Call) -> Outcome:
        envelope = await self._registry.invoke(call.tool, call.args, principal=self._owner)
        return Outcome.from_envelope(envelope.to_dict(), [])

    async def _run(self, *argv: str) -> tuple[int, bytes, bytes]:
        proc = await asyncio.create_subprocess_exec(
            self._prvng,
            *argv,
            env=self.env.subprocess_env(),
            cwd=self.env.settings.home,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(self.env.call_timeout):
                out, err = await proc.communicate()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return proc.returncode, out, err

    async def call(self, tool: str, args: dict[str, Any]) -> Outcome:
        argv = ("call", tool, "--json", json.dumps(args), "--output", "json")
        code, out, err = await self._run(*argv)
        if code == 0:
            data, problems = parse_json(out, "stdout of a successful `prvng call`")
            if problems:
                return Outcome(ok=True, problems=problems, answered=False)
            return Outcome(ok=True, data=data)
        body, problems = parse_json(err, f"stderr of `prvng call` (exit {code})")
        outcome = Outcome.from_envelope(body, problems)
        if outcome.ok:
            outcome.problems.append(f"exit {code} with a success envelope on stderr")
        elif outcome.answered:
            expected = exit_code(outcome.code or "internal")
            if code != expected:
                outcome.problems.append(
                    f"exit {code} for {outcome.summary()}; the error table says {expected}"
                )
        return outcome

    async def listing(self) -> Listing:
        code, out, err = await self._run("tools", "list", "--json")
        data, problems = parse_json(out, "stdout of `prvng tools list --json`")
        if code != 0:
            problems.append(f"`prvng tools list --json` exited {code}: {err.decode()[-300:]}")
        return Listing("prvng tools list --json", data=data, problems=problems)
