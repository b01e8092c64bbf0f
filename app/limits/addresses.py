"""Who a limit counts against: the client's address key, and the bearer secret it sent."""

import ipaddress


def client_key(host: str | None) -> str:
    """The address a limit counts against: IPv4 as it is, IPv6 by its /64.

    One subscriber usually holds a whole /64, so counting single IPv6 addresses
    would let one client appear as billions.
    """
    if not host:
        return "unknown"
    if ":" not in host:
        return host[:64]  # IPv4 (or a name), as the socket or a trusted proxy gave it
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an `Authorization: Bearer ...` header, if that is what was sent."""
    if not authorization:
        return None
    scheme, _, secret = authorization.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        return None
    return secret
