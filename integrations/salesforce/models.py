"""What the Salesforce integration stores: per-source settings, OAuth connections and sync state."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from autorespond.fields import EncryptedTextField
from autorespond.models import Inquiry, Source


class RecordType(models.TextChoices):
    LEAD = "Lead", "Leads"
    CONTACT = "Contact", "Contacts"


class SalesforceSettings(models.Model):
    """A source's own Salesforce card. Labels and defaults are those of the product page.

    What applies to a source is resolved by `selectors.effective_salesforce_settings`, which
    follows "Inherit from parent" upwards.
    """

    source = models.OneToOneField(
        Source, on_delete=models.CASCADE, related_name="salesforce_settings"
    )
    enabled = models.BooleanField("Enable", default=False)
    inherit_from_parent = models.BooleanField("Inherit from parent", default=False)
    record_type = models.CharField(
        "Record type", max_length=7, choices=RecordType.choices, default=RecordType.LEAD
    )
    send_job_description = models.BooleanField("Include job description", default=False)
    only_with_contact_info = models.BooleanField(
        "Create customer only when contact info is captured", default=False
    )
    only_new_leads = models.BooleanField("Create only for new leads", default=False)
    include_source_name = models.BooleanField("Include source name", default=False)
    # The SOAP header options, in the canonical `HeaderName,property,value;…` form of
    # `api.headers`. The card's automation switches read and write this string.
    header_options = models.TextField("Advanced: API headers", blank=True, default="")
    # Lead source and Status written on every record (product page, "What gets synced"). Blank
    # means the org's own default: its "Web" Lead source value when it has one, and the Lead
    # Status picklist's default value. The choices offered are read from the org's describe.
    lead_source = models.CharField("Lead source", max_length=255, blank=True, default="")
    lead_status = models.CharField("Lead status", max_length=255, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "Salesforce settings"
        verbose_name_plural = "Salesforce settings"

    def __str__(self) -> str:
        return f"Salesforce settings of {self.source}"


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    SANDBOX = "sandbox", "Sandbox"


class ConnectionStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    NEEDS_RECONNECT = "needs_reconnect", "Needs reconnect"


class SalesforceConnection(models.Model):
    """A source's OAuth connection to one Salesforce org, as one Salesforce user.

    Tokens are encrypted at rest. Disconnecting deletes the row, so no token outlives it.
    """

    source = models.OneToOneField(
        Source, on_delete=models.CASCADE, related_name="salesforce_connection"
    )
    environment = models.CharField(
        max_length=10, choices=Environment.choices, default=Environment.PRODUCTION
    )
    # Where tokens are refreshed and revoked: login/test.salesforce.com or the org's My Domain.
    login_url = models.URLField()
    instance_url = models.URLField()
    org_id = models.CharField(max_length=18)
    user_id = models.CharField(max_length=18)
    username = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    access_token = EncryptedTextField()
    refresh_token = EncryptedTextField(blank=True, default="")
    status = models.CharField(
        max_length=20, choices=ConnectionStatus.choices, default=ConnectionStatus.CONNECTED
    )
    status_reason = models.TextField(blank=True, default="")
    connected_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    connected_at = models.DateTimeField(auto_now_add=True)
    token_refreshed_at = models.DateTimeField(null=True, blank=True)
    last_validated_at = models.DateTimeField(null=True, blank=True)
    last_validation_ok = models.BooleanField(null=True, blank=True)
    last_validation_message = models.TextField(blank=True, default="")
    # The org's API usage as Salesforce last reported it (Sforce-Limit-Info / LimitInfoHeader).
    api_usage_used = models.PositiveIntegerField(null=True, blank=True)
    api_usage_max = models.PositiveIntegerField(null=True, blank=True)
    api_usage_updated_at = models.DateTimeField(null=True, blank=True)
    # Set while the org answers with outages (the per-org circuit breaker is open): the card and
    # the console show "Salesforce unavailable since …". Cleared when a probe succeeds.
    unavailable_since = models.DateTimeField(null=True, blank=True)
    # Set while the org's syncs wait because its daily API usage passed the configured share:
    # "Waiting for API budget". Cleared when usage allows again.
    budget_paused_since = models.DateTimeField(null=True, blank=True)
    # The circuit breaker's probe schedule (engine-internal; the same on every connection of the
    # org): when the next probe may run, and how many probes failed since the org went down.
    breaker_probe_at = models.DateTimeField(null=True, blank=True)
    breaker_failed_probes = models.PositiveIntegerField(default=0)
    # When the owner was emailed that the org passed 80 % of its daily API requests (one email
    # per crossing; cleared when usage falls back under the mark).
    budget_warned_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["org_id", "user_id"])]

    def __str__(self) -> str:
        return f"{self.username or self.user_id} @ {self.org_id} ({self.source})"

    @property
    def is_usable(self) -> bool:
        return self.status == ConnectionStatus.CONNECTED


class SyncStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    SKIPPED_EXISTING = "skipped_existing", "Skipped: already in Salesforce"
    WAITING_CONTACT_INFO = "waiting_contact_info", "Waiting for contact info"
    DISABLED = "disabled", "Not sent: integration disabled"
    WAITING_RECONNECT = "waiting_reconnect", "Waiting for reconnect"
    RETRYING = "retrying", "Retrying after a temporary error"
    WAITING_BUDGET = "waiting_budget", "Waiting for API budget"
    BLOCKED_DUPLICATE = "blocked_duplicate", "Blocked by your Salesforce duplicate rule"
    FAILED = "failed", "Failed"


#: The statuses a person may Retry (the card, the support console): a failure, and a create the
#: org's duplicate rule blocked (never retried by itself: the rule would block it again).
PERSON_RETRY_STATUSES = (SyncStatus.FAILED, SyncStatus.BLOCKED_DUPLICATE)


class InquirySync(models.Model):
    """The need to send one inquiry to Salesforce, and where it stands.

    The row, not a broker message, is the source of truth: `due_at` is set while the inquiry needs
    sending, and the periodic sweeper re-enqueues rows that are due and not leased by a worker.
    """

    inquiry = models.OneToOneField(
        Inquiry, on_delete=models.CASCADE, related_name="salesforce_sync"
    )
    status = models.CharField(max_length=24, choices=SyncStatus.choices, default=SyncStatus.PENDING)
    due_at = models.DateTimeField(null=True, blank=True, db_index=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # Who holds the lease (a random token per drain), so a heartbeat renews only its own leases.
    lease_token = models.CharField(max_length=32, blank=True, default="")
    # When a message for this row was last sent to the broker: the sweeper re-sends only rows
    # that are due and were not enqueued recently, so it never piles up copies of one message.
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # Every change of the inquiry bumps requested_version; a sync records the version it sent, so
    # a change that arrives while a sync runs is sent by another pass.
    requested_version = models.PositiveIntegerField(default=0)
    synced_version = models.PositiveIntegerField(default=0)
    # The Salesforce record this inquiry is linked to, once created or matched. A linked inquiry
    # always updates this record, whatever the record type setting says later.
    org_id = models.CharField(max_length=18, blank=True, default="")
    sobject = models.CharField(max_length=40, blank=True, default="")
    record_id = models.CharField(max_length=18, blank=True, default="")
    attempt_count = models.PositiveIntegerField(default=0)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=80, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_fields = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"sync of {self.inquiry_id}: {self.status}"


class SyncAttempt(models.Model):
    """One try at sending an inquiry: how many API calls it cost and what came of it."""

    sync = models.ForeignKey(InquirySync, on_delete=models.CASCADE, related_name="attempts")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    api_calls = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=24, choices=SyncStatus.choices)
    error_code = models.CharField(max_length=80, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_fields = models.JSONField(default=list, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"attempt {self.pk} of sync {self.sync_id}: {self.outcome}"


class DrainMark(models.Model):
    """A drain of the source's org was asked for by an intake and has not yet looked for due
    rows (PostgreSQL only; `sync.intake` sets it, `sync.scheduling.drain_started` clears it).

    An intake that finds a fresh mark sends no wake-up: the drain it waits for will see its
    row. A plain integer, not a foreign key: the intake's statement already checks the source
    once, and a mark outliving its source is cleared by the next drain or ignored."""

    source_id = models.BigIntegerField(primary_key=True)
    marked_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"drain of source {self.source_id} asked for at {self.marked_at}"


class SalesforcePerson(models.Model):
    """The database constraint behind "one record per person": one row per org and match key.

    A match key is a normalised email (`email:ann@example.com`) or phone (`phone:+14155551212`).
    Creating a record first claims its keys here, so two workers cannot both create one person.
    """

    org_id = models.CharField(max_length=18)
    match_key = models.CharField(max_length=300)
    sobject = models.CharField(max_length=40, blank=True, default="")
    record_id = models.CharField(max_length=18, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["org_id", "match_key"], name="unique_person_per_org")
        ]

    def __str__(self) -> str:
        return f"{self.match_key} → {self.sobject} {self.record_id} @ {self.org_id}"


class SalesforceOrgSchema(models.Model):
    """What the describe of Lead, Contact and Account said about a connection's org (fields,
    lengths, picklists, State/Country picklists), as `org_schema.OrgSchema` stores it: read once
    per connection, again on Validate Connection and after Salesforce refused a field as unknown
    or a picklist value (`stale`)."""

    connection = models.OneToOneField(
        SalesforceConnection, on_delete=models.CASCADE, related_name="org_schema"
    )
    org_id = models.CharField(max_length=18)
    data = models.JSONField(default=dict)
    fetched_at = models.DateTimeField()
    stale = models.BooleanField(default=False)

    def __str__(self) -> str:
        return f"schema of {self.org_id} fetched {self.fetched_at:%Y-%m-%d %H:%M}"


class ValidationRun(models.Model):
    """One "Validate all": every connection that existed when it started, checked one by one.

    Started by a staff member from the support console or by the daily schedule (no user). The
    workers record one `ValidationRunResult` per connection; `done` and `failed` count them, so
    the console can show "n of N" while the run is under way.
    """

    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The connections to check, fixed at the start so that "n of N" has a stable N.
    connection_ids = models.JSONField(default=list, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"validation run {self.pk}: {self.done} of {self.total}"

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


class ValidationRunResult(models.Model):
    """The outcome of checking one connection in a run. Unique per run and connection, so a task
    that runs twice (a redelivered message) counts once."""

    run = models.ForeignKey(ValidationRun, on_delete=models.CASCADE, related_name="results")
    # Not a foreign key: the connection may be disconnected (deleted) later; the result stays.
    connection_id = models.PositiveIntegerField()
    description = models.CharField(max_length=400, blank=True, default="")
    # None: skipped, because the connection was disconnected before its turn came.
    ok = models.BooleanField(null=True)
    message = models.TextField(blank=True, default="")
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "connection_id"], name="unique_validation_result_per_connection"
            )
        ]

    def __str__(self) -> str:
        outcome = {True: "ok", False: "failed", None: "skipped"}[self.ok]
        return f"run {self.run_id}, connection {self.connection_id}: {outcome}"


class StaffActionKind(models.TextChoices):
    VALIDATED = "validated", "Validated a connection"
    VALIDATED_ALL = "validated_all", "Validated all connections"
    RETRIED = "retried", "Retried a sync"
    RETRIED_ALL = "retried_all", "Retried a connection's failed syncs"
    DISCONNECTED = "disconnected", "Disconnected a connection"


class StaffAction(models.Model):
    """The audit log of the support console: who did what to which connection or sync, when.

    The target is described in words as well as by id, because a disconnected connection is
    deleted and the log must still say what it was.
    """

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept as text so the log still names the actor after the user is deleted.
    actor_name = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=20, choices=StaffActionKind.choices)
    target = models.CharField(max_length=400)
    connection_id = models.PositiveIntegerField(null=True, blank=True)
    source_id = models.PositiveIntegerField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.actor_name or 'system'} {self.get_action_display().lower()}: {self.target}"
