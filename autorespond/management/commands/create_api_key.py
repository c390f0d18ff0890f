"""`manage.py create_api_key NAME`: print a new ingestion API key, once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from autorespond.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for the ingestion API and print it once (only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Who the key is for, e.g. 'auto-respond-production'.")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        _, raw_key = api_key_create(name=name)
        self.stdout.write(raw_key)
        self.stderr.write("Store this key now: it cannot be shown again.")
