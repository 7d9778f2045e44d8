"""Which addresses a user's URL may reach: globally routable unicast only (docs/design.md, "Safety of
user URLs").

ssrfguard's table refuses the well-known private and special ranges; this adds the rule that
decides what the table does not list. IPv6 must be inside 2000::/3 (global unicast) and global by
Python's registry; IPv4 must be global and not multicast. An IPv6 address that carries an IPv4
address (mapped ``::ffff:a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, NAT64 ``64:ff9b::/96`` and
``64:ff9b:1::/48``, 6to4 ``2002::/16``, Teredo ``2001::/32``) is judged as the IPv4 it carries, so
``::ffff:0:7f00:1`` is 127.0.0.1 and refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address

from ssrfguard import BlockedAddressError, Policy

_GLOBAL_UNICAST = IPv6Network("2000::/3")
_SIIT = IPv6Network("::ffff:0:0:0/96")
_NAT64 = (IPv6Network("64:ff9b::/96"), IPv6Network("64:ff9b:1::/48"))


def embedded_ipv4(ip: IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, if it is one of the translation forms."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip in _SIIT or any(ip in net for net in _NAT64):
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client's address, the one traffic is delivered to
    return None


def is_public(address: str | IPv4Address | IPv6Address) -> bool:
    """True for a globally routable unicast address."""
    ip = ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, IPv6Address):
        if ip.scope_id:
            return False
        inner = embedded_ipv4(ip)
        if inner is not None:
            return is_public(inner)
        return ip in _GLOBAL_UNICAST and ip.is_global
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class PublicOnlyPolicy(Policy):
    """ssrfguard's policy, with :func:`is_public` required of every address it would allow."""

    def check_address(self, address: str | IPv4Address | IPv6Address) -> None:
        super().check_address(address)
        if not is_public(address):
            raise BlockedAddressError(str(address), "not a globally routable unicast address")
