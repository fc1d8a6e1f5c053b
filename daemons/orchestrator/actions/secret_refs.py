"""Secret references in task params: `{"secret": "name"}`, resolved when the action runs.

Journals, snapshots, events and views only ever hold the reference. A `SecretResolver`
reads values from the secret store at run time and remembers them, so the action can
scrub them (as `***`) from everything it hands back: its log, its result, its error.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from daemons.common.secret_store import SECRET_NAME_PATTERN, SecretStore
from daemons.common.settings import Settings
from daemons.orchestrator.actions.base import ActionError, LogSink
from registry.errors import NotFound

MASK = "***"


class SecretRef(BaseModel):
    """A param value that names a secret instead of holding it."""

    model_config = ConfigDict(extra="forbid")

    secret: str = Field(pattern=SECRET_NAME_PATTERN, description="A name set with secret.set")


class SecretResolver:
    """Resolves references for one attempt and scrubs what it resolved."""

    def __init__(self, settings: Settings) -> None:
        self._store = SecretStore(settings)
        self._values: list[str] = []

    def value(self, given: str | SecretRef) -> str:
        if isinstance(given, str):
            return given
        try:
            value = self._store.get(given.secret)
        except NotFound as exc:
            raise ActionError(exc.message, retryable=False, details=exc.details) from None
        if value not in self._values:
            self._values.append(value)
            self._values.sort(key=len, reverse=True)  # a longer secret may contain a shorter
        return value

    def json(self, data: Any) -> Any:
        """`data` with every `{"secret": name}` object replaced by that secret's value."""
        if isinstance(data, dict):
            if set(data) == {"secret"} and isinstance(data["secret"], str):
                return self.value(SecretRef.model_validate(data))
            return {key: self.json(value) for key, value in data.items()}
        if isinstance(data, list):
            return [self.json(item) for item in data]
        return data

    def scrub(self, data: Any) -> Any:
        """`data` (text, or JSON-like) with every resolved value masked."""
        if isinstance(data, str):
            for value in self._values:
                data = data.replace(value, MASK)
            return data
        if isinstance(data, dict):
            return {key: self.scrub(value) for key, value in data.items()}
        if isinstance(data, list):
            return [self.scrub(item) for item in data]
        return data

    def scrub_error(self, exc: ActionError) -> ActionError:
        return ActionError(
            self.scrub(exc.message), retryable=exc.retryable, details=self.scrub(exc.details)
        )

    def log(self, sink: LogSink) -> ScrubbedLog:
        return ScrubbedLog(self, sink)

    @property
    def longest(self) -> int:
        return len(self._values[0]) if self._values else 0


class ScrubbedLog:
    """A log sink that masks resolved values, even one split across two chunks: per
    stream it holds back the last `longest - 1` characters until more arrive or `flush`."""

    def __init__(self, resolver: SecretResolver, sink: LogSink) -> None:
        self._resolver = resolver
        self._sink = sink
        self._held: dict[str, str] = {}

    def __call__(self, stream: str, text: str) -> None:
        text = self._resolver.scrub(self._held.pop(stream, "") + text)
        keep = self._resolver.longest - 1
        if keep > 0 and len(text) > 0:
            # Hold back a tail that could start a secret (never split a mask in two).
            cut = max(len(text) - keep, 0)
            text, self._held[stream] = text[:cut], text[cut:]
        if text:
            self._sink(stream, text)

    def flush(self) -> None:
        for stream, text in self._held.items():
            if text:
                self._sink(stream, self._resolver.scrub(text))
        self._held.clear()
