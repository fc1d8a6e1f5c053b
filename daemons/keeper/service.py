"""The keeper: decides on ops by policy, collects approvals, signs and publishes.

`request` → policy → deny (recorded, audited) | auto-approve (signed, published) |
require approval (pending in SurrealDB until enough distinct approvers with an approver
role said yes, never the requester, or until it expires). Each record change is a
compare-and-set on its `version`, so two approvers racing cannot lose one's approval.
"""

from __future__ import annotations

import builtins
import time
import uuid
from typing import Any

import nats.errors
from nats.js import JetStreamContext

from daemons.bus import MSG_ID, TRACE_ID, pending_subject
from daemons.common.state import StateStore
from daemons.keeper.encoding import Encoded, encode
from daemons.keeper.policy import Policy
from daemons.keeper.signer import Signer
from daemons.ops.audit import AuditPublisher, Outcome
from daemons.ops.bodies import Bodies
from daemons.ops.keyring import KeyRing
from daemons.ops.model import Decision, OpDecision, OpInfo, OpRequest, OpStatus
from registry.errors import Conflict, Forbidden, NotFound, Unavailable
from registry.principal import Principal
from registry.timestamps import iso_utc, utc_now_iso

TABLE = "ops_request"
_CAS_ATTEMPTS = 8


class Keeper:
    def __init__(
        self,
        *,
        policy: Policy,
        keys: KeyRing,
        state: StateStore,
        js: JetStreamContext,
        signer: Signer | None = None,
    ) -> None:
        self.policy = policy
        self.keys = keys
        self._state = state
        self._js = js
        self._signer = signer or Signer(keys)
        self._audit = AuditPublisher(js, "keeper")
        self._bodies = Bodies(js)

    def jwks(self) -> dict[str, Any]:
        """The verification keys (`/.well-known/jwks.json`)."""
        return self.keys.jwks()

    async def request(
        self, op: OpRequest, requester: Principal, trace_id: str = "", op_id: str | None = None
    ) -> OpDecision:
        """Decide on `op`. With `op_id` (a workflow id the caller chose), asking again for
        the same op is answered with its decision; another op under that id is a conflict."""
        if op_id is not None and (known := await self._state.get(TABLE, op_id)) is not None:
            return _same_op(op_id, known, op, requester)
        op_id = op_id or f"op-{uuid.uuid4().hex}"
        rule = self.policy.decide(op)
        now = time.time()
        # An op carries its whole workflow (up to megabytes): encoded in bounded steps.
        encoded = await encode(op)
        record: dict[str, Any] = {
            "op": encoded.op_json(),  # one string: cheap to store, exact to read back
            "op_type": op.type,
            "requester": requester.id,
            "trace_id": trace_id,
            "decision": rule.decision.value,
            "rule": rule.name,
            "approver_roles": rule.approver_roles,
            "approvals_needed": rule.approvals,
            "approvers": [],
            "created_at": utc_now_iso(),
            "expires_at": now + self.policy.approval_ttl_s,
            "token": None,
            "reason": "",
            "version": 0,
        }
        audit = {"op_id": op_id, "op_type": op.type, "actor": requester.id, "trace_id": trace_id}
        if rule.decision is Decision.DENY:
            record |= {"status": OpStatus.DENIED.value, "reason": f"policy rule {rule.name}"}
            await self._state.insert(TABLE, op_id, record)
            await self._audit.emit(Outcome.DENIED, reason=record["reason"], **audit)
            return _decision(op_id, record)
        if rule.decision is Decision.REQUIRE_APPROVAL:
            record["status"] = OpStatus.PENDING.value
            await self._state.insert(TABLE, op_id, record)
            await self._audit.emit(
                Outcome.APPROVAL_REQUIRED, reason=f"policy rule {rule.name}", **audit
            )
            return _decision(op_id, record)
        # Auto-approved: decided, audited, published, then recorded once. A crash before
        # the record leaves nothing that must be recovered: the op is in the stream or it
        # is not (and the caller, who got no answer, asks again).
        token = self._sign(op_id, record, op, (encoded.params_digest, encoded.plan_digest))
        record |= {"status": OpStatus.APPROVED.value, "token": token}
        await self._audit.emit(Outcome.AUTO_APPROVED, reason=f"policy rule {rule.name}", **audit)
        try:
            seq = await self._send(op_id, record, encoded)
        except Unavailable:
            await self._state.insert(TABLE, op_id, record)  # `republish` sends it later
            raise
        record |= {"status": OpStatus.PUBLISHED.value, "stream_seq": seq}
        await self._state.insert(TABLE, op_id, record)
        return _decision(op_id, record)

    async def approve(self, op_id: str, approver: Principal, trace_id: str = "") -> OpDecision:
        for _ in range(_CAS_ATTEMPTS):
            record = await self._pending(op_id, approver, trace_id)
            if approver.id == record["requester"]:
                raise Forbidden(
                    f"{approver.id} requested {op_id} and cannot approve it (four-eyes): "
                    "ask another approver",
                    details={"op_id": op_id},
                )
            if approver.id in record["approvers"]:
                raise Conflict(
                    f"{approver.id} already approved {op_id}; it needs another approver",
                    details={"op_id": op_id, "approvers": record["approvers"]},
                )
            if not set(record["approver_roles"]) & approver.roles:
                raise Forbidden(
                    f"approving {op_id} takes one of the roles {record['approver_roles']}",
                    details={"op_id": op_id, "approver_roles": record["approver_roles"]},
                )
            approvers = [*record["approvers"], approver.id]
            change: dict[str, Any] = {"approvers": approvers, "version": record["version"] + 1}
            done = len(approvers) >= record["approvals_needed"]
            if done:
                signed = {**record, "approvers": approvers}
                change |= {"status": OpStatus.APPROVED.value, "token": self._sign(op_id, signed)}
            if not await self._cas(op_id, record, change):
                continue  # another approver changed it meanwhile: read it again
            await self._audit.emit(
                Outcome.APPROVED,
                key=approver.id,
                op_id=op_id,
                op_type=record["op_type"],
                actor=approver.id,
                trace_id=trace_id or record["trace_id"],
                details={"approvers": approvers, "needed": record["approvals_needed"]},
            )
            if done:
                return await self._publish(op_id, {**record, **change})
            return _decision(op_id, {**record, **change})
        raise Conflict(f"{op_id} keeps changing; try approving again", details={"op_id": op_id})

    async def reject(
        self, op_id: str, approver: Principal, reason: str = "", trace_id: str = ""
    ) -> OpDecision:
        """Any approver (or the requester, withdrawing it) ends a pending op."""
        record = await self._pending(op_id, approver, trace_id)
        if approver.id != record["requester"] and not (
            set(record["approver_roles"]) & approver.roles
        ):
            raise Forbidden(
                f"rejecting {op_id} takes one of the roles {record['approver_roles']}",
                details={"op_id": op_id},
            )
        return await self._ended(
            op_id, record, Outcome.REJECTED, reason or "rejected", approver.id, trace_id
        )

    async def get(self, op_id: str) -> OpDecision:
        return _decision(op_id, await self._record(op_id))

    async def op(self, op_id: str) -> OpRequest:
        return OpRequest.model_validate_json((await self._record(op_id))["op"])

    async def refuse_stale(
        self, op_id: str, approver: Principal, reason: str, trace_id: str = ""
    ) -> None:
        """Audit an approval refused because the state the op was planned on changed;
        the op stays as it was (pending), approvable once the state is the planned one."""
        record = await self._record(op_id)
        await self._audit.emit(
            Outcome.STALE_PLAN,
            key=approver.id,
            op_id=op_id,
            op_type=record["op_type"],
            actor=approver.id,
            trace_id=trace_id or record["trace_id"],
            reason=reason,
        )

    async def describe(self, op_id: str) -> OpInfo:
        return _info(op_id, await self._record(op_id))

    async def list(
        self,
        *,
        status: OpStatus | None = None,
        op_type: str | None = None,
        requester: str | None = None,
        limit: int = 50,
        start: int = 0,
    ) -> list[OpInfo]:
        """Newest first, filtered; `start` skips that many (pagination)."""
        where = [
            f"{field} = ${field}"
            for field, value in (("status", status), ("op_type", op_type), ("requester", requester))
            if value is not None
        ]
        sql = f"SELECT * FROM {TABLE}" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY created_at DESC LIMIT $limit START $start"
        variables: dict[str, Any] = {"limit": limit, "start": start}
        variables |= {"status": status, "op_type": op_type, "requester": requester}
        rows = await self._state.query(sql, {k: v for k, v in variables.items() if v is not None})
        return [_info(str(row["id"]), row) for row in rows]

    async def cancel(self, op_id: str, actor: Principal, trace_id: str = "") -> OpDecision:
        """Withdraw a pending op: its requester or an admin."""
        record = await self._pending(op_id, actor, trace_id)
        if actor.id != record["requester"] and "admin" not in actor.roles:
            raise Forbidden(
                f"only {record['requester']} (who requested {op_id}) or an admin cancels it; "
                "an approver rejects it instead (`ops.reject`)",
                details={"op_id": op_id},
            )
        reason = f"cancelled by {actor.id}"
        return await self._ended(op_id, record, Outcome.CANCELLED, reason, actor.id, trace_id)

    async def publish(self, op_id: str) -> OpDecision:
        """Put an approved op on `ops.pending.<type>` (again: JetStream stores it once)."""
        record = await self._record(op_id)
        if record["status"] not in (OpStatus.APPROVED, OpStatus.PUBLISHED):
            raise Conflict(f"{op_id} is {record['status']}, not approved", details={"op_id": op_id})
        return await self._publish(op_id, record)

    async def _publish(self, op_id: str, record: dict[str, Any]) -> OpDecision:
        seq = await self._send(op_id, record)
        change = {"status": OpStatus.PUBLISHED.value, "stream_seq": seq}
        await self._state.update_if(TABLE, op_id, change, field="status", expected=["approved"])
        return _decision(op_id, {**record, **change})

    async def _send(
        self, op_id: str, record: dict[str, Any], encoded: Encoded | None = None
    ) -> int:
        """Publish the signed op (`Nats-Msg-Id` = op id), a big one's bodies first; its
        stream sequence."""
        if encoded is None:
            encoded = await encode(OpRequest.model_validate_json(record["op"]))
        if encoded.big:
            await self._bodies.put(encoded.params_digest, encoded.params)
            await self._bodies.put(encoded.plan_digest, encoded.plan)
        body = encoded.message(record["token"]).model_dump_json().encode()
        headers = {MSG_ID: op_id, TRACE_ID: record["trace_id"] or op_id}
        try:
            ack = await self._js.publish(pending_subject(encoded.op.type), body, headers=headers)
        except (nats.errors.Error, TimeoutError) as exc:
            raise Unavailable(
                f"{op_id} is approved but NATS did not take it ({exc}); it is published "
                "again when the keeper restarts, or call publish again",
                details={"op_id": op_id},
            ) from exc
        return int(ack.seq)

    async def republish(self) -> builtins.list[str]:
        """On start (or after an outage): publish ops left approved but not acknowledged
        by JetStream, their decision's audit event first (both stored once)."""
        rows = await self._state.query(
            f"SELECT * FROM {TABLE} WHERE status = $status", {"status": OpStatus.APPROVED.value}
        )
        published = []
        for row in rows:
            op_id = str(row["id"])
            auto = row["decision"] == Decision.AUTO_APPROVE
            await self._audit.emit(
                Outcome.AUTO_APPROVED if auto else Outcome.APPROVED,
                key="" if auto else row["approvers"][-1],
                op_id=op_id,
                op_type=row["op_type"],
                actor=row["requester"] if auto else row["approvers"][-1],
                trace_id=row["trace_id"],
                reason=f"policy rule {row['rule']}",
            )
            published.append((await self.publish(op_id)).op_id)
        return published

    async def expire(self, now: float | None = None) -> builtins.list[str]:
        """Mark pending ops past their approval lifetime expired (audited); their ids."""
        rows = await self._state.query(
            f"SELECT * FROM {TABLE} WHERE status = $status AND expires_at <= $now",
            {"status": OpStatus.PENDING.value, "now": time.time() if now is None else now},
        )
        expired = []
        for row in rows:
            if await self._expire(str(row["id"]), row, ""):
                expired.append(str(row["id"]))
        return expired

    # -- helpers -----------------------------------------------------------------------

    def _sign(
        self,
        op_id: str,
        record: dict[str, Any],
        op: OpRequest | None = None,
        digests: tuple[str, str] | None = None,
    ) -> str:
        claims = self._signer.claims(
            op_id,
            op or OpRequest.model_validate_json(record["op"]),
            requester=record["requester"],
            approvers=list(record["approvers"]),
            rule=record["rule"],
            trace_id=record["trace_id"] or op_id,
            digests=digests,
        )
        return self._signer.sign(claims)

    async def _record(self, op_id: str) -> dict[str, Any]:
        record = await self._state.get(TABLE, op_id)
        if record is None:
            raise NotFound(f"no op {op_id!r}; `ops.list` shows the known ones", details={})
        return record

    async def _pending(self, op_id: str, actor: Principal, trace_id: str) -> dict[str, Any]:
        record = await self._record(op_id)
        if record["status"] == OpStatus.PENDING and record["expires_at"] <= time.time():
            await self._expire(op_id, record, trace_id)
            record["status"] = OpStatus.EXPIRED.value
        if record["status"] == OpStatus.EXPIRED:
            raise Conflict(
                f"{op_id} expired: its approval lifetime passed before it was approved, so "
                "it will never run; request it again (plan it anew first)",
                details={"op_id": op_id, "status": record["status"]},
            )
        if record["status"] != OpStatus.PENDING:
            raise Conflict(
                f"{op_id} is {record['status']}, no longer waiting for approval",
                details={"op_id": op_id, "status": record["status"]},
            )
        return record

    async def _expire(self, op_id: str, record: dict[str, Any], trace_id: str) -> bool:
        outcome, reason = Outcome.EXPIRED, "approval lifetime passed"
        return await self._end(op_id, record, outcome, reason, "keeper", trace_id) is not None

    async def _ended(
        self,
        op_id: str,
        record: dict[str, Any],
        outcome: Outcome,
        reason: str,
        actor: str,
        trace_id: str,
    ) -> OpDecision:
        """`_end`, or `Conflict` when the op changed meanwhile."""
        ended = await self._end(op_id, record, outcome, reason, actor, trace_id)
        if ended is None:
            raise Conflict(f"{op_id} changed meanwhile; look at it again", details={"op_id": op_id})
        return _decision(op_id, ended)

    async def _end(
        self,
        op_id: str,
        record: dict[str, Any],
        outcome: Outcome,
        reason: str,
        actor: str,
        trace_id: str,
    ) -> dict[str, Any] | None:
        """End a pending op as `outcome` (its status of the same name), audited; the
        record as it now is, or None when it changed since `record` was read."""
        change = {"status": OpStatus(outcome.value).value, "reason": reason}
        if not await self._cas(op_id, record, change):
            return None
        await self._audit.emit(
            outcome,
            op_id=op_id,
            op_type=record["op_type"],
            actor=actor,
            trace_id=trace_id or record["trace_id"],
            reason=reason,
        )
        return {**record, **change}

    async def _cas(self, op_id: str, record: dict[str, Any], change: dict[str, Any]) -> bool:
        change = {**change, "version": record["version"] + 1}
        return await self._state.update_if(
            TABLE, op_id, change, field="version", expected=[record["version"]]
        )


def _decision(op_id: str, record: dict[str, Any]) -> OpDecision:
    return OpDecision(
        op_id=op_id,
        status=OpStatus(record["status"]),
        decision=Decision(record["decision"]),
        rule=record["rule"],
        approvers=list(record["approvers"]),
        approvals_needed=record["approvals_needed"]
        if record["decision"] == Decision.REQUIRE_APPROVAL
        else 0,
        approver_roles=list(record["approver_roles"])
        if record["decision"] == Decision.REQUIRE_APPROVAL
        else [],
        expires_at=iso_utc(record["expires_at"]) if record["status"] == OpStatus.PENDING else None,
        token=record.get("token"),
        reason=record.get("reason", ""),
    )


def _same_op(op_id: str, record: dict[str, Any], op: OpRequest, requester: Principal) -> OpDecision:
    known = OpRequest.model_validate_json(record["op"])
    same = (known.params_digest(), known.plan_digest()) == (op.params_digest(), op.plan_digest())
    if not same or record["requester"] != requester.id:
        raise Conflict(
            f"id {op_id!r} already names another op (or another requester's); "
            "choose another id, or leave it out",
            details={"op_id": op_id},
        )
    return _decision(op_id, record)


def _info(op_id: str, record: dict[str, Any]) -> OpInfo:
    op = OpRequest.model_validate_json(record["op"])
    return OpInfo(
        **_decision(op_id, record).model_dump(),
        op_type=record["op_type"],
        requester=record["requester"],
        target=op.target,
        created_at=record["created_at"],
        trace_id=record["trace_id"],
        changes=op.plan.changes,
    )
