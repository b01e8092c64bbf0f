"""Where webhooks may go: public addresses only, checked after a name is resolved."""

import ipaddress

import pytest

from app.webhooks.targets import TargetRefused, refusal_reason, resolve_target


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.31.255.255",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "0.0.0.0",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "198.18.0.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "feff::1",
        "ff02::1",
        "ff0e::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
        "2002:a00:1::",
        "64:ff9b::7f00:1",
        "2001:db8::1",
    ],
)
def test_addresses_that_are_not_public_are_refused(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.215.14", "2001:4860:4860::8888"])
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


async def test_a_name_is_checked_after_it_is_resolved() -> None:
    with pytest.raises(TargetRefused, match="loopback"):
        await resolve_target("http://localhost:8080/hook", allow_private=False)


async def test_a_public_address_is_connected_to_as_given() -> None:
    target = await resolve_target("https://8.8.8.8/hook", allow_private=False)
    assert target.connect_url == "https://8.8.8.8/hook"
    assert target.host_header is None and target.sni_hostname is None


@pytest.mark.parametrize(
    "url", ["ftp://8.8.8.8/hook", "https://user:pw@8.8.8.8/hook", "https:///hook", "8.8.8.8"]
)
async def test_only_http_urls_with_a_host_and_no_credentials_are_accepted(url: str) -> None:
    with pytest.raises(TargetRefused):
        await resolve_target(url, allow_private=True)


async def test_the_private_target_setting_lets_loopback_through() -> None:
    target = await resolve_target("http://127.0.0.1:9/hook", allow_private=True)
    assert target.connect_url == "http://127.0.0.1:9/hook"
