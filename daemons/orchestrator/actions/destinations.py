"""Where the `http` action may connect: never to the platform's own machine or a cloud
metadata service, unless `PRVNG_HTTP_ACTION_ALLOW` lists the network.

A task's request to `127.0.0.1:<platform port>`, to `nats-server` or SurrealDB on
loopback, or to `169.254.169.254` (instance credentials) would turn a workflow into a
way into the platform. The host is resolved once here; every address it resolves to
must be allowed (so a name with one public and one loopback address is refused), and
the request then goes to the address checked, not to a second lookup (no DNS rebinding
between check and connect). IPv4 addresses inside IPv6 ones (mapped `::ffff:a.b.c.d`,
compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) are checked as the IPv4 they carry.
Private networks (10/8, 172.16/12, 192.168/16, fc00::/7) are reachable: infrastructure
automation talks to them.
"""

from __future__ import annotations

import asyncio
import socket
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from daemons.common.settings import Settings
from daemons.orchestrator.actions.base import ActionError

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

REFUSED = tuple(
    ip_network(net)
    for net in (
        "0.0.0.0/8",  # "this host": 0.0.0.0 reaches the local machine
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, 169.254.169.254 the cloud metadata service
        "::/128",  # unspecified
        "::1/128",  # loopback
        "fe80::/10",  # link-local
        "fd00:ec2::254/128",  # EC2's IPv6 metadata service
    )
)
_COMPAT = ip_network("::/96")
_NAT64 = ip_network("64:ff9b::/96")


def allowed_networks(settings: Settings) -> tuple[Network, ...]:
    """`PRVNG_HTTP_ACTION_ALLOW` as networks (a non-retryable `ActionError` if bad)."""
    networks = []
    for item in settings.http_action_allow:
        try:
            networks.append(ip_network(item, strict=False))
        except ValueError:
            raise ActionError(
                f"PRVNG_HTTP_ACTION_ALLOW has {item!r}, not a network; give CIDRs such as "
                "127.0.0.1/32,10.0.0.0/8",
                retryable=False,
                details={"allow": list(settings.http_action_allow)},
            ) from None
    return tuple(networks)


def _forms(address: Address) -> list[Address]:
    """The address and, for an IPv6 one carrying an IPv4 address, that IPv4 address."""
    forms: list[Address] = [address]
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            forms.append(address.ipv4_mapped)
        elif address in _NAT64 or (address in _COMPAT and int(address) > 1):
            forms.append(IPv4Address(int(address) & 0xFFFFFFFF))
    return forms


def refused(address: Address, allow: tuple[Network, ...]) -> bool:
    """Whether `address` is internal (in any of its forms) and no allowed network has it."""
    forms = _forms(address)
    if any(form in net for form in forms for net in allow if form.version == net.version):
        return False
    return any(form in net for form in forms for net in REFUSED if form.version == net.version)


async def resolve_checked(host: str, port: int, settings: Settings) -> Address:
    """The address to connect to for `host`: every address it resolves to is checked.

    Raises a non-retryable `ActionError` naming the refused address, a retryable one when
    the name does not resolve (DNS may recover)."""
    allow = allowed_networks(settings)
    try:
        literal: Address | None = ip_address(host.strip("[]"))
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except socket.gaierror as exc:
            raise ActionError(
                f"cannot resolve {host!r}: {exc.strerror or exc}", details={"host": host}
            ) from None
        addresses = list(dict.fromkeys(ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    for address in addresses:
        if refused(address, allow):
            raise ActionError(
                f"refused: {host} is {address}, an address of this machine, a link-local "
                "network or a cloud metadata service, which http tasks may not reach; "
                "if it is really wanted, list its network in PRVNG_HTTP_ACTION_ALLOW "
                f"(e.g. {address}/{address.max_prefixlen})",
                retryable=False,
                details={"host": host, "address": str(address)},
            )
    if not addresses:
        raise ActionError(f"{host!r} resolves to no address", details={"host": host})
    return addresses[0]
