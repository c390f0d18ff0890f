"""The one place where the service talks to a Salesforce org's APIs: `SalesforceClient`.

REST through simple-salesforce and SOAP writes through `soap`, with timeouts, typed errors
(`errors`), one token refresh per call through the `refresh` callable it is given, a count of
API calls and the org's API usage. See docs/architecture.md ("Talking to Salesforce").
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.utils import timezone
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError as LibrarySalesforceError

from integrations.salesforce.api.errors import (
    SalesforceAuthError,
    SalesforceDuplicatesDetected,
    SalesforceError,
    SalesforceTransientError,
    SalesforceValidationError,
    duplicate_result_ids,
    duplicate_result_rule,
    error_from_code,
    error_from_http,
)
from integrations.salesforce.api.headers import SoapHeaders
from integrations.salesforce.api.results import (
    collection_body,
    error_from_save_result,
    save_result_from_collection_item,
    save_result_from_subrequest,
)
from integrations.salesforce.api.sessions import (
    TimeoutSession,
    shared_http_session,
)
from integrations.salesforce.api.soap import SaveError, SaveResult, SoapClient, SObjectRecord
from integrations.salesforce.models import SalesforceConnection

logger = logging.getLogger(__name__)

T = TypeVar("T")
# (connection, refused access token) -> the connection with a working access token.
TokenRefresher = Callable[[SalesforceConnection, str], SalesforceConnection]

# Salesforce's limit on records per sObject Collections call and per SOAP create/update.
MAX_RECORDS_PER_WRITE = 200
# Salesforce's limit on subrequests in one Composite call.
MAX_COMPOSITE_SUBREQUESTS = 25
# Of a Composite call's subrequests, at most this many may be sObject Collections or query
# ones (Salesforce's "Composite" resource page; SALESFORCE.md "Composite" called it UNCONFIRMED).
MAX_COMPOSITE_COLLECTIONS = 5

_API_USAGE = re.compile(r"(?:^|[^-])api-usage=(\d+)/(\d+)")


def _library_error(exc: LibrarySalesforceError) -> SalesforceError:
    """Turn simple-salesforce's exception (status + parsed body) into our typed error."""
    status = getattr(exc, "status", None)
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        code = str(first.get("errorCode") or first.get("statusCode") or f"HTTP_{status}")
        message = str(first.get("message", ""))
        if code == "DUPLICATES_DETECTED":
            # REST spells the key "duplicateResut" (sic); accept the correct spelling too.
            duplicate = first.get("duplicateResut") or first.get("duplicateResult")
            return SalesforceDuplicatesDetected(
                code,
                message,
                first.get("fields"),
                status=status,
                match_ids=duplicate_result_ids(duplicate),
                **duplicate_result_rule(duplicate),
            )
        return error_from_code(code, message, first.get("fields"), status)
    text = content if isinstance(content, str) else ""
    return error_from_code(
        f"HTTP_{status}", f"Salesforce answered HTTP {status}. {text[:200]}", None, status
    )


class SalesforceClient:
    """REST and SOAP calls to the org of one connection, as that connection's user."""

    def __init__(
        self,
        connection: SalesforceConnection,
        *,
        session: requests.Session | None = None,
        refresh: TokenRefresher | None = None,
    ) -> None:
        self.connection = connection
        # Called with (connection, the refused access token) when a call fails with
        # INVALID_SESSION_ID; returns the connection with a working token. Handed in by the
        # OAuth layer (`oauth.tokens.salesforce_client`), which this layer must not import.
        self._refresh_token = refresh
        self.api_version = settings.SALESFORCE_API_VERSION
        self.session = session or shared_http_session(connection)
        #: Calls made to the org's APIs (REST and SOAP) by this client, refused ones included.
        self.api_calls = 0
        # The org's (used, limit) daily API requests, as the latest response reported them.
        self._latest_usage: tuple[int, int] | None = None
        if isinstance(self.session, TimeoutSession):
            self.session.listener = self._on_response
        else:
            self.session.hooks["response"].append(self._on_response)
        self._sf = self._build_rest()

    def __repr__(self) -> str:
        return f"SalesforceClient(org={self.connection.org_id!r}, calls={self.api_calls})"

    # --- The call wrapper --------------------------------------------------------------------

    def _build_rest(self) -> Salesforce:
        return Salesforce(
            instance_url=self.connection.instance_url,
            session_id=self.connection.access_token,
            version=self.api_version,
            session=self.session,
        )

    def _soap(self) -> SoapClient:
        return SoapClient(
            self.connection.instance_url,
            self.connection.access_token,
            api_version=self.api_version,
            session=self.session,
            timeout=settings.SALESFORCE_HTTP_TIMEOUT,
        )

    def _call(self, call: Callable[[], T]) -> T:
        """Run one API call: count it, type its errors, refresh an expired token once."""
        for attempt in (1, 2):
            self.api_calls += 1
            stale_token = self.connection.access_token
            try:
                return call()
            except SalesforceAuthError as exc:
                if (
                    attempt == 1
                    and exc.error_code == "INVALID_SESSION_ID"
                    and self._refresh_token is not None
                ):
                    self._refresh(stale_token)
                    continue
                raise
            finally:
                self._remember_api_usage()
        raise AssertionError("unreachable")  # pragma: no cover

    def _refresh(self, stale_token: str) -> None:
        assert self._refresh_token is not None
        self.connection = self._refresh_token(self.connection, stale_token)
        self._sf = self._build_rest()

    def _rest(self, call: Callable[[Salesforce], T]) -> T:
        def run() -> T:
            try:
                return call(self._sf)
            except LibrarySalesforceError as exc:
                raise _library_error(exc) from None
            except (requests.Timeout, requests.ConnectionError) as exc:
                host = urlsplit(self.connection.instance_url).netloc
                raise error_from_http(exc, host=host) from None

        return self._call(run)

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Response hook: note the org's API usage from every REST response. (simple-salesforce
        keeps it per SFType object for sobject calls, so reading `sf.api_usage` misses those.)"""
        match = _API_USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self._latest_usage = (int(match.group(1)), int(match.group(2)))

    @property
    def latest_usage(self) -> tuple[int, int] | None:
        """The org's (used, limit) daily API requests as the latest answer reported them."""
        return self._latest_usage

    def _remember_api_usage(self) -> None:
        """Keep the usage on the connection row for the console, without a database write per
        call: at most every `SALESFORCE_USAGE_WRITE_SECONDS` (the sync engine reads the
        in-memory `latest_usage` for its budget decisions)."""
        usage = self._latest_usage
        if usage is None or usage == (
            self.connection.api_usage_used,
            self.connection.api_usage_max,
        ):
            return
        used, limit = usage
        now = timezone.now()
        every = dt.timedelta(seconds=getattr(settings, "SALESFORCE_USAGE_WRITE_SECONDS", 30))
        written = self.connection.api_usage_updated_at
        if written is not None and now - written < every:
            return
        self.connection.api_usage_used, self.connection.api_usage_max = used, limit
        self.connection.api_usage_updated_at = now
        if self.connection.pk:
            SalesforceConnection.objects.filter(pk=self.connection.pk).update(
                api_usage_used=used, api_usage_max=limit, api_usage_updated_at=now
            )

    def data_path(self, path: str) -> str:
        """The absolute REST path of `path`, as Composite subrequests need it."""
        return f"/services/data/v{self.api_version}/{path.lstrip('/')}"

    # --- Reads ------------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """The connected user, from the identity URL (org id, user id, username, …)."""
        url = (
            f"{self.connection.login_url.rstrip('/')}/id/"
            f"{self.connection.org_id}/{self.connection.user_id}"
        )

        def fetch(sf: Salesforce) -> dict[str, Any]:
            response = self.session.get(
                url, headers={"Authorization": f"Bearer {self.connection.access_token}"}
            )
            if response.status_code in (401, 403):
                raise SalesforceAuthError(
                    "INVALID_SESSION_ID", "Session expired or invalid", status=response.status_code
                )
            if response.status_code >= 300:
                raise error_from_code(
                    f"HTTP_{response.status_code}",
                    "The identity service refused the request",
                    None,
                    response.status_code,
                )
            return response.json()

        return self._rest(fetch)

    def limits(self) -> dict[str, Any]:
        return self._rest(lambda sf: sf.limits())

    def describe(self, sobject: str) -> dict[str, Any]:
        return self._rest(lambda sf: getattr(sf, sobject).describe())

    def describe_many(self, sobjects: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The describe of each of `sobjects` (up to 25) in ONE Composite call (Composite carries
        every sObject resource, describe included). Raises the first refusal's typed error."""
        path = self.data_path
        subrequests = [
            {"method": "GET", "url": path(f"sobjects/{n}/describe"), "referenceId": n}
            for n in sobjects
        ]
        described: dict[str, dict[str, Any]] = {}
        for name, item in zip(sobjects, self.composite(subrequests), strict=True):
            result = save_result_from_subrequest(item)  # the error body reads like a save's
            if not result.success or not isinstance(item.get("body"), dict):
                raise error_from_save_result(result)
            described[name] = item["body"]
        return described

    def query(self, soql: str) -> list[dict[str, Any]]:
        """Records of one SOQL query page (callers LIMIT their queries)."""
        return self._rest(lambda sf: sf.query(soql))["records"]

    def search(self, sosl: str) -> list[dict[str, Any]]:
        """The records a SOSL search returns (`searchRecords`, API v37+)."""
        result = self._rest(lambda sf: sf.search(sosl)) or {}
        return list(result.get("searchRecords", []))

    def composite(
        self, subrequests: Sequence[dict[str, Any]], *, all_or_none: bool = False
    ) -> list[dict[str, Any]]:
        """Up to 25 subrequests in ONE API call; returns the `compositeResponse` items in order.

        Each subrequest is `{"method", "url" (see data_path), "referenceId", "body"?,
        "httpHeaders"?}`; a failed subrequest comes back with its `httpStatusCode` and error body,
        not as an exception. An answer without one item per subrequest raises
        SalesforceTransientError (INVALID_RESPONSE): no caller can tell which item is whose.
        """
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            raise ValueError(f"at most {MAX_COMPOSITE_SUBREQUESTS} subrequests per Composite call")
        body = {"allOrNone": all_or_none, "compositeRequest": list(subrequests)}
        result = self._rest(lambda sf: sf.restful("composite", method="POST", json=body))
        items = list((result or {}).get("compositeResponse", []))
        if len(items) != len(subrequests):
            raise SalesforceTransientError(
                "INVALID_RESPONSE",
                f"Composite answered {len(items)} results for {len(subrequests)} subrequests",
            )
        return items

    def query_subrequest(self, reference_id: str, soql: str) -> dict[str, Any]:
        """A Composite subrequest for one SOQL query."""
        return self._get_subrequest(reference_id, f"query/?q={quote(soql)}")

    def search_subrequest(self, reference_id: str, sosl: str) -> dict[str, Any]:
        """A Composite subrequest for one SOSL search."""
        return self._get_subrequest(reference_id, f"search/?q={quote(sosl)}")

    def _get_subrequest(self, reference_id: str, resource: str) -> dict[str, Any]:
        return {"method": "GET", "url": self.data_path(resource), "referenceId": reference_id}

    def create_subrequest(
        self,
        reference_id: str,
        sobject: str,
        fields: dict[str, Any],
        *,
        headers: SoapHeaders,
        assign: bool = True,
    ) -> dict[str, Any]:
        """A Composite subrequest that creates one record, with the same REST headers as
        `create` (fields may hold `@{ref.id}` references to earlier subrequests)."""
        return {
            "method": "POST",
            "url": self.data_path(f"sobjects/{sobject}"),
            "referenceId": reference_id,
            "body": dict(fields),
            "httpHeaders": self._rest_headers(headers, assign=assign),
        }

    def update_subrequest(
        self,
        reference_id: str,
        sobject: str,
        record_id: str,
        fields: dict[str, Any],
        *,
        headers: SoapHeaders,
    ) -> dict[str, Any]:
        """A Composite subrequest that updates one record, with the same REST headers as
        `update` (assignment rules do not run). `record_id` may be a reference to an earlier
        subrequest's new record (`@{ref.id}`: the docs allow references in the url); the
        subrequest is then not run if that one failed."""
        return {
            "method": "PATCH",
            "url": self.data_path(f"sobjects/{sobject}/{record_id}"),
            "referenceId": reference_id,
            "body": dict(fields),
            "httpHeaders": self._rest_headers(headers, assign=False),
        }

    def collection_subrequest(
        self,
        reference_id: str,
        operation: str,
        records: Sequence[SObjectRecord],
        *,
        headers: SoapHeaders,
    ) -> dict[str, Any]:
        """A Composite subrequest that creates or updates up to 200 records through sObject
        Collections (`allOrNone` false), with the same REST headers as `create_many` or
        `update_many` (updates never run assignment rules). Its result is read with
        `save_results_from_collection`. Salesforce takes up to 5 Collections or query
        subrequests in one Composite call (MAX_COMPOSITE_COLLECTIONS)."""
        if not 0 < len(records) <= MAX_RECORDS_PER_WRITE:
            raise ValueError(f"1 to {MAX_RECORDS_PER_WRITE} records per write")
        return {
            "method": "POST" if operation == "create" else "PATCH",
            "url": self.data_path("composite/sobjects"),
            "referenceId": reference_id,
            "body": collection_body(operation, records),
            "httpHeaders": self._rest_headers(headers, assign=operation == "create"),
        }

    # --- Writes -----------------------------------------------------------------------------

    @staticmethod
    def _rest_headers(headers: SoapHeaders, *, assign: bool) -> dict[str, str]:
        rest = {"Sforce-Auto-Assign": headers.rest_auto_assign() if assign else "FALSE"}
        duplicate = headers.rest_duplicate_rule_header()
        if duplicate:
            rest["Sforce-Duplicate-Rule-Header"] = duplicate
        return rest

    @staticmethod
    def _without_assignment(headers: SoapHeaders) -> SoapHeaders:
        return dataclasses.replace(headers, assignment_rule=None)

    def create(self, sobject: str, fields: dict[str, Any], *, headers: SoapHeaders) -> str:
        """Create one record; returns its id. Raises a typed error (DUPLICATES_DETECTED carries
        the matched record ids)."""
        (result,) = self.create_many([SObjectRecord(sobject, fields)], headers=headers)
        if not result.success or not result.id:
            raise error_from_save_result(result)
        return result.id

    def update(
        self,
        sobject: str,
        record_id: str,
        fields: dict[str, Any],
        *,
        headers: SoapHeaders,
        reassign: bool = False,
    ) -> None:
        """Update one record. Assignment rules do not run unless `reassign` is asked for."""
        (result,) = self.update_many(
            [SObjectRecord(sobject, fields, record_id)], headers=headers, reassign=reassign
        )
        if not result.success:
            raise error_from_save_result(result)

    def create_many(
        self, records: Sequence[SObjectRecord], *, headers: SoapHeaders
    ) -> list[SaveResult]:
        """Create up to 200 records in one call (SOAP create, or REST sObject Collections)."""
        return self._write("create", records, headers=headers, assign=True)

    def update_many(
        self, records: Sequence[SObjectRecord], *, headers: SoapHeaders, reassign: bool = False
    ) -> list[SaveResult]:
        """Update up to 200 records in one call, each record carrying its id."""
        return self._write("update", records, headers=headers, assign=reassign)

    def _write(
        self,
        operation: str,
        records: Sequence[SObjectRecord],
        *,
        headers: SoapHeaders,
        assign: bool,
    ) -> list[SaveResult]:
        if not records:
            return []
        if len(records) > MAX_RECORDS_PER_WRITE:
            raise ValueError(f"at most {MAX_RECORDS_PER_WRITE} records per write")
        if headers.needs_soap:
            soap_headers = headers if assign else self._without_assignment(headers)
            return self._soap_write(operation, records, soap_headers)
        if len(records) == 1:
            return [self._rest_write_one(operation, records[0], headers, assign)]
        return self._rest_collection(operation, records, headers, assign)

    def _soap_write(
        self, operation: str, records: Sequence[SObjectRecord], headers: SoapHeaders
    ) -> list[SaveResult]:
        def run() -> list[SaveResult]:
            soap = self._soap()
            try:
                return getattr(soap, operation)(records, headers)
            finally:
                if soap.last_api_usage is not None:
                    self._latest_usage = soap.last_api_usage

        return self._call(run)

    def _rest_write_one(
        self, operation: str, record: SObjectRecord, headers: SoapHeaders, assign: bool
    ) -> SaveResult:
        """One record through the sObject resource: the cheapest call for a single write."""
        rest_headers = self._rest_headers(headers, assign=assign)
        fields = dict(record.fields)
        try:
            if operation == "create":
                result = self._rest(
                    lambda sf: getattr(sf, record.sobject).create(fields, headers=rest_headers)
                )
                return SaveResult(result.get("id"), bool(result.get("success", True)), [])
            self._rest(
                lambda sf: getattr(sf, record.sobject).update(
                    record.id, fields, headers=rest_headers
                )
            )
            return SaveResult(record.id, True, [])
        except (SalesforceValidationError, SalesforceDuplicatesDetected) as exc:
            # A refused record is a per-record result, as it is for SOAP and Collections.
            error = SaveError(
                exc.error_code,
                exc.message,
                exc.fields,
                getattr(exc, "match_ids", []),
                duplicate_rule=getattr(exc, "duplicate_rule", ""),
                duplicate_allow_save=getattr(exc, "allow_save", False),
            )
            return SaveResult(None, False, [error])

    def _rest_collection(
        self, operation: str, records: Sequence[SObjectRecord], headers: SoapHeaders, assign: bool
    ) -> list[SaveResult]:
        body = collection_body(operation, records)
        method = "POST" if operation == "create" else "PATCH"
        rest_headers = self._rest_headers(headers, assign=assign)
        results = self._rest(
            lambda sf: sf.restful(
                "composite/sobjects", method=method, json=body, headers=rest_headers
            )
        )
        return [save_result_from_collection_item(item) for item in results or []]
