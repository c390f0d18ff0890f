from django.apps import AppConfig
from django.db.backends.signals import connection_created


class AutorespondConfig(AppConfig):
    name = "autorespond"

    def ready(self) -> None:
        from autorespond.db import install_prepared_statement_recovery

        # Every PostgreSQL connection survives a migration's stale prepared statements.
        connection_created.connect(
            install_prepared_statement_recovery, dispatch_uid="prepared-statement-recovery"
        )
