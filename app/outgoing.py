"""Requests Bulletin makes to other servers (webhook deliveries, oEmbed look-ups and the
thumbnails they name): to public http(s) addresses only, checked after DNS resolution.

A URL is checked before every request, after resolving its host: a name that resolves to
a loopback, private, link-local, site-local, multicast, reserved or unspecified address
(IPv4 or IPv6, including IPv4 addresses carried inside IPv6 ones) is refused. The request
then connects to the very address that was checked, so the name cannot be re-resolved to
another one in between; TLS still verifies the certificate against the name.

`fetch` is the one way to GET something: no proxies from the environment, every redirect
checked like the first URL, a deadline for the whole exchange and a cap on the bytes read.
"""

import asyncio
import ipaddress
import socket
import ssl
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
NAT64_PREFIX = ipaddress.IPv6Network("64:ff9b::/96")
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


class TargetRefused(Exception):
    """The URL is not one Bulletin may send a request to; the message says why."""


class FetchFailed(Exception):
    """A GET did not bring back an answer to use; the message says why (for logs and cards)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where to connect for one request, and the name the server knows itself by."""

    connect_url: str
    # Set when connecting to a checked address instead of the name in the URL.
    host_header: str | None = None
    sni_hostname: str | None = None

    def request_options(self) -> tuple[dict[str, str], dict[str, str] | None]:
        """The headers and httpx extensions that send a request to this target."""
        headers = {"host": self.host_header} if self.host_header is not None else {}
        extensions = {"sni_hostname": self.sni_hostname} if self.sni_hostname else None
        return headers, extensions


def parse_outgoing_url(url: str) -> httpx.URL:
    """The URL, if it is absolute http(s) with a host and no credentials; TargetRefused if not."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise TargetRefused("it is not a valid URL") from error
    if parsed.scheme not in {"http", "https"}:
        raise TargetRefused("only http and https URLs are requested")
    if not parsed.host:
        raise TargetRefused("the URL needs a host")
    if parsed.userinfo:
        raise TargetRefused("credentials in the URL are not sent")
    return parsed


def refusal_reason(address: IPAddress) -> str | None:
    """Why no request may go to this address, or None when it is a public one."""
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


async def resolve_target(
    url: str, *, allow_private: bool, parsed: httpx.URL | None = None, what: str = "requests"
) -> Target:
    """Resolve the URL's host and check every address; TargetRefused names the problem.

    Resolving can take a while: callers bound it with a timeout. `what` names the
    requests in the refusal ("webhooks go to public addresses only").
    """
    parsed = parsed if parsed is not None else parse_outgoing_url(url)
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
            raise TargetRefused(f"{reason}; {what} go to public addresses only")
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


@dataclass(frozen=True, slots=True)
class Fetched:
    url: str  # after redirects
    content_type: str
    body: bytes


def outgoing_client(
    timeout: httpx.Timeout, user_agent: str, tls: ssl.SSLContext | None
) -> httpx.AsyncClient:
    """An HTTP client that follows no redirect by itself and ignores proxy variables."""
    return httpx.AsyncClient(
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        verify=tls or True,
        headers={"user-agent": user_agent},
    )


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    allow_private: bool,
    max_bytes: int,
    max_redirects: int = 3,
    accept: str = "*/*",
) -> Fetched:
    """GET `url` through checked addresses, reading at most `max_bytes` of a 200 answer.

    Raises FetchFailed for anything else (refused target, error status, too large, network
    failure). The caller bounds the whole exchange with a deadline."""
    for _hop in range(max_redirects + 1):
        try:
            parsed = parse_outgoing_url(url)
            target = await resolve_target(url, allow_private=allow_private, parsed=parsed)
        except TargetRefused as refused:
            raise FetchFailed(f"refused: {refused}") from None
        headers, extensions = target.request_options()
        try:
            async with client.stream(
                "GET",
                target.connect_url,
                headers={**headers, "accept": accept},
                extensions=extensions,
            ) as response:
                if response.status_code in REDIRECT_STATUSES:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchFailed(f"{response.status_code} without a Location")
                    url = str(parsed.join(location))
                    continue
                if response.status_code != 200:
                    raise FetchFailed(f"the server answered {response.status_code}")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise FetchFailed(f"the answer is over {max_bytes} bytes")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise FetchFailed(f"the answer is over {max_bytes} bytes")
                return Fetched(
                    url=url,
                    content_type=response.headers.get("content-type", ""),
                    body=bytes(body),
                )
        except httpx.TimeoutException:
            raise FetchFailed("no answer in time") from None
        except httpx.HTTPError as failure:
            raise FetchFailed(f"{type(failure).__name__}: {failure}".rstrip(": ")) from None
    raise FetchFailed(f"more than {max_redirects} redirects")
