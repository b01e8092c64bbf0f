"""Which address a request is counted against."""

from app.limits.addresses import client_key


def test_client_keys_group_ipv6_by_64_and_unwrap_mapped_ipv4() -> None:
    assert client_key("198.51.100.7") == "198.51.100.7"
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert client_key("::ffff:198.51.100.7") == "198.51.100.7"
    assert client_key(None) == "unknown"
