from django.apps import AppConfig


class SalesforceConfig(AppConfig):
    name = "integrations.salesforce"
    label = "salesforce"
    verbose_name = "Salesforce"

    def ready(self) -> None:
        from integrations.salesforce import checks  # noqa: F401  (registers system checks)
