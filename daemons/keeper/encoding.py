"""An op as the keeper signs, records and sends it: its params and plan as canonical JSON,
encoded in bounded steps (an op carries its whole workflow), with their digests.

A big op (`daemons.ops.bodies.BIG`) is sent as an `OpRef`: its bodies go to the object
store under the digests the token signs, the message stays small.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from daemons.ops.bodies import BIG, digest_of
from daemons.ops.model import OpMessage, OpRef, OpRequest
from daemons.ops.steps import canonical_in_steps
from registry.canonical import canonical_json


@dataclass(frozen=True, slots=True)
class Encoded:
    op: OpRequest
    params: bytes
    plan: bytes
    params_digest: str
    plan_digest: str

    @property
    def big(self) -> bool:
        return len(self.params) + len(self.plan) > BIG

    def op_json(self) -> str:
        """The op as JSON (what the keeper records), made of the encoded bodies."""
        op = self.op
        if not self.big:
            return op.model_dump_json()
        head = b'{"images":%s,"params":%s,"plan":%s,"risk":%s,"target":%s,"type":%s}' % (
            canonical_json(op.images),
            self.params,
            self.plan,
            canonical_json(op.risk),
            op.target.model_dump_json().encode(),
            canonical_json(op.type),
        )
        return head.decode()

    def message(self, token: str) -> OpMessage:
        if not self.big:
            return OpMessage(token=token, op=self.op)
        op = self.op
        ref = OpRef(
            type=op.type,
            target=op.target,
            images=op.images,
            risk=op.risk,
            params_digest=self.params_digest,
            plan_digest=self.plan_digest,
        )
        return OpMessage(token=token, ref=ref)


async def encode(op: OpRequest) -> Encoded:
    params = await canonical_in_steps(op.params)
    plan = await canonical_in_steps(op.plan_value())
    if len(params) + len(plan) > BIG:  # hashlib frees the GIL on big buffers
        params_digest, plan_digest = await asyncio.gather(
            asyncio.to_thread(digest_of, params), asyncio.to_thread(digest_of, plan)
        )
    else:
        params_digest, plan_digest = digest_of(params), digest_of(plan)
    return Encoded(op, params, plan, params_digest, plan_digest)
