"""The emulator's SOAP partner API: ``create`` and ``update`` with the option headers.

Mounted by the server as ``POST /services/Soap/u/<version>[/<orgId>]`` on the instance host. The
transport is all that lives here; what a write does (validation, duplicate rules, assignment,
auto-response and notification emails) is :mod:`salesforce_emulator.core`, shared with REST.

What the SOAP side adds, following ../shared/SALESFORCE.md section 4 and the seeds:

* The session is the OAuth access token in ``SessionHeader/sessionId``.
* The seven option headers map onto :class:`~salesforce_emulator.core.WriteOptions`. Unlike REST,
  SOAP runs assignment rules only with an ``AssignmentRuleHeader``, sends the auto-response only
  with ``EmailHeader.triggerAutoResponseEmail`` and the owner notification only with
  ``EmailHeader.triggerUserEmail`` (seeds 000 and 001). ``DisableFeedTrackingHeader``,
  ``MruHeader`` and ``DuplicateRuleHeader.runAsCurrentUser`` have nothing to act on here; they
  are validated and recorded in the call log.
* Per-record errors are ``<result>`` elements with HTTP 200; duplicates are
  ``xsi:type="DuplicateError"`` with a ``duplicateResult`` child (spelled correctly, unlike REST).
* Whole-call problems are SOAP faults (``sf:UnexpectedErrorFault`` shape), HTTP 500.
* Every response carries ``LimitInfoHeader`` with the org's API REQUESTS usage.

Requests are parsed with defusedxml only: DTDs, entity declarations and external references are
refused with a fault, never expanded. Texts marked UNCONFIRMED below are our best guess at what
Salesforce says; they are constants so they are easy to correct.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Types only; every request is parsed by defusedxml.
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException, DTDForbidden
from defusedxml.ElementTree import fromstring as safe_fromstring
from lxml import etree
from werkzeug import Request, Response

from . import schema
from .core import (
    CallContext,
    DuplicatesDetected,
    EmulatorState,
    SalesforceError,
    WriteOptions,
)
from .ids import KEY_PREFIXES, is_valid_id, to_18

SOAPENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
PARTNER_NS = "urn:partner.soap.sforce.com"
SOBJECT_NS = "urn:sobject.partner.soap.sforce.com"
FAULT_NS = "urn:fault.partner.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

MAX_RECORDS = 200
OPERATIONS = ("create", "update")

# SALESFORCE.md section 4 (fault sample).
INVALID_SESSION_MESSAGE = "Invalid Session ID found in SessionHeader: Illegal Session"
# UNCONFIRMED texts.
TOO_MANY_RECORDS_MESSAGE = (
    "record limit reached. cannot submit more than 200 records into this call"
)
NO_TYPE_MESSAGE = "Must send a concrete entity type."
UNSUPPORTED_TYPE_MESSAGE = (
    "sObject type '{name}' is not supported. If you are attempting to use a custom object, be "
    "sure to append the '__c' after the entity name. Please reference your WSDL or the describe "
    "call for the appropriate names."
)
ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone "
    "header"
)
# The Xerces text Java SOAP stacks give for a DOCTYPE when DTDs are disallowed.
DOCTYPE_MESSAGE = (
    'DOCTYPE is disallowed when the feature "http://apache.org/xml/features/disallow-doctype-decl"'
    " set to true."
)

# The option headers and their properties (partner WSDL), with the WSDL's types.
OPTION_HEADERS: dict[str, dict[str, type]] = {
    "EmailHeader": {
        "triggerAutoResponseEmail": bool,
        "triggerOtherEmail": bool,
        "triggerUserEmail": bool,
    },
    "AssignmentRuleHeader": {"assignmentRuleId": str, "useDefaultRule": bool},
    "DuplicateRuleHeader": {
        "allowSave": bool,
        "includeRecordDetails": bool,
        "runAsCurrentUser": bool,
    },
    "AllOrNoneHeader": {"allOrNone": bool},
    "AllowFieldTruncationHeader": {"allowFieldTruncation": bool},
    "DisableFeedTrackingHeader": {"disableFeedTracking": bool},
    "MruHeader": {"updateMru": bool},
}
# Real partner headers the emulator has no use for: accepted so clients that send them work.
IGNORED_HEADERS = frozenset(
    {
        "CallOptions",
        "LocaleOptions",
        "OwnerChangeOptions",
        "PackageVersionHeader",
        "QueryOptions",
        "UserTerritoryDeleteHeader",
        "DebuggingHeader",
        "StreamingEnabledHeader",
        "LimitInfoHeader",
    }
)
# xsd:boolean's lexical forms.
_XSD_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}
_VERSION = re.compile(r"\d{1,3}\.0")


class SoapFault(Exception):
    """A whole-call failure, written as a SOAP fault."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        http_status: int = 500,
        fault_type: str = "UnexpectedErrorFault",
        prefixed: bool = True,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.http_status = http_status
        self.fault_type = fault_type
        # Salesforce writes "sf:CODE", except for XML it could not parse (a captured
        # UNKNOWN_EXCEPTION fault has a bare faultcode).
        self.prefixed = prefixed

    def response(self) -> Response:
        envelope = etree.Element(
            f"{{{SOAPENV_NS}}}Envelope",
            nsmap={"soapenv": SOAPENV_NS, "sf": FAULT_NS, "xsi": XSI_NS},
        )
        body = etree.SubElement(envelope, f"{{{SOAPENV_NS}}}Body")
        fault = etree.SubElement(body, f"{{{SOAPENV_NS}}}Fault")
        etree.SubElement(fault, "faultcode").text = (
            f"sf:{self.code}" if self.prefixed else self.code
        )
        etree.SubElement(fault, "faultstring").text = f"{self.code}: {self.message}"
        detail = etree.SubElement(fault, "detail")
        api_fault = etree.SubElement(detail, f"{{{FAULT_NS}}}{self.fault_type}")
        api_fault.set(f"{{{XSI_NS}}}type", f"sf:{self.fault_type}")
        etree.SubElement(api_fault, f"{{{FAULT_NS}}}exceptionCode").text = self.code
        etree.SubElement(api_fault, f"{{{FAULT_NS}}}exceptionMessage").text = self.message
        return _xml_response(envelope, self.http_status)


@dataclass
class SoapRequest:
    """A parsed partner-API request."""

    session_id: str | None
    # Option headers by name; their values are read (and checked) after authentication, so a
    # bad session is always reported as INVALID_SESSION_ID first.
    option_headers: dict[str, Element]
    operation: str | None
    call: Element | None
    header_names: list[str] = field(default_factory=list)


@dataclass
class RecordSpec:
    """One ``sObjects`` element: its type, Id and field values (None = null)."""

    sobject: str
    record_id: str | None
    fields: dict[str, Any]


def soap_endpoint(state: EmulatorState, request: Request, version: str) -> Response:
    """Serve one partner-API call (``create`` or ``update``)."""
    try:
        return _serve(state, request, version)
    except SoapFault as fault:
        return fault.response()


def _serve(state: EmulatorState, request: Request, version: str) -> Response:
    if not _VERSION.fullmatch(version):
        raise SoapFault(
            "UNSUPPORTED_API_VERSION", f"Invalid Api version specified on URL: {version}"
        )
    parsed = parse_request(request.get_data())
    try:
        ctx = state.begin_call(
            access_token=parsed.session_id,
            api="soap",
            method=request.method,
            path=request.path,
            headers=request.headers,
        )
    except SalesforceError as exc:
        raise _fault_from_error(exc) from None

    status = 500
    try:
        ctx.note(soap_operation=parsed.operation, soap_header_names=parsed.header_names)
        response = _perform(ctx, parsed, version)
        # Faults that act once the data is written (slow answer, dropped connection).
        ctx.apply_after_faults()
        status = response.status_code
        return response
    except SoapFault as fault:
        status = fault.http_status
        raise
    finally:
        ctx.finish(status)


# --------------------------------------------------------------------------- request parsing


def parse_request(data: bytes) -> SoapRequest:
    """Parse and check the envelope; raises SoapFault for anything malformed."""
    try:
        root = safe_fromstring(data, forbid_dtd=True)
    except DTDForbidden:
        raise SoapFault("UNKNOWN_EXCEPTION", DOCTYPE_MESSAGE, prefixed=False) from None
    except DefusedXmlException as exc:
        raise SoapFault("UNKNOWN_EXCEPTION", f"Refused XML: {exc}", prefixed=False) from None
    except ParseError as exc:
        raise SoapFault("UNKNOWN_EXCEPTION", f"Unparseable XML: {exc}", prefixed=False) from None

    if root.tag != f"{{{SOAPENV_NS}}}Envelope":
        raise SoapFault(
            "UNKNOWN_EXCEPTION",
            f"Expected a SOAP 1.1 Envelope, found {root.tag}",
            prefixed=False,
        )
    header = root.find(f"{{{SOAPENV_NS}}}Header")
    body = root.find(f"{{{SOAPENV_NS}}}Body")
    if body is None:
        raise SoapFault("UNKNOWN_EXCEPTION", "The SOAP Envelope has no Body", prefixed=False)

    session_id = None
    option_headers: dict[str, Element] = {}
    seen: list[str] = []
    for element in header if header is not None else []:
        namespace, name = _split(element.tag)
        seen.append(name if namespace == PARTNER_NS else element.tag)
        if namespace != PARTNER_NS:
            if element.get(f"{{{SOAPENV_NS}}}mustUnderstand") in ("1", "true"):
                raise SoapFault(
                    "INVALID_SOAP_HEADER", f"Header {element.tag} must be understood but is not"
                )
            continue
        if name == "SessionHeader":
            session_id = _session_id(element)
        elif name in OPTION_HEADERS:
            if name in option_headers:
                raise SoapFault("INVALID_SOAP_HEADER", f"{name} is given more than once")
            option_headers[name] = element
        elif name not in IGNORED_HEADERS:
            raise SoapFault("INVALID_SOAP_HEADER", f"Unexpected SOAP header: {name}")

    calls = list(body)
    operation = None
    call = None
    if len(calls) == 1:
        call = calls[0]
        namespace, operation = _split(call.tag)
        if namespace != PARTNER_NS:
            operation = call.tag
    elif calls:
        operation = "<several>"
    return SoapRequest(session_id, option_headers, operation, call, seen)


def _session_id(element: Element) -> str | None:
    session_id = None
    for child in element:
        if _split(child.tag) != (PARTNER_NS, "sessionId"):
            raise SoapFault(
                "INVALID_SOAP_HEADER", f"Unexpected element {child.tag} in SessionHeader"
            )
        session_id = (child.text or "").strip()
    return session_id or None


def read_option_headers(elements: Mapping[str, Element]) -> dict[str, dict[str, Any]]:
    """Typed values of the option headers; INVALID_SOAP_HEADER / MALFORMED_ID faults."""
    headers: dict[str, dict[str, Any]] = {}
    for name, element in elements.items():
        spec = OPTION_HEADERS[name]
        values: dict[str, Any] = {}
        for child in element:
            namespace, prop = _split(child.tag)
            if namespace != PARTNER_NS or prop not in spec:
                raise SoapFault("INVALID_SOAP_HEADER", f"Unexpected element {child.tag} in {name}")
            if prop in values:
                raise SoapFault("INVALID_SOAP_HEADER", f"{name}.{prop} is given more than once")
            text = (child.text or "").strip()
            if spec[prop] is bool:
                if text not in _XSD_BOOLEANS:
                    raise SoapFault(
                        "INVALID_SOAP_HEADER",
                        f"'{text}' is not a valid value for the type xsd:boolean ({name}.{prop})",
                    )
                values[prop] = _XSD_BOOLEANS[text]
            else:
                values[prop] = text
        headers[name] = values

    rule = headers.get("AssignmentRuleHeader", {})
    if "assignmentRuleId" in rule and "useDefaultRule" in rule:
        raise SoapFault(
            "INVALID_SOAP_HEADER",
            "AssignmentRuleHeader: specify either assignmentRuleId or useDefaultRule, not both",
        )
    rule_id = rule.get("assignmentRuleId")
    if rule_id is not None and not (
        is_valid_id(rule_id) and rule_id.startswith(KEY_PREFIXES["AssignmentRule"])
    ):
        raise SoapFault("MALFORMED_ID", f"Invalid assignment rule id: {rule_id}")
    return headers


def write_options(
    headers: Mapping[str, Mapping[str, Any]], *, user_id: str, version: str
) -> WriteOptions:
    """The core's WriteOptions for these SOAP headers (absent header = SOAP's default)."""
    email = headers.get("EmailHeader", {})
    rule = headers.get("AssignmentRuleHeader", {})
    if rule.get("assignmentRuleId"):
        assignment: str | None = rule["assignmentRuleId"]
    elif rule.get("useDefaultRule"):
        assignment = "default"
    else:
        # SOAP runs no assignment rule without the header (unlike REST's default TRUE).
        assignment = None
    return WriteOptions(
        api="soap",
        assignment=assignment,
        trigger_auto_response=email.get("triggerAutoResponseEmail", False),
        trigger_user_email=email.get("triggerUserEmail", False),
        trigger_other_email=email.get("triggerOtherEmail", False),
        duplicate_allow_save=headers.get("DuplicateRuleHeader", {}).get("allowSave", False),
        allow_field_truncation=headers.get("AllowFieldTruncationHeader", {}).get(
            "allowFieldTruncation", False
        ),
        user_id=user_id,
        api_version=version,
    )


def _read_records(call: Element, operation: str) -> list[RecordSpec]:
    records = []
    for element in call:
        if _split(element.tag) != (PARTNER_NS, "sObjects"):
            # A schema error, reported like the XML errors (UNCONFIRMED text).
            raise SoapFault(
                "UNKNOWN_EXCEPTION",
                f"Unexpected element {element.tag} during deserialization of {operation}",
                prefixed=False,
            )
        sobject = None
        record_id = None
        fields: dict[str, Any] = {}
        for child in element:
            _, name = _split(child.tag)
            text = None if _is_nil(child) else (child.text or "")
            if name == "type":
                sobject = (text or "").strip()
            elif name == "Id":
                record_id = (text or "").strip() or None
            elif name == "fieldsToNull":
                if text and text.strip():
                    fields[text.strip()] = None
            else:
                fields[name] = text
        if not sobject:
            raise SoapFault("INVALID_TYPE", NO_TYPE_MESSAGE)
        definition = schema.sobject_def(sobject)
        if definition is None:
            raise SoapFault(
                "INVALID_TYPE",
                UNSUPPORTED_TYPE_MESSAGE.format(name=sobject),
                fault_type="InvalidSObjectFault",
            )
        records.append(RecordSpec(definition.name, record_id, fields))
    if len(records) > MAX_RECORDS:
        raise SoapFault("EXCEEDED_ID_LIMIT", TOO_MANY_RECORDS_MESSAGE)
    return records


# --------------------------------------------------------------------------- the call


@dataclass
class _Outcome:
    record_id: str | None = None
    error: SalesforceError | None = None
    rolled_back: bool = False


def _perform(ctx: CallContext, parsed: SoapRequest, version: str) -> Response:
    if parsed.operation not in OPERATIONS or parsed.call is None:
        # UNCONFIRMED: the code and text for an operation the emulator doesn't serve.
        raise SoapFault(
            "INVALID_OPERATION",
            f"No operation available for request {parsed.operation or '(empty Body)'}",
        )
    operation = parsed.operation
    headers = read_option_headers(parsed.option_headers)
    ctx.note(soap_headers=headers)
    options = write_options(headers, user_id=ctx.user.id, version=version)
    records = _read_records(parsed.call, operation)
    ctx.note(soap_records=len(records))

    all_or_none = headers.get("AllOrNoneHeader", {}).get("allOrNone", False)
    org = ctx.org
    outcomes: list[_Outcome] = []
    # One lock for the whole call: with AllOrNone, nothing else may write between the snapshot
    # and a restore, or the restore would wipe it.
    with org.lock:
        snapshot = org.snapshot() if all_or_none else None
        for record in records:
            outcomes.append(_write_one(org, operation, record, options))
        if snapshot is not None and any(o.error for o in outcomes):
            # Salesforce commits nothing, so no email goes out either (restore trims them).
            org.restore(snapshot)
            for outcome in outcomes:
                if outcome.error is None:
                    outcome.record_id = None
                    outcome.rolled_back = True

    include_details = headers.get("DuplicateRuleHeader", {}).get("includeRecordDetails", False)
    envelope, body = _response_envelope(ctx)
    response_element = etree.SubElement(body, f"{{{PARTNER_NS}}}{operation}Response")
    for outcome in outcomes:
        _write_result(response_element, outcome, org if include_details else None)
    return _xml_response(envelope, 200)


def _write_one(org: Any, operation: str, record: RecordSpec, options: WriteOptions) -> _Outcome:
    try:
        if operation == "create":
            fields = dict(record.fields)
            if record.record_id:
                # Let the core refuse it exactly as REST does.
                fields["Id"] = record.record_id
            return _Outcome(record_id=org.create(record.sobject, fields, options))
        if not record.record_id:
            return _Outcome(
                error=SalesforceError(400, "MISSING_ARGUMENT", "Id not specified in an update call")
            )
        definition = schema.sobject_def(record.sobject)
        if not is_valid_id(record.record_id) or (
            definition is not None and not record.record_id.startswith(definition.key_prefix)
        ):
            # UNCONFIRMED text.
            return _Outcome(
                error=SalesforceError(
                    400,
                    "MALFORMED_ID",
                    f"Record ID: id value of incorrect type: {record.record_id}",
                    ["Id"],
                )
            )
        org.update(record.sobject, record.record_id, record.fields, options)
        return _Outcome(record_id=to_18(record.record_id))
    except SalesforceError as exc:
        if exc.error_code == "NOT_FOUND":
            # REST says 404 NOT_FOUND; a SOAP SaveResult has no such status code (UNCONFIRMED).
            exc = SalesforceError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return _Outcome(error=exc)


# --------------------------------------------------------------------------- response writing


def _response_envelope(ctx: CallContext) -> tuple[Any, Any]:
    envelope = etree.Element(
        f"{{{SOAPENV_NS}}}Envelope",
        nsmap={None: PARTNER_NS, "soapenv": SOAPENV_NS, "sf": SOBJECT_NS, "xsi": XSI_NS},
    )
    header = etree.SubElement(envelope, f"{{{SOAPENV_NS}}}Header")
    limit_header = etree.SubElement(header, f"{{{PARTNER_NS}}}LimitInfoHeader")
    limit_info = etree.SubElement(limit_header, f"{{{PARTNER_NS}}}limitInfo")
    used, limit = ctx.limit_info
    etree.SubElement(limit_info, f"{{{PARTNER_NS}}}current").text = str(used)
    etree.SubElement(limit_info, f"{{{PARTNER_NS}}}limit").text = str(limit)
    etree.SubElement(limit_info, f"{{{PARTNER_NS}}}type").text = "API REQUESTS"
    body = etree.SubElement(envelope, f"{{{SOAPENV_NS}}}Body")
    return envelope, body


def _write_result(parent: Any, outcome: _Outcome, details_from: Any) -> None:
    p = f"{{{PARTNER_NS}}}"
    result = etree.SubElement(parent, p + "result")
    # SaveResult's sequence is errors*, id, success.
    if outcome.error is not None or outcome.rolled_back:
        errors = etree.SubElement(result, p + "errors")
        if outcome.rolled_back:
            code, message, fields = "ALL_OR_NONE_OPERATION_ROLLED_BACK", ROLLED_BACK_MESSAGE, []
        else:
            assert outcome.error is not None
            code, message, fields = (
                outcome.error.error_code,
                outcome.error.message,
                outcome.error.fields,
            )
        if isinstance(outcome.error, DuplicatesDetected) and not outcome.rolled_back:
            errors.set(f"{{{XSI_NS}}}type", "DuplicateError")
        for name in fields:
            etree.SubElement(errors, p + "fields").text = name
        etree.SubElement(errors, p + "message").text = message
        etree.SubElement(errors, p + "statusCode").text = code
        if isinstance(outcome.error, DuplicatesDetected) and not outcome.rolled_back:
            _write_duplicate_result(errors, outcome.error.duplicate_result, details_from)
        etree.SubElement(result, p + "id").set(f"{{{XSI_NS}}}nil", "true")
        etree.SubElement(result, p + "success").text = "false"
    else:
        etree.SubElement(result, p + "id").text = outcome.record_id
        etree.SubElement(result, p + "success").text = "true"


def _write_duplicate_result(parent: Any, duplicate: Mapping[str, Any], details_from: Any) -> None:
    """DuplicateResult → XML (partner WSDL element order; the core's dict keeps it)."""
    element = etree.SubElement(parent, f"{{{PARTNER_NS}}}duplicateResult")
    _write_value(element, duplicate, details_from)


def _write_value(parent: Any, value: Mapping[str, Any], details_from: Any) -> None:
    p = f"{{{PARTNER_NS}}}"
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        for one in items:
            if key == "record" and isinstance(one, Mapping):
                _write_sobject(parent, one, details_from)
            elif isinstance(one, Mapping):
                _write_value(etree.SubElement(parent, p + key), one, details_from)
            else:
                child = etree.SubElement(parent, p + key)
                if one is None:
                    child.set(f"{{{XSI_NS}}}nil", "true")
                else:
                    child.text = _text(one)


def _write_sobject(parent: Any, record: Mapping[str, Any], details_from: Any) -> None:
    """A matched record as a partner sObject: type, Id, and fields with includeRecordDetails."""
    s = f"{{{SOBJECT_NS}}}"
    element = etree.SubElement(parent, f"{{{PARTNER_NS}}}record")
    element.set(f"{{{XSI_NS}}}type", "sf:sObject")
    sobject = record.get("attributes", {}).get("type", "")
    etree.SubElement(element, s + "type").text = sobject
    etree.SubElement(element, s + "Id").text = record.get("Id")
    if details_from is None:
        return
    try:
        stored = details_from.get(sobject, record["Id"])
    except SalesforceError:
        return
    for name, value in stored.items():
        if name != "Id" and value is not None:
            etree.SubElement(element, s + name).text = _text(value)


def _xml_response(envelope: Any, status: int) -> Response:
    return Response(
        etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
        status=status,
        content_type="text/xml; charset=utf-8",
    )


def _fault_from_error(exc: SalesforceError) -> SoapFault:
    message = INVALID_SESSION_MESSAGE if exc.error_code == "INVALID_SESSION_ID" else exc.message
    # An injected 503 keeps its status so the client sees an unavailable server.
    return SoapFault(exc.error_code, message, http_status=503 if exc.status_code == 503 else 500)


# --------------------------------------------------------------------------- small helpers


def _split(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        namespace, _, name = tag[1:].partition("}")
        return namespace, name
    return None, tag


def _is_nil(element: Element) -> bool:
    return element.get(f"{{{XSI_NS}}}nil") in ("true", "1")


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
