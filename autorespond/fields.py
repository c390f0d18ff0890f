"""An encrypted text field: values are Fernet tokens in the database, plain text in Python.

Written by hand because the maintained encrypted-field packages either pin old Django versions or
do not support key rotation; MultiFernet from `cryptography` does the cryptography.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


@cache
def _fernet_for(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty: set at least one Fernet key.")
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS must be url-safe base64 Fernet keys "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')."
        ) from exc


def field_fernet() -> MultiFernet:
    """The MultiFernet for the keys in settings: the first key encrypts, all of them decrypt."""
    return _fernet_for(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt_text(value: str) -> str:
    return field_fernet().encrypt(value.encode()).decode()


def decrypt_text(value: str) -> str:
    try:
        return field_fernet().decrypt(value.encode()).decode()
    except InvalidToken as exc:
        # Never include the stored value: it is a secret, even encrypted.
        raise ImproperlyConfigured(
            "An encrypted field could not be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        ) from exc


def rotate_text(value: str) -> str:
    """Re-encrypt a stored token with the first (newest) key."""
    return field_fernet().rotate(value.encode()).decode()


class EncryptedTextField(models.TextField):
    """Stores text encrypted with the project's field keys. Empty strings stay empty."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt_text(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(value)
