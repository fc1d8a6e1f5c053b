"""Property-based fuzzing of the served HTTP daemon from its own OpenAPI document.

Every operation gets requests that the document admits (they must get a documented,
schema-conformant answer and never a 5xx) and requests that it refuses (they must be
refused). The run is bounded (few examples per operation, no shrinking marathon) so it
stays well under a minute; a failure names the request that broke the contract.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation, BaseSchema
from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

from daemons.common.keystore import KeyStore
from daemons.common.settings import PROJECT_ROOT, Settings
from servers.assembly import build_registry
from servers.supervisor import serve
from tools.settings.source import TEXT_MAX

MAX_EXAMPLES = 6
SSE = "text/event-stream"
STREAM_READ_S = 0.5
WAITS = frozenset({"wait_s", "wait_timeout_s", "timeout_s"})
MAX_WAIT_S = 0.2
EXCLUDED = [ignored_auth, positive_data_acceptance]
"""`ignored_auth` resends each request with a bad key and wants 401, but a source refused
that often is answered 429 by design (`registry.refusals`; tests/test_http.py covers both).
`positive_data_acceptance` wants every schema-valid request accepted, but operations refuse
what no schema can say (an unknown action, a config file that is not there); the type
findings it made are regressions in tests/test_strict_input.py."""
_REFUSALS = SchemathesisConfig().projects.default.checks.negative_data_rejection.expected_statuses
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": [*_REFUSALS, "413"]}}}
)
"""A string past its `maxLength` in characters may also be past PRVNG_MAX_BODY_BYTES in
bytes (256 Ki four-byte characters), and then the body is refused before it is parsed:
413 `payload_too_large` is as much a refusal as 422 (CI found it on settings.validate)."""


class _Served:
    """The platform served on 127.0.0.1:0 from a thread of its own (the fuzzer's HTTP
    client blocks, so the server cannot share its event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = ""
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._run, name="fuzzed-platform", daemon=True)

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to the test thread by start()
            self._failed = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        async with (
            build_registry(self.settings) as registry,
            serve(registry, self.settings) as url,
        ):
            self.url = url
            self._ready.set()
            await self._stop.wait()

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60) or self._failed is not None:
            raise RuntimeError(f"the platform did not start: {self._failed!r}")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    root: Path = tmp_path_factory.mktemp("fuzz")
    config = Settings(
        home=root / "home",
        config_dir=PROJECT_ROOT / "config",
        cache_dir=root / "cache",
        surreal_url="mem://",
    )
    KeyStore(config).owner()  # creates the bootstrap admin key
    served = _Served(config)
    served.start()
    try:
        yield served.url, config.admin_key_file.read_text().strip()
    finally:
        served.stop()


@pytest.fixture(scope="module")
def api(platform: tuple[str, str]) -> tuple[BaseSchema, dict[str, str]]:
    """The served document, loaded once, held to `CONFIG`; and the admin's headers."""
    url, key = platform
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", config=CONFIG)
    return schema, {"Authorization": f"Bearer {key}"}


def _bound_waits(case: schemathesis.Case) -> None:
    """Cap how long a schema-valid call may block (`wait_s` up to an hour is valid, but
    this run is bounded). Only positive cases: a negative one's number may be the error."""
    for values in (case.body, case.query):
        if not isinstance(values, dict):
            continue
        for name in WAITS & values.keys():
            value = values[name]
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                values[name] = min(value, MAX_WAIT_S)


def _not_what_is_sent(case: schemathesis.Case) -> bool:
    """Whether a query value is one `requests` does not send as generated: None, `[]` and
    `{}` vanish, a list becomes repeated keys and a dict its keys (`{"deny": 1}` is sent as
    `decision=deny`). A negative case with one is judged on a request nobody sent, so a
    valid request the server rightly accepts would count as a schema-violating one."""
    as_json = {
        p.get("name")
        for p in case.operation.definition.raw.get("parameters", ())
        if p.get("in") == "query" and "content" in p
    }
    return any(
        value is None or isinstance(value, list | dict)
        for name, value in (case.query or {}).items()
        if name not in as_json
    )


def _check(case: schemathesis.Case, auth: dict[str, str], mode: GenerationMode) -> None:
    """One generated request: sent, then held to the document (a stream only as it opens:
    the fuzzer stops reading one once `STREAM_READ_S` have passed)."""
    if mode is GenerationMode.POSITIVE:
        _bound_waits(case)
    elif _not_what_is_sent(case):
        return
    if SSE in str(case.operation.definition.raw.get("responses", {}).get("200", {})):
        response = case.call(headers=auth, timeout=STREAM_READ_S)
        if response.status_code == 200:
            assert response.headers["content-type"][0].startswith(SSE)
            return
        case.validate_response(response, headers=auth, excluded_checks=EXCLUDED)
        return
    case.call_and_validate(headers=auth, timeout=60, excluded_checks=EXCLUDED)


def _fuzz(operation: APIOperation, mode: GenerationMode, auth: dict[str, str]) -> None:
    """A bounded Hypothesis run of one operation in one generation mode."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: schemathesis.Case) -> None:
        _check(case, auth, mode)

    run()


def test_every_operation_keeps_its_contract(api: tuple[BaseSchema, dict[str, str]]) -> None:
    schema, auth = api
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 40  # every tool, alias and stream
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzz(operation, mode, auth)
            except Unsatisfiable:
                continue  # nothing to get wrong (`GET /health` takes no input)
            except (AssertionError, Exception, BaseExceptionGroup) as exc:  # one report for all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


def _only_the_body_is_invalid(case: schemathesis.Case) -> bool:
    components = case.meta.components if case.meta is not None else {}
    return isinstance(case.body, dict) and all(
        component.mode.is_negative == (location is ParameterLocation.BODY)
        for location, component in components.items()
    )


def test_a_body_past_the_byte_limit_is_a_refusal(api: tuple[BaseSchema, dict[str, str]]) -> None:
    """The case CI drew once: text past its `maxLength` in four-byte characters, so past
    the body limit too; answered 413, which the fuzzer must count as refused."""
    schema, auth = api
    operation = schema["/v1/settings/validate"]["POST"]
    case = find(
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
        _only_the_body_is_invalid,
        settings=settings(database=None, suppress_health_check=list(HealthCheck)),
    )
    case.body = {"text": "\N{GRINNING FACE}" * (TEXT_MAX + 1)}
    response = case.call(headers=auth, timeout=60)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    case.validate_response(response, excluded_checks=EXCLUDED)
