"""Which addresses a store-configured destination may reach: public ones, plus what the operator allows.

A store is a tenant, not an operator: a webhook pointing at `http://127.0.0.1:6379/`, a cloud's
metadata service (`169.254.169.254`) or a neighbour on the private network would make livemap a
proxy into its own network (SSRF). Refused: every address that is not globally routable (loopback,
RFC 1918 / unique-local private ranges, link-local, multicast, the unspecified address, carrier-grade
NAT, documentation and benchmarking ranges, reserved ones), IPv4-mapped IPv6 judged as the IPv4 it
carries. `LIVEMAP_OUTBOUND_ALLOW` lists exceptions: comma-separated addresses or networks (CIDR)
and host names (exact, case-insensitive), e.g. `10.0.5.0/24,hooks.internal.example`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Cloud metadata services, named as such in errors (they are link-local or unique-local anyway).
_METADATA = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})


class OutboundRefused(Exception):
    """A destination resolves to an address stores may not reach; the message says which and why."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        shown = host if host == address else f"{host} ({address})"
        super().__init__(
            f"{shown} is {reason}: livemap does not connect to internal addresses for a store"
            " (the operator may allow it with LIVEMAP_OUTBOUND_ALLOW)"
        )
        self.host, self.address, self.reason = host, address, reason


def classify(address: IpAddress) -> str | None:
    """Why ``address`` is internal (``"a loopback address"``, ...), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        (address in _METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_unspecified, "the unspecified address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_private, "a private address"),
        (not address.is_global, "not a public address"),
    )
    return next((reason for hit, reason in checks if hit), None)


@dataclass(frozen=True)
class OutboundPolicy:
    """Public addresses only, plus the operator's exceptions (see the module docstring)."""

    networks: tuple[IpNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, allow: str) -> OutboundPolicy:
        """From `LIVEMAP_OUTBOUND_ALLOW`; ValueError naming an entry that is neither a network nor a host name."""
        networks: list[IpNetwork] = []
        hosts: set[str] = set()
        for entry in (e.strip() for e in allow.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or ":" in entry or " " in entry:
                    raise ValueError(
                        f"LIVEMAP_OUTBOUND_ALLOW: {entry!r} is neither an address, a network nor a host name"
                    ) from None
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def host_allowed(self, host: str) -> bool:
        """Whether the operator allows ``host`` by name, whatever it resolves to."""
        return host.lower().rstrip(".") in self.hosts

    def check(self, host: str, address: str) -> None:
        """Raise :class:`OutboundRefused` unless ``host``, resolved to ``address``, may be reached."""
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # a scoped IPv6 address: fe80::1%eth0
        if self.host_allowed(host) or any(ip in net for net in self.networks):
            return
        reason = classify(ip)
        if reason is not None:
            raise OutboundRefused(host, str(ip), reason)
