"""The values the sync passes between its steps: an item to sync, its planned write, its outcome.

See docs/architecture.md ("One attempt").
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from autorespond.models import Inquiry
from integrations.salesforce.api.errors import (
    SalesforceError,
    SalesforceTransientError,
)
from integrations.salesforce.api.headers import DuplicateRuleHeader, SoapHeaders
from integrations.salesforce.models import (
    InquirySync,
    SalesforceSettings,
    SyncStatus,
)
from integrations.salesforce.sync.mapping import (
    LeftOut,
    SalesforceFields,
    salesforce_fields,
)
from integrations.salesforce.sync.matching import (
    Match,
    PersonKeys,
)

if TYPE_CHECKING:
    from integrations.salesforce.sync.org_schema import OrgSchema

logger = logging.getLogger(__name__)

SUCCESS_STATUSES = (SyncStatus.CREATED, SyncStatus.UPDATED, SyncStatus.SKIPPED_EXISTING)
# How an inquiry relates to its record (InquirySync.detail["link"]): a created or matched record is
# the inquiry's own and is always updated; a skipped one was left alone and is matched again next
# time, so "Create only for new leads" keeps leaving it alone.
LINK_CREATED = "created"
LINK_MATCHED = "matched"
LINK_SKIPPED = "skipped"


@dataclass
class SyncItem:
    """One inquiry that passed the gates, with what applies to it."""

    sync: InquirySync
    inquiry: Inquiry
    settings: SalesforceSettings
    headers: SoapHeaders
    keys: PersonKeys
    source_name: str
    region: str
    # A Contact's company: its Account's Name and claim/lock key ("" for Leads and for
    # inquiries without a company).
    account_name: str = ""
    account_key: str = ""
    # The org's schema (describe), read once per connection (`org_schema`).
    schema: OrgSchema | None = None
    # Fields Salesforce refused on an earlier write of this attempt, written again without.
    refused: dict[str, LeftOut] = field(default_factory=dict)

    def fields_for(self, sobject: str, *, for_update: bool) -> SalesforceFields:
        return salesforce_fields(
            inquiry=self.inquiry,
            sobject=sobject,
            for_update=for_update,
            source_name=self.source_name,
            phone_region=self.region,
            send_job_description=self.settings.send_job_description,
            include_source_name=self.settings.include_source_name,
            schema=self.schema,
            lead_source=self.settings.lead_source,
            lead_status=self.settings.lead_status,
            refused=self.refused,
        )


@dataclass
class PlannedWrite:
    """What to do for one item: create, update, skip, or wait (a busy person claim)."""

    item: SyncItem
    action: str  # "create" | "update" | "skip" | "busy" | "follow"
    sobject: str
    record_id: str = ""
    match: Match | None = None
    link: str = ""  # the link the record will have once written (LINK_*)
    # Contact creates with a company: the Account found (or, once created, made) for it, and
    # whether it must be created with the Contact.
    account_id: str = ""
    create_account: bool = False
    account_created: bool = False
    # A create the org's duplicate rule flagged against another person's record, sent again
    # with the duplicate-rule header because the rule allows saving (see `matching`, rule 6).
    allow_duplicate: bool = False

    @property
    def write_headers(self) -> SoapHeaders:
        """The source's headers, plus DuplicateRuleHeader allowSave=true for `allow_duplicate`."""
        headers = self.item.headers
        if not self.allow_duplicate:
            return headers
        rule = headers.duplicate_rule or DuplicateRuleHeader()
        return dataclasses.replace(
            headers, duplicate_rule=dataclasses.replace(rule, allow_save=True)
        )

    # A busy plan's wait before its next pass (seconds), when not the usual one, and why it
    # waits, when not the usual reason (another sync creating the person's record).
    retry_in: float | None = None
    busy_message: str = ""
    # A "follow" plan: the same person's create earlier in the batch, whose new record this
    # item then updates (or skips, with Create only for new leads) in the same pass.
    leader: PlannedWrite | None = None
    follow_rank: int = 0  # 1 for the first follower of its leader, 2 for the next, …


@dataclass
class WriteOutcome:
    """How one item ended; `error` is set when it did not succeed."""

    item: SyncItem
    status: str
    sobject: str = ""
    record_id: str = ""
    link: str = ""
    error: SalesforceError | None = None
    retry_in: float | None = None  # a retry with a fixed delay (no backoff)
    detail: dict[str, Any] = field(default_factory=dict)


class PersonBusy(SalesforceTransientError):
    """Another worker claimed this person's key for a create moments ago and has not finished."""


def is_linked(sync: InquirySync, org_id: str) -> bool:
    return (
        bool(sync.record_id)
        and sync.org_id == org_id
        and sync.detail.get("link", LINK_CREATED) != LINK_SKIPPED
    )
