"""A tool's missing answers asked of the user in place (MCP elicitation), issue #13 §4.

When `settings.generate` is called without some of its required answers (`mode`, `name`)
by a client that may be asked (`servers.mcp.asking`), and the caller may call the tool,
the server shows the user a form built from the input model's missing fields (the modes
as an enum) and runs the completed call through the pipeline, as the caller, where it is
validated exactly as any other call. Declined or cancelled, nothing runs: the answer is
the pipeline's `invalid_input` naming the missing fields, saying the user declined. Other
clients get that `invalid_input` as before; the listed input schema is the same for all.
"""

from __future__ import annotations

from typing import Any

from fastmcp.server.dependencies import get_context
from fastmcp.tools import ToolResult
from pydantic import BaseModel, Field, create_model

from registry import Envelope
from servers.mcp.asking import may_ask
from servers.mcp.calls import Caller
from servers.mcp.server import RegistryTool, tool_result

ASKED = frozenset({"settings.generate"})
_NOT_ANSWERED = {"decline": "declined", "cancel": "cancelled"}


def missing_fields(env: Envelope, model: type[BaseModel]) -> list[str]:
    """The top-level fields of `model` the call lacked, when that was its only fault."""
    error = env.error or {}
    if error.get("code") != "invalid_input":
        return []
    errors = (error.get("details") or {}).get("errors") or []
    names = [e.get("loc") for e in errors if e.get("type") == "missing"]
    if not names or len(names) != len(errors) or not set(names) <= set(model.model_fields):
        return []
    return [str(name) for name in names]


def answers_form(model: type[BaseModel], missing: list[str]) -> type[BaseModel]:
    """A flat form of the missing fields: their types (a `Literal` is an enum) and
    descriptions, without their constraints, so the pipeline validates the answers as
    it validates any call and names what is wrong the same way."""
    fields: dict[str, Any] = {
        name: (model.model_fields[name].annotation, Field(description=_about(model, name)))
        for name in missing
    }
    return create_model(f"{model.__name__}Answers", **fields)


def _about(model: type[BaseModel], name: str) -> str:
    return model.model_fields[name].description or name.replace("_", " ").capitalize()


class AnswersTool(RegistryTool):
    """A tool whose missing required answers are asked of the user where the client can."""

    async def run(self, arguments: dict[str, Any]) -> ToolResult:
        if not may_ask():
            return await super().run(arguments)
        caller = Caller(self._registry, self._principal)
        spec = self._registry.get(self._tool)
        first = await caller.invoke(self._tool, arguments)
        missing = missing_fields(first, spec.input_model)
        principal = await caller.identity() if missing else None
        if principal is None or not self._registry.authorizer.may_call(principal, spec):
            return tool_result(first)
        question = f"{spec.summary}. It needs: {', '.join(missing)}."
        asked = await get_context().elicit(question, answers_form(spec.input_model, missing))
        if asked.action != "accept":
            error = first.error or {}
            first.error = {
                **error,
                "message": f"the user {_NOT_ANSWERED[asked.action]} to give "
                f"{', '.join(missing)}, so nothing ran; {error.get('message')}",
                "details": {**(error.get("details") or {}), "asked": asked.action},
            }
            return tool_result(first)
        answers = asked.data.model_dump(mode="json")
        return tool_result(await caller.invoke(self._tool, {**arguments, **answers}))
