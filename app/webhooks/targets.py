"""Where webhooks may point: public http(s) addresses only, checked after DNS resolution.

A webhook URL is checked when it is registered and again before every delivery,
after resolving its host: a name that later resolves to a loopback, private,
link-local, site-local, multicast, reserved or unspecified address (IPv4 or
IPv6, including IPv4 addresses carried inside IPv6 ones) is refused. The
delivery then connects to the very address that was checked, so the name
cannot be re-resolved to another one in between; TLS still verifies the
certificate against the name.
"""

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")


class TargetRefused(Exception):
    """The URL is not one webhooks may be sent to; the message says why."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect for one delivery, and the name the receiver knows itself by."""

    connect_url: str
    # Set when connecting to a checked address instead of the name in the URL.
    host_header: str | None = None
    sni_hostname: str | None = None


def parse_webhook_url(url: str) -> httpx.URL:
    """The URL, if it is absolute http(s) with a host and no credentials; TargetRefused if not."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise TargetRefused("it is not a valid URL") from error
    if parsed.scheme not in {"http", "https"}:
        raise TargetRefused("only http and https URLs can receive webhooks")
    if not parsed.host:
        raise TargetRefused("the URL needs a host")
    if parsed.userinfo:
        raise TargetRefused("credentials in the URL are not stored; receivers verify signatures")
    return parsed


def refusal_reason(address: IPAddress) -> str | None:
    """Why webhooks may not go to this address, or None when it is a public one."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        reason = refusal_reason(embedded)
        return None if reason is None else f"{address} carries {embedded}: {reason}"
    for flag, kind in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        # fec0::/10, deprecated but still routed inside some networks; is_global misses it.
        ("is_site_local", "site-local"),
        ("is_reserved", "reserved"),
    ):
        # IPv4 addresses have no is_site_local.
        if getattr(address, flag, False):
            return f"{address} is a {kind} address"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in NAT64_PREFIX:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


async def resolve_target(url: str, *, allow_private: bool) -> Target:
    """Resolve the URL's host and check every address; TargetRefused names the problem.

    Resolving can take a while: callers bound it with a timeout.
    """
    parsed = parse_webhook_url(url)
    if allow_private:
        return Target(connect_url=url)
    host = parsed.host
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = await _resolve(host, parsed.port or (443 if parsed.scheme == "https" else 80))
    for address in addresses:
        reason = refusal_reason(address)
        if reason is not None:
            raise TargetRefused(f"{reason}; webhooks go to public addresses only")
    chosen = addresses[0]
    if str(chosen) == host:
        return Target(connect_url=url)
    return Target(
        connect_url=str(parsed.copy_with(host=str(chosen))),
        host_header=parsed.netloc.decode("ascii"),
        sni_hostname=parsed.raw_host.decode("ascii") if parsed.scheme == "https" else None,
    )


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise TargetRefused(f"the host {host!r} could not be resolved") from error
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # Scoped IPv6 addresses come back as "fe80::1%eth0".
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise TargetRefused(f"the host {host!r} has no addresses")
    return addresses
