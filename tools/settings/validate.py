"""`settings.validate`: what is wrong with a workspace config, where, and how to fix it.

It reads the config as `config.validate` does (`tools.config.nickel.evaluate`, through the
cache) and turns a failure into issues instead of an error: Nickel's contract failures
with file, line and column, each mapped to a suggested fix by `FIXES`, then what the
*servers create* template would refuse (duplicate names, unknown taskservs, bad
settings) when the contracts pass.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

from daemons.orchestrator.provisioning.taskservs import Catalog
from daemons.orchestrator.provisioning.templates import servers_create_workflow
from registry import (
    ContractCase,
    InvalidInput,
    NotFound,
    RestAlias,
    Risk,
    StrictModel,
    ToolContext,
    ToolSpec,
)
from tools.settings.source import SourceInput, Workspace, load, workspace_of


class Issue(StrictModel):
    file: str | None
    line: int | None
    column: int | None
    message: str
    fix: str


class ValidateOutput(StrictModel):
    source: str
    valid: bool
    issues: list[Issue]


FIELD_FIXES = {
    "port": "use a whole number from 1 to 65535 (1024 and up needs no root)",
    "name": "use lowercase letters, digits and '-', starting and ending with a letter or "
    "digit, at most 63 characters",
    "provider": "use the enum tag 'local (the only provider built in)",
    "labels": 'give every label a string value: labels = { env = "dev" }',
    "servers": 'give a list of server records: servers = [{ name = "web-1" }]',
    "taskservs": 'give a list of taskserv records: taskservs = [{ name = "kv-store" }]',
}
"""The workspace contract's fields (config/schemas/server.ncl) and what each accepts."""

FIXES: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"extra field `(?P<f>[^`]+)`"),
        "remove `{f}` or fix its spelling: the "
        "record contract allows only its declared fields (config/schemas/server.ncl)",
    ),
    (re.compile(r"expected an enum"), "write an enum tag without quotes ('local), not a string"),
    (re.compile(r"tag not in the enum type"), "use one of the enum's tags ('local)"),
    (
        re.compile(r"missing definition for `(?P<f>[^`]+)`"),
        "add `{f} = ...`: the field is required and has no default",
    ),
    (re.compile(r"contract broken by the value of `(?P<f>[^`]+)`"), "{field_fix}"),
    (
        re.compile(r"unexpected token|unexpected end of file|unbound identifier|parse"),
        "fix the syntax here: fields are `name = value`, separated by commas",
    ),
    (
        re.compile(r"imports '(?P<f>[^']+)', which does not exist"),
        "fix the import path `{f}` (it resolves against the file, then the workspace root)",
    ),
)


def suggest(error: str, nickel_error: str) -> str:
    """The fix for a Nickel error: the first pattern that matches its text."""
    text = f"{error}\n{nickel_error}"
    for pattern, fix in FIXES:
        match = pattern.search(text)
        if match is None:
            continue
        found = match.groupdict().get("f") or ""
        field_fix = FIELD_FIXES.get(found, f"give `{found}` a value its contract accepts")
        return fix.format(f=found, field_fix=field_fix)
    return "read Nickel's message in `prvng config validate --path FILE` and fix that place"


_LOCATION = re.compile(r"┌─\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+)")


def _in_source(nickel_error: str, source: str) -> tuple[int, int] | None:
    """The first place Nickel's message shows in `source` itself: a missing field is
    marked at the schema that requires it, but the fix goes in the user's record."""
    for match in _LOCATION.finditer(nickel_error):
        if match.group("file").strip() == source:
            return int(match.group("line")), int(match.group("column"))
    return None


def nickel_issue(exc: InvalidInput, source: str) -> Issue:
    d: dict[str, Any] = exc.details
    error = str(d.get("error") or exc.message)
    file, line, column = d.get("file", source), d.get("line"), d.get("column")
    if file != source and (own := _in_source(str(d.get("nickel_error", "")), source)):
        file, (line, column) = source, own
    return Issue(
        file=file,
        line=line,
        column=column,
        message=error,
        fix=suggest(error, str(d.get("nickel_error") or d.get("import") or exc.message)),
    )


def template_issues(ws: Workspace, value: Any, source: str) -> list[Issue]:
    """What creating the workspace's servers would refuse (the template's own checks)."""
    if not isinstance(value, dict) or not value.get("servers"):
        return []
    try:
        servers_create_workflow(value, catalog=Catalog(ws.config_dir, ws.cache))
    except (InvalidInput, NotFound) as exc:
        if "taskserv" in exc.message:
            fix = "`prvng taskserv list` shows the taskservs and their settings"
        elif "more than once" in exc.message:
            fix = "make every server name unique"
        else:
            fix = "apply the workspace contract (`| s.Workspace`, schemas/server.ncl) to see where"

        return [Issue(file=source, line=None, column=None, message=exc.message, fix=fix)]
    return []


async def validate(args: SourceInput, ctx: ToolContext) -> ValidateOutput:
    ws = await workspace_of(ctx)
    try:
        value = await load(ws, args)
    except InvalidInput as exc:
        if "import" in exc.details and "error" not in exc.details:
            exc.details["error"] = exc.message
        return ValidateOutput(
            source=args.label, valid=False, issues=[nickel_issue(exc, args.label)]
        )
    issues = await asyncio.to_thread(template_issues, ws, value, args.label)
    return ValidateOutput(source=args.label, valid=not issues, issues=issues)


TOOLS = [
    ToolSpec(
        name="settings.validate",
        summary="Check a workspace config: each problem with file, line, column and a fix",
        description="Unlike config.validate, a broken config is an answer (valid: false), "
        "not an error.",
        input_model=SourceInput,
        output_model=ValidateOutput,
        handler=validate,
        permission="config:read",
        risk=Risk.READ,
        idempotent=True,
        rest=RestAlias("POST", "/v1/settings/validate"),
        tags=("settings", "config"),
        cases=(
            ContractCase("valid workspace", {"path": "workspace.ncl"}),
            ContractCase("broken port", {"path": "examples/invalid-port.ncl"}),
            ContractCase("text", {"text": '{ name = "x", servers = [{ name = "A" }] }'}),
            ContractCase("missing file", {"path": "nope.ncl"}, expect="not_found"),
            ContractCase("neither", {}, expect="invalid_input"),
        ),
    ),
]
