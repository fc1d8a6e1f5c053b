"""`sleep`: wait a while (a stand-in for slow work; timeouts and cancellation cut it short)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from daemons.orchestrator.actions.base import ActionContext
from registry.model import StrictModel


class SleepParams(StrictModel):
    seconds: float = Field(ge=0, le=86_400, description="How long to wait")


class SleepAction:
    name: ClassVar[str] = "sleep"
    params_model: ClassVar[type[BaseModel]] = SleepParams

    async def run(self, params: BaseModel, ctx: ActionContext) -> dict[str, Any]:
        assert isinstance(params, SleepParams)
        await asyncio.sleep(params.seconds)
        return {"slept_s": params.seconds}


ACTIONS = (SleepAction,)
