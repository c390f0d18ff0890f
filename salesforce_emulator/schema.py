"""The standard objects the emulator knows: fields, types, lengths, required flags, picklists.

Lengths and required fields come from ../shared/SALESFORCE.md section 3 (Salesforce Field
Reference for Lead and Contact). Where that file says UNCONFIRMED the value is still used, but it
is a plain number in this table so it is easy to change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ids import KEY_PREFIXES

# Default picklists of a new org (SALESFORCE.md section 3, "Default picklist values").
LEAD_SOURCE_VALUES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
LEAD_STATUS_VALUES = [
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
]
DEFAULT_LEAD_STATUS = "Open - Not Contacted"
CASE_STATUS_VALUES = ["New", "Working", "Escalated", "Closed"]
CASE_ORIGIN_VALUES = ["Phone", "Email", "Web"]
CASE_PRIORITY_VALUES = ["High", "Medium", "Low"]


@dataclass(frozen=True)
class FieldDef:
    """One field of an sObject as describe() reports it."""

    name: str
    type: str  # id, string, textarea, email, phone, url, picklist, reference, boolean, datetime
    label: str
    length: int = 0
    required: bool = False  # not nillable, createable and not defaulted: REQUIRED_FIELD_MISSING
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    picklist: tuple[str, ...] = ()
    picklist_default: str | None = None
    reference_to: tuple[str, ...] = ()
    name_field: bool = False
    # An org feature the field exists under (e.g. "state_country_picklists": the *Code fields);
    # None = always there. Orgs without the feature answer INVALID_FIELD for it, as Salesforce
    # does for a column that does not exist.
    feature: str | None = None
    # The controlling field of a dependent picklist (StateCode is controlled by CountryCode).
    controller: str | None = None
    # describe's compoundFieldName: the address or name compound field this one belongs to.
    compound: str | None = None

    @property
    def nillable(self) -> bool:
        return not self.required and self.type not in ("id", "boolean") and not self.name_field

    @property
    def is_text(self) -> bool:
        return self.type in ("string", "textarea", "email", "phone", "url", "picklist")


def _s(name: str, label: str, length: int, **kw: object) -> FieldDef:
    return FieldDef(name, "string", label, length, **kw)  # type: ignore[arg-type]


def _system_fields() -> list[FieldDef]:
    return [
        FieldDef("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
        FieldDef(
            "LastModifiedDate",
            "datetime",
            "Last Modified Date",
            createable=False,
            updateable=False,
        ),
        FieldDef("IsDeleted", "boolean", "Deleted", createable=False, updateable=False),
    ]


def _id() -> FieldDef:
    return FieldDef("Id", "id", "Record ID", 18, createable=False, updateable=False)


def _address(prefix: str, label_prefix: str, compound: str) -> list[FieldDef]:
    """An address's fields (SALESFORCE.md section 3 lengths), with the State and
    Country/Territory picklist code fields that exist only when the org turned that feature on
    (docs/salesforce-facts.md section 3a)."""
    label = f"{label_prefix} " if label_prefix else ""
    code = "state_country_picklists"
    return [
        FieldDef(f"{prefix}Street", "textarea", f"{label}Street", 255, compound=compound),
        _s(f"{prefix}City", f"{label}City", 40, compound=compound),
        _s(f"{prefix}State", f"{label}State/Province", 80, compound=compound),
        _s(f"{prefix}PostalCode", f"{label}Zip/Postal Code", 20, compound=compound),
        _s(f"{prefix}Country", f"{label}Country", 80, compound=compound),
        FieldDef(
            f"{prefix}StateCode",
            "picklist",
            f"{label}State/Province Code",
            255,
            feature=code,
            controller=f"{prefix}CountryCode",
            compound=compound,
        ),
        FieldDef(
            f"{prefix}CountryCode",
            "picklist",
            f"{label}Country Code",
            255,
            feature=code,
            compound=compound,
        ),
    ]


def _owner() -> FieldDef:
    return FieldDef(
        "OwnerId",
        "reference",
        "Owner ID",
        18,
        defaulted_on_create=True,
        reference_to=("User", "Group"),
    )


LEAD_FIELDS = [
    _id(),
    _s("FirstName", "First Name", 40, compound="Name"),
    _s("LastName", "Last Name", 80, required=True, compound="Name"),
    FieldDef("Name", "string", "Full Name", 121, createable=False, updateable=False),
    _s("Title", "Title", 128),
    _s("Company", "Company", 255, required=True),
    FieldDef("Email", "email", "Email", 80),
    FieldDef("Phone", "phone", "Phone", 40),
    FieldDef("MobilePhone", "phone", "Mobile Phone", 40),
    FieldDef("Fax", "phone", "Fax", 40),
    FieldDef("Website", "url", "Website", 255),
    *_address("", "", "Address"),
    FieldDef("Description", "textarea", "Description", 32000),
    FieldDef("LeadSource", "picklist", "Lead Source", 40, picklist=tuple(LEAD_SOURCE_VALUES)),
    FieldDef("Industry", "picklist", "Industry", 40),
    FieldDef(
        "Status",
        "picklist",
        "Status",
        40,
        defaulted_on_create=True,
        picklist=tuple(LEAD_STATUS_VALUES),
        picklist_default=DEFAULT_LEAD_STATUS,
    ),
    _owner(),
    FieldDef("IsConverted", "boolean", "Converted", createable=False, updateable=False),
    FieldDef("ConvertedDate", "datetime", "Converted Date", createable=False, updateable=False),
    FieldDef(
        "ConvertedContactId",
        "reference",
        "Converted Contact ID",
        18,
        createable=False,
        updateable=False,
        reference_to=("Contact",),
    ),
    FieldDef(
        "ConvertedAccountId",
        "reference",
        "Converted Account ID",
        18,
        createable=False,
        updateable=False,
        reference_to=("Account",),
    ),
    *_system_fields(),
]

CONTACT_FIELDS = [
    _id(),
    _s("FirstName", "First Name", 40, compound="Name"),
    _s("LastName", "Last Name", 80, required=True, compound="Name"),
    FieldDef("Name", "string", "Full Name", 121, createable=False, updateable=False),
    _s("Title", "Title", 128),
    _s("Department", "Department", 80),
    FieldDef("AccountId", "reference", "Account ID", 18, reference_to=("Account",)),
    FieldDef("Email", "email", "Email", 80),
    FieldDef("Phone", "phone", "Business Phone", 40),
    FieldDef("MobilePhone", "phone", "Mobile Phone", 40),
    FieldDef("HomePhone", "phone", "Home Phone", 40),
    FieldDef("Fax", "phone", "Business Fax", 40),
    *_address("Mailing", "Mailing", "MailingAddress"),
    FieldDef("Description", "textarea", "Contact Description", 32000),
    FieldDef("LeadSource", "picklist", "Lead Source", 40, picklist=tuple(LEAD_SOURCE_VALUES)),
    _owner(),
    *_system_fields(),
]

ACCOUNT_FIELDS = [
    _id(),
    _s("Name", "Account Name", 255, required=True),
    FieldDef("Phone", "phone", "Account Phone", 40),
    FieldDef("Fax", "phone", "Account Fax", 40),
    FieldDef("Website", "url", "Website", 255),
    FieldDef("Industry", "picklist", "Industry", 40),
    *_address("Billing", "Billing", "BillingAddress"),
    FieldDef("Description", "textarea", "Account Description", 32000),
    _owner(),
    *_system_fields(),
]

CASE_FIELDS = [
    _id(),
    FieldDef("CaseNumber", "string", "Case Number", 30, createable=False, updateable=False),
    _s("Subject", "Subject", 255),
    FieldDef("Description", "textarea", "Description", 32000),
    _s("SuppliedName", "Web Name", 80),
    FieldDef("SuppliedEmail", "email", "Web Email", 80),
    FieldDef("SuppliedPhone", "phone", "Web Phone", 40),
    _s("SuppliedCompany", "Web Company", 80),
    FieldDef("ContactId", "reference", "Contact ID", 18, reference_to=("Contact",)),
    FieldDef("AccountId", "reference", "Account ID", 18, reference_to=("Account",)),
    FieldDef(
        "Status",
        "picklist",
        "Status",
        40,
        defaulted_on_create=True,
        picklist=tuple(CASE_STATUS_VALUES),
        picklist_default="New",
    ),
    FieldDef("Origin", "picklist", "Case Origin", 40, picklist=tuple(CASE_ORIGIN_VALUES)),
    FieldDef("Type", "picklist", "Case Type", 40),
    FieldDef(
        "Priority",
        "picklist",
        "Priority",
        40,
        defaulted_on_create=True,
        picklist=tuple(CASE_PRIORITY_VALUES),
        picklist_default="Medium",
    ),
    _owner(),
    *_system_fields(),
]

# Read-only objects the service may query (owner pickers, rule pickers). Rows are synthesised by
# the org from its users, queues and assignment rules.
USER_FIELDS = [
    _id(),
    FieldDef("Username", "string", "Username", 80, createable=False, updateable=False),
    FieldDef("FirstName", "string", "First Name", 40, createable=False, updateable=False),
    FieldDef("LastName", "string", "Last Name", 80, createable=False, updateable=False),
    FieldDef("Name", "string", "Full Name", 121, createable=False, updateable=False),
    FieldDef("Email", "email", "Email", 128, createable=False, updateable=False),
    FieldDef("IsActive", "boolean", "Active", createable=False, updateable=False),
]
GROUP_FIELDS = [
    _id(),
    FieldDef("Name", "string", "Name", 40, createable=False, updateable=False),
    FieldDef("DeveloperName", "string", "Developer Name", 80, createable=False, updateable=False),
    FieldDef("Type", "string", "Type", 40, createable=False, updateable=False),
    FieldDef("Email", "email", "Email", 255, createable=False, updateable=False),
]
# Salesforce Field Reference "AssignmentRule": Active, CreatedById, CreatedDate, Id,
# LastModifiedById, LastModifiedDate, Name (string 120), SobjectType (restricted picklist 40,
# "Case or Lead"), SystemModstamp. The emulator keeps the ones a rule picker reads.
ASSIGNMENT_RULE_FIELDS = [
    _id(),
    FieldDef("Name", "string", "Name", 120, createable=False, updateable=False),
    FieldDef(
        "SobjectType",
        "picklist",
        "SObject Type",
        40,
        createable=False,
        updateable=False,
        picklist=("Case", "Lead"),
    ),
    FieldDef("Active", "boolean", "Active", createable=False, updateable=False),
    FieldDef("CreatedDate", "datetime", "Created Date", createable=False, updateable=False),
    FieldDef(
        "LastModifiedDate", "datetime", "Last Modified Date", createable=False, updateable=False
    ),
]


@dataclass
class SObjectDef:
    """One sObject type."""

    name: str
    label: str
    label_plural: str
    fields: list[FieldDef]
    writable: bool = True
    by_lower: dict[str, FieldDef] = field(init=False)

    def __post_init__(self) -> None:
        self.by_lower = {f.name.lower(): f for f in self.fields}

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    def field(self, name: str) -> FieldDef | None:
        """Field names are case-insensitive in every Salesforce API."""
        return self.by_lower.get(name.lower())


SOBJECTS: dict[str, SObjectDef] = {
    d.name: d
    for d in [
        SObjectDef("Lead", "Lead", "Leads", LEAD_FIELDS),
        SObjectDef("Contact", "Contact", "Contacts", CONTACT_FIELDS),
        SObjectDef("Account", "Account", "Accounts", ACCOUNT_FIELDS),
        SObjectDef("Case", "Case", "Cases", CASE_FIELDS),
        SObjectDef("User", "User", "Users", USER_FIELDS, writable=False),
        SObjectDef("Group", "Group", "Groups", GROUP_FIELDS, writable=False),
        SObjectDef(
            "AssignmentRule",
            "Assignment Rule",
            "Assignment Rules",
            ASSIGNMENT_RULE_FIELDS,
            writable=False,
        ),
    ]
}
SOBJECTS_LOWER = {name.lower(): d for name, d in SOBJECTS.items()}


def sobject_def(name: str) -> SObjectDef | None:
    """Look an sObject type up case-insensitively (as Salesforce does)."""
    return SOBJECTS_LOWER.get(name.lower())
