"""Salesforce SOAP partner API client: ``create`` and ``update`` with option headers.

Only SOAP carries ``EmailHeader`` (seeds 000 and 001). Envelopes are built with lxml and answers
parsed with defusedxml; why not a library, and how errors come back, is in docs/architecture.md
("SOAP").
"""

from __future__ import annotations

import datetime as dt
import decimal
import logging
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Types only; all parsing goes through defusedxml.
from xml.etree.ElementTree import Element, ParseError

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from lxml import etree

from .errors import SalesforceError, SalesforceTransientError, error_from_code, error_from_http
from .headers import SoapHeaders

__all__ = [
    "MAX_RECORDS_PER_CALL",
    "FieldValue",
    "SObjectRecord",
    "SaveError",
    "SaveResult",
    "SoapClient",
]

logger = logging.getLogger(__name__)

SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
SOBJECT_NS = "urn:sobject.partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

#: Salesforce's per-call limit for create and update.
MAX_RECORDS_PER_CALL = 200

FieldValue = str | bool | int | float | decimal.Decimal | dt.date | dt.datetime | None

# Field names become element names, so anything else would let data change the envelope.
# Standard names, custom fields (Foo__c) and namespaced ones (ns__Foo__c) all match.
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_API_VERSION = re.compile(r"\d{2,3}\.0")
# Characters XML 1.0 cannot carry at all (C0 controls other than tab/newline/CR, lone
# surrogates, U+FFFE/U+FFFF). Web-form text occasionally contains them; Salesforce could not
# store them either, so they are dropped rather than failing the whole inquiry.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class SObjectRecord:
    """One record to write: its sObject type, its fields and, for ``update``, its id."""

    sobject: str
    fields: Mapping[str, FieldValue]
    id: str | None = None


@dataclass(frozen=True)
class SaveError:
    """One per-record error, as Salesforce reports it in a SaveResult."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)
    # Ids of the existing records a duplicate rule matched (DUPLICATES_DETECTED only).
    duplicate_match_ids: list[str] = field(default_factory=list)
    # The duplicate rule's API name, and whether it lets a save with the header through.
    duplicate_rule: str = ""
    duplicate_allow_save: bool = False


@dataclass(frozen=True)
class SaveResult:
    """The outcome for one record, in the order the records were sent."""

    id: str | None
    success: bool
    errors: list[SaveError] = field(default_factory=list)


class SoapClient:
    """A partner-API SOAP client for one connection (instance URL + OAuth access token)."""

    def __init__(
        self,
        instance_url: str,
        access_token: str,
        *,
        api_version: str = "59.0",
        session: requests.Session,
        timeout: float = 30,
    ) -> None:
        if not _API_VERSION.fullmatch(api_version):
            raise ValueError(f"API version must look like '59.0', not {api_version!r}")
        self.instance_url = instance_url.rstrip("/")
        self.api_version = api_version
        self.endpoint = f"{self.instance_url}/services/Soap/u/{api_version}"
        self._access_token = access_token
        self._session = session
        self._timeout = timeout
        #: ``(used, limit)`` of the org's daily API requests from the last response, if any.
        self.last_api_usage: tuple[int, int] | None = None

    def __repr__(self) -> str:
        # The token is deliberately left out.
        return f"SoapClient(instance_url={self.instance_url!r}, api_version={self.api_version!r})"

    def create(
        self, records: Sequence[SObjectRecord], headers: SoapHeaders | None = None
    ) -> list[SaveResult]:
        """Create up to 200 records in one call; one SaveResult per record, in order."""
        for record in records:
            if record.id is not None:
                raise ValueError("create() records must not carry an id")
        return self._save("create", records, headers or SoapHeaders())

    def update(
        self, records: Sequence[SObjectRecord], headers: SoapHeaders | None = None
    ) -> list[SaveResult]:
        """Update up to 200 records (each with its id) in one call; one SaveResult per record.

        A field set to ``None`` is cleared (sent both as ``fieldsToNull``, Salesforce's
        documented way, and as an ``xsi:nil`` element).
        """
        for record in records:
            if not record.id:
                raise ValueError("update() records need an id")
        return self._save("update", records, headers or SoapHeaders())

    # --- The call ---------------------------------------------------------------------------

    def _save(
        self, operation: str, records: Sequence[SObjectRecord], headers: SoapHeaders
    ) -> list[SaveResult]:
        if not records:
            return []
        if len(records) > MAX_RECORDS_PER_CALL:
            # Chunking here would quietly split an AllOrNone transaction, so the caller chunks.
            raise ValueError(f"at most {MAX_RECORDS_PER_CALL} records per call, got {len(records)}")
        envelope = self._envelope(operation, records, headers)
        root = self._post(envelope, operation)
        body = _child(root, SOAPENV_NS, "Body")
        response = _child(body, PARTNER_NS, f"{operation}Response") if body is not None else None
        if response is None:
            raise SalesforceTransientError(
                "INVALID_RESPONSE", f"Salesforce's {operation} response has no {operation}Response"
            )
        results = [_save_result(el) for el in response if el.tag == f"{{{PARTNER_NS}}}result"]
        if len(results) != len(records):
            raise SalesforceTransientError(
                "INVALID_RESPONSE",
                f"Salesforce returned {len(results)} results for {len(records)} records",
            )
        return results

    def _post(self, envelope: bytes, operation: str) -> Element:
        """POST the envelope; return the parsed response envelope or raise a typed error."""
        logger.debug("Salesforce SOAP %s to %s", operation, self.endpoint)
        try:
            response = self._session.post(
                self.endpoint,
                data=envelope,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                timeout=self._timeout,
                # requests lets REQUESTS_CA_BUNDLE override session.verify unless verify is
                # passed per request; the session's own setting must win.
                verify=self._session.verify,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            # "from None": the cause carries the prepared request, whose body holds the token.
            raise error_from_http(exc, host=urlsplit(self.endpoint).netloc) from None

        try:
            root = safe_fromstring(response.content)
        except (ParseError, DefusedXmlException, ValueError):
            status = response.status_code
            if status < 300:
                # A 200 we cannot read: the records may or may not be saved; retrying is the
                # caller's call (it searches before it creates), so report it as transient.
                raise SalesforceTransientError(
                    "INVALID_RESPONSE", f"Salesforce answered HTTP {status} without SOAP"
                ) from None
            raise error_from_code(
                f"HTTP_{status}", f"Salesforce answered HTTP {status} without SOAP", None, status
            ) from None

        self._read_limit_info(root)
        body = _child(root, SOAPENV_NS, "Body")
        fault = _child(body, SOAPENV_NS, "Fault") if body is not None else None
        if fault is not None:
            raise _fault_error(fault)
        if response.status_code != 200:
            raise error_from_code(
                f"HTTP_{response.status_code}",
                f"Salesforce answered HTTP {response.status_code}",
                None,
                response.status_code,
            )
        return root

    def _read_limit_info(self, root: Element) -> None:
        header = _child(root, SOAPENV_NS, "Header")
        limit_header = _child(header, PARTNER_NS, "LimitInfoHeader") if header is not None else None
        if limit_header is None:
            return
        for info in limit_header:
            if _local(info.tag) != "limitInfo" or _text(info, "type") != "API REQUESTS":
                continue
            try:
                self.last_api_usage = (int(_text(info, "current")), int(_text(info, "limit")))
            except ValueError:
                logger.warning("Unreadable LimitInfoHeader from Salesforce")

    # --- Building the envelope --------------------------------------------------------------

    def _envelope(
        self, operation: str, records: Sequence[SObjectRecord], headers: SoapHeaders
    ) -> bytes:
        p = f"{{{PARTNER_NS}}}"
        s = f"{{{SOBJECT_NS}}}"
        envelope = etree.Element(
            f"{{{SOAPENV_NS}}}Envelope",
            nsmap={"soapenv": SOAPENV_NS, "urn": PARTNER_NS, "urn1": SOBJECT_NS, "xsi": XSI_NS},
        )
        header = etree.SubElement(envelope, f"{{{SOAPENV_NS}}}Header")
        session_header = etree.SubElement(header, p + "SessionHeader")
        etree.SubElement(session_header, p + "sessionId").text = self._access_token
        for option_header in headers:
            element = etree.SubElement(header, p + option_header.header_name)
            # Every property, defaults included, so the request says exactly what the
            # option string meant (e.g. DuplicateRuleHeader's runAsCurrentUser=true).
            for name, value in option_header.properties():
                etree.SubElement(element, p + name).text = _xml_value(value)

        body = etree.SubElement(envelope, f"{{{SOAPENV_NS}}}Body")
        call = etree.SubElement(body, p + operation)
        for record in records:
            sobject = etree.SubElement(call, p + "sObjects")
            # The partner WSDL's sObject sequence is type, fieldsToNull*, Id, then the fields.
            etree.SubElement(sobject, s + "type").text = _checked_name(record.sobject)
            fields = {_checked_name(name): value for name, value in record.fields.items()}
            if "Id" in fields:
                raise ValueError("pass the record id as SObjectRecord.id, not as a field")
            if operation == "update":
                for name, value in fields.items():
                    if value is None:
                        etree.SubElement(sobject, s + "fieldsToNull").text = name
                etree.SubElement(sobject, s + "Id").text = _clean(record.id or "")
            for name, value in fields.items():
                element = etree.SubElement(sobject, s + name)
                if value is None:
                    element.set(f"{{{XSI_NS}}}nil", "true")
                else:
                    element.text = _xml_value(value)
        return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


# --- Helpers -------------------------------------------------------------------------------------


def _checked_name(name: str) -> str:
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"not a Salesforce API name: {name!r}")
    return name


def _clean(text: str) -> str:
    return _XML_ILLEGAL.sub("", text)


def _xml_value(value: FieldValue) -> str:
    """The xsd text of a field value (partner API values are untyped text on the wire)."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            # A naive time would be read as GMT by Salesforce; make the caller decide.
            raise ValueError("datetime field values must be timezone-aware")
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot send {value!r} to Salesforce")
        return repr(value)
    if isinstance(value, int | decimal.Decimal):
        return str(value)
    if isinstance(value, str):
        return _clean(value)
    raise TypeError(f"unsupported field value type: {type(value).__name__}")


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child(parent: Element, namespace: str, name: str) -> Element | None:
    return parent.find(f"{{{namespace}}}{name}")


def _children(parent: Element, name: str) -> list[Element]:
    """Children by local name: Salesforce's response namespaces vary between elements."""
    return [child for child in parent if _local(child.tag) == name]


def _text(parent: Element, name: str) -> str:
    found = _children(parent, name)
    return (found[0].text or "") if found else ""


def _is_nil(element: Element) -> bool:
    return element.get(f"{{{XSI_NS}}}nil") in ("true", "1")


def _save_result(result: Element) -> SaveResult:
    id_elements = _children(result, "id")
    record_id = None
    if id_elements and not _is_nil(id_elements[0]) and id_elements[0].text:
        record_id = id_elements[0].text
    errors = [
        SaveError(
            status_code=_text(error, "statusCode"),
            message=_text(error, "message"),
            fields=[f.text for f in _children(error, "fields") if f.text],
            duplicate_match_ids=_duplicate_match_ids(error),
            duplicate_rule=_duplicate_text(error, "duplicateRule"),
            duplicate_allow_save=_duplicate_text(error, "allowSave") == "true",
        )
        for error in _children(result, "errors")
    ]
    return SaveResult(id=record_id, success=_text(result, "success") == "true", errors=errors)


def _duplicate_text(error: Element, name: str) -> str:
    """A scalar of a DuplicateError's ``duplicateResult`` (``duplicateRule``, ``allowSave``)."""
    for duplicate_result in _children(error, "duplicateResult"):
        return _text(duplicate_result, name).strip()
    return ""


def _duplicate_match_ids(error: Element) -> list[str]:
    """Ids in ``duplicateResult/matchResults/matchRecords/record/Id`` of a DuplicateError."""
    ids = []
    for duplicate_result in _children(error, "duplicateResult"):
        for match_result in _children(duplicate_result, "matchResults"):
            for match_record in _children(match_result, "matchRecords"):
                for record in _children(match_record, "record"):
                    record_id = _text(record, "Id")
                    if record_id and record_id not in ids:
                        ids.append(record_id)
    return ids


def _fault_error(fault: Element) -> SalesforceError:
    """The typed error for a SOAP fault.

    The code is ``detail/*/exceptionCode`` when Salesforce sends one; otherwise the local part
    of ``faultcode`` (``sf:INVALID_SESSION_ID`` -> ``INVALID_SESSION_ID``, ``soapenv:Client`` ->
    ``Client``). SOAP faults always come with HTTP 500, so the status is not passed on.
    """
    code = ""
    message = ""
    detail = _children(fault, "detail")
    if detail:
        for api_fault in detail[0]:
            code = _text(api_fault, "exceptionCode")
            message = _text(api_fault, "exceptionMessage")
            if code:
                break
    if not code:
        code = _text(fault, "faultcode").rpartition(":")[2] or "UNKNOWN_EXCEPTION"
    if not message:
        message = _text(fault, "faultstring")
        # faultstring repeats the code: "INVALID_SESSION_ID: Invalid Session ID found…".
        message = message.removeprefix(f"{code}: ")
    return error_from_code(code, message, None, None)
