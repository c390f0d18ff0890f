from django.apps import AppConfig


class SalesforceConfig(AppConfig):
    name = "integrations.salesforce"
    label = "salesforce"
    verbose_name = "Salesforce"

    def ready(self) -> None:
        # Imported when the app registry is ready: models must be loaded before these modules.
        # `tasks` registers the Celery tasks in every process, not only the worker: services
        # send them by name (task_queue), and a web process that never imported `tasks` would
        # find no task of that name, so each inquiry would wait for the sweeper.
        from autorespond import hooks
        from integrations.salesforce import (
            checks,  # noqa: F401  (registers system checks)
            tasks,  # noqa: F401  (registers the Celery tasks)
        )
        from integrations.salesforce.card.status import source_status_for_home
        from integrations.salesforce.sync.intake import (
            inquiry_sync_status,
            on_inquiry_changed,
            sync_request_write,
        )

        # ready() may run more than once (Django's docs say so): register each callable once.
        if not any(w.handler is on_inquiry_changed for w in hooks.inquiry_changed_writes):
            hooks.inquiry_changed_writes.append(sync_request_write())
        if inquiry_sync_status not in hooks.inquiry_sync_status_providers:
            hooks.inquiry_sync_status_providers.append(inquiry_sync_status)
        if source_status_for_home not in hooks.source_status_providers:
            hooks.source_status_providers.append(source_status_for_home)
