"""``GET /services/data/vNN.0/sobjects/{Lead,Contact,Account,…}/describe`` for one org.

The payload follows Salesforce's DescribeSObjectResult / DescribeFieldResult / PicklistEntry (SF
SOAP API "describeSObjects() DescribeSObjectResult", REST "sObject Describe"; PicklistEntry:
``active``, ``defaultValue``, ``label``, ``validFor``, ``value``). It is the org's own schema:
fields that exist only under a feature (State and Country picklists) appear only when it is on,
picklist values are the admin's, and ``restrictedPicklist`` says which refuse other values.
Only the keys clients commonly read are given; each is computed, none is a fixed placeholder
apart from ``custom``/``calculated``/``unique`` (false for every standard field modelled here).
"""

from __future__ import annotations

from typing import Any

from . import picklists
from .picklists import SchemaConfig
from .schema import FieldDef, SObjectDef

# describe's soapType per field type (SOAP API "Field Types").
_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "datetime": "xsd:dateTime",
}
# Salesforce reports byteLength as three bytes per character for text fields.
_BYTES_PER_CHAR = 3


def describe_sobject(
    config: SchemaConfig, sobject: SObjectDef, version: str, *, can_create: bool = True
) -> dict[str, Any]:
    """The DescribeSObjectResult of one object as this org (and caller) sees it.

    ``can_create`` False (the caller's profile lacks Create) makes the object and its fields
    ``createable: false`` (UNCONFIRMED for the fields).
    """
    base = f"/services/data/v{version}/sobjects/{sobject.name}"
    fields = [
        describe_field(config, sobject, f, can_create=can_create)
        for f in sobject.fields
        if config.has(f)
    ]
    return {
        "name": sobject.name,
        "label": sobject.label,
        "labelPlural": sobject.label_plural,
        "keyPrefix": sobject.key_prefix,
        "createable": sobject.writable and can_create,
        "updateable": sobject.writable,
        "deletable": sobject.writable,
        "queryable": True,
        "retrieveable": True,
        "searchable": sobject.writable,
        "layoutable": sobject.writable,
        "custom": False,
        "customSetting": False,
        "fields": fields,
        "urls": {
            "sobject": base,
            "describe": f"{base}/describe",
            "rowTemplate": f"{base}/{{ID}}",
        },
    }


def describe_field(
    config: SchemaConfig, sobject: SObjectDef, f: FieldDef, *, can_create: bool = True
) -> dict[str, Any]:
    """One DescribeFieldResult."""
    has_length = f.is_text or f.type in ("id", "reference")
    entries = picklists.entries(config, sobject.name, f)
    return {
        "name": f.name,
        "label": f.label,
        "type": f.type,
        "soapType": _SOAP_TYPES.get(f.type, "xsd:string"),
        "length": f.length if has_length else 0,
        "byteLength": f.length * _BYTES_PER_CHAR if has_length else 0,
        "digits": 0,
        "precision": 0,
        "scale": 0,
        "nillable": f.nillable,
        "createable": f.createable and sobject.writable and can_create,
        "updateable": f.updateable and sobject.writable,
        "defaultedOnCreate": f.defaulted_on_create or f.type == "boolean",
        "defaultValue": picklists.default_value(config, sobject.name, f),
        "nameField": f.name == "Name",
        "compoundFieldName": f.compound,
        "unique": False,
        "custom": False,
        "calculated": False,
        "caseSensitive": False,
        "externalId": False,
        "idLookup": f.name in ("Id", "Email") or f.type == "id",
        "filterable": f.type != "textarea",
        "sortable": f.type != "textarea",
        "groupable": f.type not in ("textarea", "datetime"),
        "htmlFormatted": False,
        "extraTypeInfo": "plaintextarea" if f.type == "textarea" else None,
        "referenceTo": list(f.reference_to),
        "relationshipName": _relationship_name(f),
        "picklistValues": [
            {
                "active": True,
                "defaultValue": e.default,
                "label": e.label,
                "validFor": e.valid_for,
                "value": e.value,
            }
            for e in entries
        ],
        "restrictedPicklist": picklists.is_restricted(config, sobject.name, f),
        "dependentPicklist": f.controller is not None,
        "controllerName": f.controller,
    }


def _relationship_name(f: FieldDef) -> str | None:
    if f.type != "reference" or not f.name.endswith("Id"):
        return None
    return f.name[:-2]
