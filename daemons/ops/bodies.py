"""Big op bodies (params, plan) out of the op message: stored once, by their digest.

A message on `ops.pending.<type>` stays small (the signed token and the op's head); the
params and the plan of a big op travel as objects of the JetStream object store
`OPS_BODIES`, each named by the `sha256:` digest of its canonical JSON, the very digest
the token signs. The controller fetches them by the signed digests and hashes what it
got: a body changed in the store is refused as a changed op. The store chunks objects,
so a plan over the server's `max_payload` (1 MB by default) travels too.
"""

from __future__ import annotations

import asyncio
import hashlib

import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import (
    BadObjectMetaError,
    DigestMismatchError,
    NotFoundError,
)
from nats.js.object_store import ObjectStore

from daemons.bus import BODIES_BUCKET
from registry.errors import Unavailable

BIG = 64 * 1024
"""An op whose params and plan take more bytes than this travels by reference."""


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BodyMissing(Exception):
    """The store has no body under that digest (or one that does not hash to it)."""


class Bodies:
    def __init__(self, js: JetStreamContext) -> None:
        self._js = js
        self._store: ObjectStore | None = None

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            self._store = await self._js.object_store(BODIES_BUCKET)
        return self._store

    async def put(self, digest: str, data: bytes) -> None:
        """Store `data` under its digest, unless it is there already (content-addressed)."""
        try:
            store = await self._bucket()
            try:
                info = await store.get_info(digest)
                if not info.deleted and info.size == len(data):
                    return
            except NotFoundError:
                pass
            await store.put(digest, data)
        except (nats.errors.Error, TimeoutError) as exc:
            raise Unavailable(f"NATS did not store the op's body ({exc}); try again") from exc

    async def get(self, digest: str) -> bytes:
        """The body whose SHA-256 is `digest`; `BodyMissing` when there is no such body."""
        try:
            result = await (await self._bucket()).get(digest)
        except (NotFoundError, DigestMismatchError, BadObjectMetaError):
            raise BodyMissing(f"no op body {digest}") from None
        except nats.errors.Error as exc:
            raise Unavailable(f"NATS did not give the op's body ({exc})") from exc
        data = bytes(result.data or b"")
        if await asyncio.to_thread(digest_of, data) != digest:  # hashlib frees the GIL
            raise BodyMissing(f"the stored body is not {digest}")
        return data
