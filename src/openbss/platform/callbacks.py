"""Where the server may send a notification: the address rule of hub callbacks (server-side request forgery).

A callback URL is given by a client; the server then POSTs to it. Without a rule, a client could make the server
call what only the server can reach (its own loopback, the operator's private networks, a cloud's metadata service
at 169.254.169.254) and read the hub's delivered/failed counters as a port scanner. The rule:

* a callback's host must resolve only to *public* addresses: loopback (127.0.0.0/8, ::1), private (10/8,
  172.16/12, 192.168/16, fc00::/7), link-local (169.254/16, fe80::/10), unspecified (0.0.0.0, ::), shared
  (100.64/10), multicast, reserved and documentation ranges are refused, also when written as an IPv4-mapped IPv6
  address;
* unless the operator allows a network for its subscribers (``OPENBSS_HUB_CALLBACK_ALLOW``: comma-separated
  networks in CIDR notation, e.g. ``10.20.0.0/16,fd00:1::/64``);
* checked when the subscription is registered (400 naming the rule) and again at every delivery, on the addresses
  the name resolves to then; the delivery connects to the address that was checked (the name is not resolved a
  second time), so a DNS answer that changes between the check and the connection (rebinding) cannot redirect it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RESOLVE_TIMEOUT_SECONDS = 3.0
SETTING = "OPENBSS_HUB_CALLBACK_ALLOW"


class CallbackRefused(ValueError):
    """The callback may not be called: the message names the address and the rule."""


def parse_networks(value: str | Sequence[str]) -> tuple[IPNetwork, ...]:
    """The allow-list setting: networks in CIDR notation, comma-separated (a bare address is a /32 or /128)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(ipaddress.ip_network(item.strip(), strict=False) for item in items if item.strip())


def _kind(address: IPAddress) -> str | None:
    """Why an address is not public (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return _kind(address.ipv4_mapped)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "shared (carrier-grade NAT)"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def check_address(address: IPAddress, allow: Sequence[IPNetwork]) -> None:
    kind = _kind(address)
    if kind is None:
        return
    plain = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped else address
    if any(plain in net for net in allow if net.version == plain.version):
        return
    raise CallbackRefused(
        f"{address} is a {kind} address: callbacks to loopback, private, link-local, unspecified and other "
        f"non-public addresses are refused (an operator allows a network of its subscribers with {SETTING})")


@dataclass(frozen=True)
class Destination:
    """A callback URL checked against the rule, with the address to connect to."""

    url: str
    host: str
    address: IPAddress

    def pinned(self) -> tuple[str, dict[str, str], dict[str, str]]:
        """The URL with the checked address in place of the name, the ``Host`` header and the TLS server name:
        what a client needs to call this address without resolving the name again."""
        parts = urlsplit(self.url)
        literal = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        netloc = literal + (f":{parts.port}" if parts.port else "")
        url = parts._replace(netloc=netloc).geturl()
        host_header = parts.netloc.rpartition("@")[2]
        extensions = {"sni_hostname": self.host} if parts.scheme == "https" else {}
        return url, {"Host": host_header}, extensions


async def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS)
    except (OSError, TimeoutError) as exc:
        raise CallbackRefused(f"the host '{host}' cannot be resolved ({type(exc).__name__})") from exc
    out: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in out:
            out.append(address)
    if not out:
        raise CallbackRefused(f"the host '{host}' resolves to no address")
    return out


async def check_callback(url: str, allow: Sequence[IPNetwork]) -> Destination:
    """Resolve the callback's host and check every address it resolves to (any refused address refuses it: the
    connection could go to any of them)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise CallbackRefused(f"'{url}' is not an absolute http(s) URL")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise CallbackRefused(f"'{url}' has an invalid port") from exc
    addresses = await resolve(host, port)
    for address in addresses:
        try:
            check_address(address, allow)
        except CallbackRefused as exc:
            named = "" if str(address) == host.strip("[]") else f"the host '{host}' resolves to "
            raise CallbackRefused(f"{named}{exc}") from None
    return Destination(url=url, host=host, address=addresses[0])
