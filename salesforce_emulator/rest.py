"""The REST API on the instance host: /services/data/vNN.0/...

Each counted call goes through ``EmulatorState.begin_call`` (auth, limits, call log, faults) and
answers with ``Sforce-Limit-Info: api-usage=N/M`` (SALESFORCE.md section 2, response header).
Errors are JSON arrays of ``{"message", "errorCode", "fields"}``. Assignment rules run by default
on create and update unless ``Sforce-Auto-Assign: FALSE``; REST never sends auto-response or
notification emails (SALESFORCE.md section 7).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from werkzeug import Request, Response

from . import schema
from .core import (
    MAX_QUERY_CURSORS,
    CallContext,
    DuplicatesDetected,
    EmulatorState,
    SalesforceError,
    WriteOptions,
    not_found,
    with_attributes,
)
from .describe import describe_sobject
from .ids import is_valid_id, new_id, to_18
from .soql import parse_soql, project, resolve_field, run_search, select_rows

MIN_VERSION = 20
MAX_VERSION = 64  # Summer '25
QUERY_BATCH_SIZE = 2000  # default batch; Sforce-Query-Options: batchSize=200..2000
COMPOSITE_MAX_SUBREQUESTS = 25  # SALESFORCE.md "Composite": 25 subrequests
# SALESFORCE.md "Composite": a sub-limit of 5 query/collection subrequests (UNCONFIRMED there);
# enforced, as the stricter reading: a client within it works on either.
COMPOSITE_MAX_QUERY_OR_COLLECTION = 5
COLLECTION_MAX_RECORDS = 200  # SALESFORCE.md "sObject Collections": up to 200 records
# SALESFORCE.md: subrequests may not set these headers; doing so fails the whole request.
COMPOSITE_FORBIDDEN_HEADERS = {"accept", "authorization", "content-type"}
# UNCONFIRMED: the spelling of the duplicate payload inside sObject Collections errors; captures
# of the misspelled key are all from single-record REST calls.
COLLECTIONS_DUPLICATE_KEY = "duplicateResult"
# UNCONFIRMED: error codes for a too-large composite or a forbidden subrequest header.
COMPOSITE_LIMIT_ERROR = "LIMIT_EXCEEDED"
COMPOSITE_INPUT_ERROR = "INVALID_INPUT"

_SEASONS = ("Winter", "Spring", "Summer")


def versions() -> list[dict[str, str]]:
    """GET /services/data/: v20.0 was Winter '11; three releases a year since."""
    out = []
    for number in range(MIN_VERSION, MAX_VERSION + 1):
        k = number - MIN_VERSION
        out.append(
            {
                "label": f"{_SEASONS[k % 3]} '{11 + k // 3:02d}",
                "url": f"/services/data/v{number}.0",
                "version": f"{number}.0",
            }
        )
    return out


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    if status == 204 or body is None:
        return Response(status=status, headers=dict(headers or {}))
    return Response(
        json.dumps(body),
        status=status,
        headers=dict(headers or {}),
        content_type="application/json;charset=UTF-8",
    )


def bearer_token(request: Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and token.strip():
        return token.strip()
    return None


def handle_rest(state: EmulatorState, request: Request) -> Response:
    """Entry point for every /services/data request."""
    path = request.path
    if path.rstrip("/") == "/services/data":
        # Not counted against limits (SALESFORCE.md section 2, base path).
        return json_response(versions())
    match = re.match(r"^/services/data/v(\d+\.\d)(/.*)?$", path)
    if not match or not _supported(match.group(1)):
        return json_response([not_found().as_rest()], 404)
    version, sub = match.group(1), (match.group(2) or "/").rstrip("/") or "/"
    try:
        ctx = state.begin_call(
            access_token=bearer_token(request),
            api="rest",
            method=request.method,
            path=request.full_path.rstrip("?"),
            headers=request.headers,
        )
    except SalesforceError as exc:
        return json_response([exc.as_rest()], exc.status_code)
    try:
        body = _json_body(request) if request.method in ("POST", "PATCH", "PUT") else None
        status, payload = dispatch(
            ctx, version, sub, request.method, request.args.to_dict(), body, request.headers
        )
    except SalesforceError as exc:
        status, payload = exc.status_code, [exc.as_rest()]
    ctx.apply_after_faults()
    ctx.finish(status)
    used, limit = ctx.limit_info
    return json_response(payload, status, {"Sforce-Limit-Info": f"api-usage={used}/{limit}"})


def _supported(version: str) -> bool:
    number, _, minor = version.partition(".")
    return minor == "0" and MIN_VERSION <= int(number) <= MAX_VERSION


def _json_body(request: Request) -> Any:
    raw = request.get_data(as_text=True)
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise SalesforceError(400, "JSON_PARSER_ERROR", f"Unexpected character: {exc}") from exc


def write_options(
    ctx: CallContext, headers: Mapping[str, str], version: str, *, creating: bool
) -> WriteOptions:
    """WriteOptions from the REST headers Sforce-Auto-Assign and Sforce-Duplicate-Rule-Header."""
    auto = (headers.get("Sforce-Auto-Assign") or "TRUE").strip()
    # SALESFORCE.md section 2: absent = TRUE; TRUE/FALSE case-insensitive; an id applies to creates.
    if auto.upper() == "TRUE":
        assignment: str | None = "default"
    elif auto.upper() == "FALSE":
        assignment = None
    else:
        assignment = auto if creating else "default"
    duplicate = headers.get("Sforce-Duplicate-Rule-Header") or ""
    options = {}
    for part in re.split(r"[;,]", duplicate):
        key, _, value = part.partition("=")
        options[key.strip().lower()] = value.strip().lower() == "true"
    return WriteOptions(
        api="rest",
        assignment=assignment,
        duplicate_allow_save=options.get("allowsave", False),
        user_id=ctx.user.id,
        api_version=version,
    )


def dispatch(
    ctx: CallContext,
    version: str,
    sub: str,
    method: str,
    args: Mapping[str, str],
    body: Any,
    headers: Mapping[str, str],
) -> tuple[int, Any]:
    """Route one REST request (also used for composite subrequests, which are not counted)."""
    parts = [p for p in sub.split("/") if p]
    method = method.upper()

    def allow(*methods: str) -> None:
        if method not in methods:
            raise SalesforceError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{method}' not allowed. Allowed are {','.join(methods)}",
            )

    if not parts:
        allow("GET")
        return 200, _resources(version)
    head = parts[0]
    if head == "sobjects":
        return _sobjects(ctx, version, parts[1:], method, args, body, headers, allow)
    if head in ("query", "queryAll") and len(parts) == 1:
        allow("GET")
        return 200, _query(ctx, version, args.get("q"), headers, all_rows=head == "queryAll")
    if head in ("query", "queryAll") and len(parts) == 2:
        allow("GET")
        return 200, _query_more(ctx, version, parts[1])
    if head == "search" and len(parts) == 1:
        allow("GET")
        found = run_search(ctx.org, args.get("q") or "", version)
        # SALESFORCE.md section 2: a bare array before v37.0, {"searchRecords": [...]} since.
        return 200, {"searchRecords": found} if float(version) >= 37 else found
    if head == "limits" and len(parts) == 1:
        allow("GET")
        return 200, _limits(ctx)
    if head == "composite" and len(parts) == 1:
        allow("POST")
        return 200, _composite(ctx, version, body, headers)
    if head == "composite" and len(parts) == 2 and parts[1] == "sobjects":
        allow("POST", "PATCH", "DELETE")
        return 200, _collections(ctx, version, method, args, body, headers)
    raise not_found()


def _resources(version: str) -> dict[str, str]:
    base = f"/services/data/v{version}"
    return {
        name: f"{base}/{name}"
        for name in ("sobjects", "query", "queryAll", "search", "limits", "composite")
    }


def _describe_for(ctx: CallContext, definition: schema.SObjectDef, version: str) -> dict[str, Any]:
    """describe() as the calling user sees it in this org (describe.py): an object their profile
    may not create says ``createable: false``, and so do its fields (UNCONFIRMED for the
    fields)."""
    return describe_sobject(
        ctx.org.schema_config(),
        definition,
        version,
        can_create=ctx.org.can_create(ctx.user.id, definition.name),
    )


def _sobject_def(name: str) -> schema.SObjectDef:
    definition = schema.sobject_def(name)
    if definition is None:
        raise not_found()
    return definition


def _sobjects(
    ctx: CallContext,
    version: str,
    parts: list[str],
    method: str,
    args: Mapping[str, str],
    body: Any,
    headers: Mapping[str, str],
    allow: Any,
) -> tuple[int, Any]:
    org = ctx.org
    if not parts:
        allow("GET")
        return 200, {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [
                {
                    key: value
                    for key, value in _describe_for(ctx, d, version).items()
                    if key not in ("fields",)
                }
                for d in schema.SOBJECTS.values()
            ],
        }
    definition = _sobject_def(parts[0])
    if len(parts) == 1:
        allow("GET", "POST")
        if method == "GET":
            described = _describe_for(ctx, definition, version)
            return 200, {
                "objectDescribe": {k: v for k, v in described.items() if k != "fields"},
                "recentItems": [],
            }
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body must be a JSON object"
            )
        new_id_ = org.create(
            definition.name, body, write_options(ctx, headers, version, creating=True)
        )
        return 201, {"id": new_id_, "success": True, "errors": []}
    if parts[1] == "describe" and len(parts) == 2:
        allow("GET")
        return 200, _describe_for(ctx, definition, version)
    if len(parts) != 2:
        raise not_found()
    record_id = parts[1]
    allow("GET", "PATCH", "DELETE")
    if method == "GET":
        record = _read_row(ctx, definition, record_id)
        fields = None
        if args.get("fields"):
            fields = [
                resolve_field(definition, name.strip()).path[0]
                for name in args["fields"].split(",")
                if name.strip()
            ]
        return 200, with_attributes(definition.name, record, version, fields)
    if method == "PATCH":
        if not isinstance(body, dict):
            raise SalesforceError(
                400, "JSON_PARSER_ERROR", "The request body must be a JSON object"
            )
        org.update(
            definition.name,
            record_id,
            body,
            write_options(ctx, headers, version, creating=False),
        )
        return 204, None
    org.delete(definition.name, record_id)
    return 204, None


def _read_row(ctx: CallContext, definition: schema.SObjectDef, record_id: str) -> dict[str, Any]:
    if definition.writable:
        return ctx.org.get(definition.name, record_id)
    wanted = to_18(record_id) if is_valid_id(record_id) else record_id
    with ctx.org.lock:
        for row in ctx.org.rows(definition.name):
            if row["Id"] == wanted:
                return dict(row)
    raise not_found()


def _batch_size(headers: Mapping[str, str]) -> int:
    options = headers.get("Sforce-Query-Options") or ""
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if not match:
        return QUERY_BATCH_SIZE
    return max(200, min(int(match.group(1)), QUERY_BATCH_SIZE))


def _query(
    ctx: CallContext,
    version: str,
    soql: str | None,
    headers: Mapping[str, str],
    *,
    all_rows: bool = False,
) -> dict[str, Any]:
    if not soql:
        raise SalesforceError(400, "MALFORMED_QUERY", "A query string (q) is required")
    org = ctx.org
    with org.lock:
        query = parse_soql(soql)
        rows = select_rows(org, query)
        if query.count_only:
            return {"totalSize": len(rows), "done": True, "records": []}
        records = [project(org, query.sobject, row, query.fields, version) for row in rows]
    return _page(ctx, version, records, 0, _batch_size(headers), new_id("01g"))


def _page(
    ctx: CallContext, version: str, records: list[dict[str, Any]], start: int, size: int, loc: str
) -> dict[str, Any]:
    end = start + size
    result: dict[str, Any] = {
        "totalSize": len(records),
        "done": end >= len(records),
        "records": records[start:end],
    }
    if end < len(records):
        result["nextRecordsUrl"] = f"/services/data/v{version}/query/{loc}-{end}"
        with ctx.org.lock:
            cursors = ctx.org.state.query_cursors
            cursors[loc] = (ctx.org.id, records, size)
            while len(cursors) > MAX_QUERY_CURSORS:
                cursors.pop(next(iter(cursors)))
    return result


def _query_more(ctx: CallContext, version: str, locator: str) -> dict[str, Any]:
    loc, _, start = locator.rpartition("-")
    cursor = ctx.org.state.query_cursors.get(loc)
    if cursor is None or cursor[0] != ctx.org.id or not start.isdigit():
        raise SalesforceError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
    _, records, size = cursor
    return _page(ctx, version, records, int(start), size, loc)


def _limits(ctx: CallContext) -> dict[str, Any]:
    api = ctx.org.api_usage()
    email = ctx.org.email_usage()
    return {
        "DailyApiRequests": {"Max": api["max"], "Remaining": api["remaining"]},
        "SingleEmail": {"Max": email["max"], "Remaining": email["remaining"]},
        "MassEmail": {"Max": email["max"], "Remaining": email["remaining"]},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
    }


# --------------------------------------------------------------------------- composite

_REFERENCE_RE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class _Unresolved(Exception):
    pass


def _resolve_refs(value: Any, results: Mapping[str, Any]) -> Any:
    """Replace @{ref.path} in strings (recursively) with values from earlier results."""
    if isinstance(value, dict):
        return {k: _resolve_refs(v, results) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_refs(v, results) for v in value]
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        ref, path = match.group(1), match.group(2)
        if ref not in results:
            raise _Unresolved(match.group(0))
        current: Any = results[ref]
        for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            try:
                current = current[step[0]] if step[0] else current[int(step[1])]
            except (KeyError, IndexError, TypeError) as exc:
                raise _Unresolved(match.group(0)) from exc
        return str(current)

    return _REFERENCE_RE.sub(lookup, value)


def _composite(
    ctx: CallContext, version: str, body: Any, headers: Mapping[str, str]
) -> dict[str, Any]:
    """POST composite: up to 25 subrequests, one API call (SALESFORCE.md "Composite")."""
    requests = body.get("compositeRequest") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        raise SalesforceError(400, "JSON_PARSER_ERROR", "compositeRequest is required")
    if len(requests) > COMPOSITE_MAX_SUBREQUESTS:
        raise SalesforceError(
            400,
            COMPOSITE_LIMIT_ERROR,
            f"Composite request size exceeded: maximum {COMPOSITE_MAX_SUBREQUESTS} subrequests",
        )
    heavy = [
        sub
        for sub in requests
        if isinstance(sub, dict)
        and re.match(
            r"^/services/data/v[\d.]+/(query|queryAll|composite/sobjects)(/|\?|$)",
            str(sub.get("url", "")),
        )
    ]
    if len(heavy) > COMPOSITE_MAX_QUERY_OR_COLLECTION:
        raise SalesforceError(
            400,
            COMPOSITE_LIMIT_ERROR,
            "Composite request size exceeded: maximum "
            f"{COMPOSITE_MAX_QUERY_OR_COLLECTION} query or sObject Collections subrequests",
        )
    for sub in requests:
        for name in sub.get("httpHeaders") or {}:
            if name.lower() in COMPOSITE_FORBIDDEN_HEADERS:
                raise SalesforceError(
                    400, COMPOSITE_INPUT_ERROR, f"The header {name} is not allowed in a subrequest"
                )
    all_or_none = bool(body.get("allOrNone", False))
    snapshot = ctx.org.snapshot() if all_or_none else None
    results: dict[str, Any] = {}
    responses: list[dict[str, Any]] = []
    failed_at: int | None = None
    for index, sub in enumerate(requests):
        ref = sub.get("referenceId")
        if failed_at is not None and all_or_none:
            responses.append(_halted(ref))
            continue
        try:
            url = _resolve_refs(sub.get("url", ""), results)
            sub_body = _resolve_refs(sub.get("body"), results)
        except _Unresolved as exc:
            responses.append(
                {
                    "body": [
                        {
                            "errorCode": "PROCESSING_HALTED",
                            "message": f"Invalid reference specified. No value for {exc} found",
                        }
                    ],
                    "httpHeaders": {},
                    "httpStatusCode": 400,
                    "referenceId": ref,
                }
            )
            failed_at = index if failed_at is None else failed_at
            continue
        status, payload, location = _subrequest(
            ctx, url, sub.get("method", "GET"), sub_body, headers, sub.get("httpHeaders") or {}
        )
        responses.append(
            {
                "body": payload,
                "httpHeaders": {"Location": location} if location else {},
                "httpStatusCode": status,
                "referenceId": ref,
            }
        )
        if status >= 400:
            failed_at = index if failed_at is None else failed_at
        else:
            results[ref] = payload
    if all_or_none and failed_at is not None:
        ctx.org.restore(snapshot)
        responses = [
            r if i == failed_at else _halted(r["referenceId"]) for i, r in enumerate(responses)
        ]
    return {"compositeResponse": responses}


def _halted(ref: str | None) -> dict[str, Any]:
    return {
        "body": [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            }
        ],
        "httpHeaders": {},
        "httpStatusCode": 400,
        "referenceId": ref,
    }


def _subrequest(
    ctx: CallContext,
    url: str,
    method: str,
    body: Any,
    outer_headers: Mapping[str, str],
    sub_headers: Mapping[str, str],
) -> tuple[int, Any, str | None]:
    split = urlsplit(url)
    match = re.match(r"^/services/data/v(\d+\.\d)(/.*)?$", split.path)
    if not match or not _supported(match.group(1)):
        return 404, [not_found().as_rest()], None
    version, sub = match.group(1), (match.group(2) or "/").rstrip("/") or "/"
    args = {k: v[0] for k, v in parse_qs(split.query).items()}
    headers = {**{k: v for k, v in outer_headers.items()}, **sub_headers}
    try:
        status, payload = dispatch(ctx, version, sub, method, args, body, headers)
    except SalesforceError as exc:
        return exc.status_code, [exc.as_rest()], None
    location = None
    if status == 201 and isinstance(payload, dict) and payload.get("id"):
        location = f"{split.path.rstrip('/')}/{payload['id']}"
    return status, payload, location


def _collection_error(exc: SalesforceError) -> dict[str, Any]:
    # SALESFORCE.md "sObject Collections": here the key is statusCode, not errorCode.
    error: dict[str, Any] = {
        "statusCode": exc.error_code,
        "message": exc.message,
        "fields": exc.fields,
    }
    if isinstance(exc, DuplicatesDetected):
        error[COLLECTIONS_DUPLICATE_KEY] = exc.duplicate_result
    return error


def _collections(
    ctx: CallContext,
    version: str,
    method: str,
    args: Mapping[str, str],
    body: Any,
    headers: Mapping[str, str],
) -> list[dict[str, Any]]:
    """composite/sobjects: create (POST), update (PATCH), delete (DELETE ?ids=)."""
    org = ctx.org
    if method == "DELETE":
        ids = [i for i in (args.get("ids") or "").split(",") if i]
        all_or_none = (args.get("allOrNone") or "false").lower() == "true"
        items: list[tuple[str | None, dict[str, Any]]] = [(None, {"Id": i}) for i in ids]
    else:
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SalesforceError(400, "JSON_PARSER_ERROR", "records is required")
        all_or_none = bool(body.get("allOrNone", False))
        items = [
            ((r.get("attributes") or {}).get("type"), r) if isinstance(r, dict) else (None, {})
            for r in body["records"]
        ]
    if len(items) > COLLECTION_MAX_RECORDS:
        raise SalesforceError(
            400,
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {COLLECTION_MAX_RECORDS} records "
            "into this call",
        )
    snapshot = org.snapshot() if all_or_none else None
    results: list[dict[str, Any]] = []
    failed = False
    for sobject, record in items:
        fields = {k: v for k, v in record.items() if k != "attributes"}
        record_id = fields.pop("id", None) or fields.pop("Id", None)
        try:
            if method == "DELETE":
                definition = _definition_for_id(record_id)
                org.delete(definition.name, record_id or "")
                results.append({"id": record_id, "success": True, "errors": []})
                continue
            if not sobject:
                raise SalesforceError(
                    400, "INVALID_TYPE", "Must specify a type in attributes for every record"
                )
            if method == "POST":
                if record_id:
                    raise SalesforceError(
                        400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"]
                    )
                created = org.create(
                    sobject, fields, write_options(ctx, headers, version, creating=True)
                )
                results.append({"id": created, "success": True, "errors": []})
            else:
                if not record_id:
                    raise SalesforceError(
                        400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"]
                    )
                org.update(
                    sobject,
                    record_id,
                    fields,
                    write_options(ctx, headers, version, creating=False),
                )
                results.append({"id": record_id, "success": True, "errors": []})
        except SalesforceError as exc:
            failed = True
            result: dict[str, Any] = {"success": False, "errors": [_collection_error(exc)]}
            if method != "POST":
                result = {"id": record_id, **result}
            results.append(result)
    if all_or_none and failed:
        org.restore(snapshot)
        rolled_back = {
            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
            "message": "Record rolled back because not all records were valid and the request "
            "was using AllOrNone header",
            "fields": [],
        }
        results = [
            r if not r["success"] else {"id": None, "success": False, "errors": [rolled_back]}
            for r in results
        ]
    return results


def _definition_for_id(record_id: str | None) -> schema.SObjectDef:
    for definition in schema.SOBJECTS.values():
        if definition.writable and (record_id or "").startswith(definition.key_prefix):
            return definition
    raise SalesforceError(400, "MALFORMED_ID", f"malformed id {record_id}")
