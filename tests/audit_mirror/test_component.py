"""The audit mirror as a platform component, on a real nats-server: it commits what the
stream carries and reports it on the health board; stopped, it lets go of NATS."""

from __future__ import annotations

from nats.aio.client import Client

from daemons.audit_mirror.daemon import AuditVerifier
from daemons.bus import NatsServer
from daemons.common.settings import Settings
from servers.daemon_components import AuditMirrorComponent
from tests.audit_mirror.test_mirror import publish
from tests.waiting import until


async def test_the_component_mirrors_the_stream_and_says_so(
    settings: Settings, nats_server: NatsServer, nc: Client
) -> None:
    component = AuditMirrorComponent(settings, nats_server.url)
    await component.start()
    try:
        await publish(nc, 2)
        mirror = component.mirror
        assert mirror is not None
        await until(lambda: mirror.counts.committed == 2, what="2 events committed", within_s=30)
        assert (await component.status()).detail == "2 committed, 0 failed"
    finally:
        await component.stop()
    assert (await component.status()).ready is False


async def test_without_nats_it_waits_and_starts_nothing(settings: Settings) -> None:
    component = AuditMirrorComponent(settings, None)
    await component.start()
    status = await component.status()
    assert status.ready and status.detail == "waiting for NATS"
    assert component.mirror is None
    await component.stop()


async def test_the_verifier_resource_names_stream_events_with_no_commit(
    settings: Settings, nats_server: NatsServer, nc: Client
) -> None:
    ids = await publish(nc, 2)  # no mirror runs: nothing is committed
    report, stream_checked = await AuditVerifier(settings, nats_server.url).verify()
    assert stream_checked and not report.ok
    assert sorted(p.kind for p in report.problems) == ["missing_event", "missing_event"]
    assert all(any(i in p.detail for i in ids) for p in report.problems)
    report, stream_checked = await AuditVerifier(settings, nats_server.url).verify(stream=False)
    assert not stream_checked and report.ok
