"""Signing with Standard Webhooks, and the signing secrets sealed at rest."""

from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook as StandardWebhook

from app.webhooks.signing import (
    SecretBox,
    SecretUnreadable,
    check_signing_secret,
    signature_headers,
)
from tests.support.factories import SECRET_KEY
from tests.support.webhook_receiver import new_signing_secret


def test_a_signature_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_signing_secret()
    payload = '{"seq":7,"type":"entry.created","blog":"count-night","html":"<p>é</p>"}'.encode()
    headers = signature_headers(secret, "msg_bulletin_1_7", datetime.now(UTC), payload)

    assert StandardWebhook(secret).verify(payload, headers)["seq"] == 7
    with pytest.raises(Exception, match="signature"):
        StandardWebhook(new_signing_secret()).verify(payload, headers)


@pytest.mark.parametrize(
    "secret",
    ["whsec_", "whsec_QUJD", "not-a-standard-secret-at-all-0123456789", "whsec_####"],
)
def test_only_standard_webhooks_secrets_of_enough_bytes_are_accepted(secret: str) -> None:
    with pytest.raises(ValueError, match="Standard Webhooks"):
        check_signing_secret(secret)


def test_unpadded_standard_webhooks_secrets_are_accepted() -> None:
    secret = new_signing_secret().rstrip("=")
    assert check_signing_secret(secret) == secret


def test_secrets_are_sealed_and_only_the_same_key_opens_them() -> None:
    secret = new_signing_secret()
    sealed = SecretBox(SECRET_KEY).seal(secret)

    assert secret.encode() not in sealed
    assert SecretBox(SECRET_KEY).open(sealed) == secret
    with pytest.raises(SecretUnreadable):
        SecretBox(SECRET_KEY + "-changed").open(sealed)
