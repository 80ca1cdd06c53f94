"""Tenant-given URLs reach public addresses only, unless OUTBOUND_ALLOWED_HOSTS allows a private one."""

from __future__ import annotations

import pytest

from shared.public_urls import UrlNotAllowedError, check_public_url


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/orders", "http://localhost/orders", "http://10.1.2.3/x", "http://192.168.0.10/x",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://0.0.0.0/x", "http://172.16.5.4/x",
])
def test_private_and_internal_addresses_are_refused(url):
    with pytest.raises(UrlNotAllowedError) as refused:
        check_public_url(url)
    assert refused.value.code == "url_not_allowed" and "OUTBOUND_ALLOWED_HOSTS" in refused.value.message


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "http:///nohost", "orders"])
def test_only_http_urls_with_a_host(url):
    with pytest.raises(UrlNotAllowedError):
        check_public_url(url)


def test_a_public_address_goes_and_the_allow_list_opens_a_private_one():
    assert check_public_url("https://8.8.8.8/resolve") == "8.8.8.8"
    assert check_public_url("http://127.0.0.1:9000/orders", allowed=["127.0.0.1/32"]) == "127.0.0.1"
    assert check_public_url("http://localhost:9000/orders", allowed=["localhost"]) in ("127.0.0.1", "::1")
    assert check_public_url("http://10.0.3.7/x", allowed=["10.0.0.0/16"]) == "10.0.3.7"
    with pytest.raises(UrlNotAllowedError):
        check_public_url("http://10.1.3.7/x", allowed=["10.0.0.0/16", "not a network"])


def test_a_name_that_does_not_resolve_is_refused_in_plain_words():
    with pytest.raises(UrlNotAllowedError) as refused:
        check_public_url("http://no-such-host.invalid/x")
    assert "cannot be resolved" in refused.value.message
