"""Re-encrypt every encrypted column with the first key of FIELD_ENCRYPTION_KEYS.

Rotating a key: put the new key first in FIELD_ENCRYPTION_KEYS (keep the old one after it, so
existing values still decrypt), deploy, run this command, then remove the old key. Values are
re-encrypted as stored (Fernet rotation), one row at a time under the row's lock, so a token that
a worker refreshes meanwhile is never overwritten with its older value.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import models, transaction
from django.db.models.functions import Cast

from autorespond.fields import EncryptedTextField, rotate_text


def encrypted_fields() -> list[tuple[type[models.Model], list[str]]]:
    """Every model with EncryptedTextField columns, and the names of those columns."""
    found = []
    for model in apps.get_models():
        names = [
            field.name
            for field in model._meta.concrete_fields
            if isinstance(field, EncryptedTextField)
        ]
        if names:
            found.append((model, names))
    return found


def rotate_row(model: type[models.Model], pk: Any, names: list[str]) -> int:
    """Re-encrypt one row's encrypted columns with the first key; returns the values rotated."""
    # Cast to a plain TextField reads the stored ciphertext instead of the decrypted value.
    raw = {f"raw_{name}": Cast(name, output_field=models.TextField()) for name in names}
    with transaction.atomic():
        row = (
            model._default_manager.select_for_update()
            .filter(pk=pk)
            .annotate(**raw)
            .values(*raw)
            .first()
        )
        if row is None:
            return 0
        # A Value with a TextField output is written as is, not encrypted a second time.
        changes = {
            name: models.Value(rotate_text(row[f"raw_{name}"]), output_field=models.TextField())
            for name in names
            if row[f"raw_{name}"]
        }
        if changes:
            model._default_manager.filter(pk=pk).update(**changes)
    return len(changes)


class Command(BaseCommand):
    help = "Re-encrypt every encrypted column with the first key of FIELD_ENCRYPTION_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model, names in encrypted_fields():
            pks = model._default_manager.order_by("pk").values_list("pk", flat=True)
            count = sum(rotate_row(model, pk, names) for pk in list(pks))
            total += count
            self.stdout.write(
                f"{model._meta.label}: re-encrypted {count} value(s) in {', '.join(names)}"
            )
        self.stdout.write(self.style.SUCCESS(f"Done: {total} value(s) use the first key now."))
