"""Webhook secrets: encrypted at rest, and used to sign every delivery (Standard Webhooks).

A signing secret is a Standard Webhooks secret, `whsec_` followed by the base64 of
24 to 64 random bytes, so a receiver verifies with the `standardwebhooks` library
and the same string. It has to be kept to sign, so it is stored encrypted with
Fernet under a key derived from BULLETIN_SECRET_KEY, never in plain text.
"""

import base64
import binascii
import math
from datetime import UTC, datetime

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from standardwebhooks.webhooks import Webhook as StandardWebhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks marker, not a secret
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64
MAX_SECRET_CHARS = len(SECRET_PREFIX) + 4 * math.ceil(MAX_SECRET_BYTES / 3)
SECRET_FORMAT = (
    f"must be a Standard Webhooks secret: '{SECRET_PREFIX}' followed by the base64 of "
    f"{MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes"
)
# Binds the derived key to this one use of BULLETIN_SECRET_KEY.
KEY_PURPOSE = b"bulletin webhook signing secrets v1"


def check_signing_secret(value: str) -> str:
    """The secret as given, if it is a Standard Webhooks secret; ValueError otherwise."""
    if not value.startswith(SECRET_PREFIX) or len(value) > MAX_SECRET_CHARS:
        raise ValueError(SECRET_FORMAT)
    encoded = value[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValueError(SECRET_FORMAT) from error
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(SECRET_FORMAT)
    return value


class SecretUnreadable(Exception):
    """A stored secret that this BULLETIN_SECRET_KEY cannot decrypt (the key was changed)."""


class SecretBox:
    """Encrypts and decrypts signing secrets with a key derived from BULLETIN_SECRET_KEY."""

    def __init__(self, secret_key: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=KEY_PURPOSE).derive(
            secret_key.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(bytes(ciphertext)).decode()
        except InvalidToken as error:
            raise SecretUnreadable(
                "the signing secret cannot be decrypted with this BULLETIN_SECRET_KEY"
            ) from error


def signature_headers(
    secret: str, message_id: str, moment: datetime, payload: bytes
) -> dict[str, str]:
    """`webhook-id`, `webhook-timestamp` and `webhook-signature` for these exact body bytes."""
    # The library reads the moment as UTC wall time.
    moment = moment.astimezone(UTC)
    seconds = math.floor(moment.timestamp())
    signature = StandardWebhook(secret).sign(message_id, moment, payload.decode())
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(seconds),
        "webhook-signature": signature,
    }


def message_id(webhook_id: int, seq: int) -> str:
    """The `webhook-id` of one event for one webhook: the same on every retry, so receivers
    can drop a repeat."""
    return f"msg_bulletin_{webhook_id}_{seq}"
