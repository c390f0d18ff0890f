"""The ingestion API Auto-Respond calls: `/api/v1/…`. The contract (paths, fields, statuses) is
fixed by the product; the OpenAPI schema is served at `/api/v1/openapi.json`.

Every bad request gets a 4xx with `{"errors": [{"field": …, "message": …}, …]}` naming each bad
field, and changes nothing. What is not the client's fault is never a traceback: a database that
cannot be reached (or a lock that outlasted the busy timeout) is a 503 with Retry-After, anything
else a 500 in the same JSON shape, its traceback in the log (`autorespond.api`).

Text rule (every text field, the path's too): control characters are refused (400 naming the
field) except tab, line feed and carriage return; so are unpaired UTF-16 surrogates, which no
database can store. NUL, which PostgreSQL cannot store in text, is the case that matters most.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime
from typing import Annotated, Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.core.validators import validate_email
from django.db import InterfaceError, NotSupportedError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    field_validator,
)

from autorespond.db import stale_prepared_statement
from autorespond.hooks import inquiry_sync_status
from autorespond.middleware import api_error
from autorespond.models import SLUG_VALIDATOR, Inquiry, Source
from autorespond.services import api_key_authenticate, inquiry_upsert, source_upsert
from autorespond.validators import EMAIL_REFUSED, country_code, salesforce_email_refusal

UNKNOWN_COUNTRY = "Unknown country: give an ISO 3166 code (like US) or its English name."

logger = logging.getLogger(__name__)

# C0 controls but tab, LF and CR; DEL and the C1 controls; unpaired surrogates (json.loads
# accepts "\ud800", which no UTF-8 database can store).
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
CONTROL_CHARACTER_MESSAGE = (
    "Must not contain control characters such as NUL (tab and line breaks are allowed)."
)


def text_error(value: str) -> str | None:
    """The message for a text value the API refuses, or None when it is acceptable."""
    return CONTROL_CHARACTER_MESSAGE if _FORBIDDEN_CHARACTERS.search(value) else None


# The API's schemas are plain pydantic models, not ninja's `Schema`: that one wraps every value
# it validates in a `DjangoGetter` (to read ORM objects' attributes), and with `extra="forbid"`
# validates the body twice. Our bodies and answers are dicts, so the wrapper only cost time (a
# sixth of a POST's CPU in the profile of benchmarks/ingest_api.py).


class TextSchema(BaseModel):
    """A body schema whose every text field follows the text rule (module docstring)."""

    @field_validator("*")
    @classmethod
    def _text_rule(cls, value: Any) -> Any:
        if isinstance(value, str) and (message := text_error(value)):
            raise ValueError(message)
        return value


class GuardedJsonParser(Parser):
    """Checks what pydantic cannot see: that the body is JSON at all. Its size was checked by
    `ApiGuardMiddleware`, which read it (at most `API_MAX_BODY_BYTES`)."""

    def parse_body(self, request: HttpRequest) -> Any:
        if len(request.body) > settings.API_MAX_BODY_BYTES:  # in case the middleware is off
            raise HttpError(413, f"Body too large: at most {settings.API_MAX_BODY_BYTES} bytes.")
        try:
            return json.loads(request.body or b"")
        # RecursionError: JSON nested deeper than the parser's stack allows is malformed for us.
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise HttpError(400, "Malformed JSON.") from None


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer <key>`.

    The header is parsed here instead of by ninja's `HttpBearer.__call__`, which logs the whole
    header value at ERROR level (with DEBUG on) when its scheme is not Bearer: a key sent as
    `Token <key>` or a Basic password would land in the log.
    """

    def __call__(self, request: HttpRequest) -> Any:
        scheme, _, token = request.headers.get(self.header, "").strip().partition(" ")
        if scheme.lower() != self.openapi_scheme or not token.strip():
            return None
        return self.authenticate(request, token.strip())

    def authenticate(self, request: HttpRequest, token: str) -> Any:
        return api_key_authenticate(raw_key=token)


api = NinjaAPI(
    title="Auto-Respond Lead Sync ingestion API",
    version="1",
    urls_namespace="api-v1",
    openapi_url="/openapi.json",
    docs_url="/docs",
    auth=ApiKeyAuth(),
    parser=GuardedJsonParser(),
)


def _error_response(
    request: HttpRequest, status: int, errors: list[dict[str, str]]
) -> HttpResponse:
    return api.create_response(request, {"errors": errors}, status=status)


def _field_name(loc: tuple | list) -> str:
    # Ninja reports locations like ("body", "payload", "email"); the client only knows "email".
    parts = [str(p) for p in loc if p not in ("body", "payload", "path", "query")]
    return ".".join(parts) or "body"


_PYDANTIC_MESSAGES = {
    "missing": "This field is required.",
    "extra_forbidden": "Unknown field.",
    "string_type": "Must be a string.",
    "string_too_long": "Too long: at most {max_length} characters.",
    "string_too_short": "Must not be empty.",
    "string_unicode": "Must be valid Unicode text (no unpaired surrogates).",
    "json_invalid": "Malformed JSON.",
    "model_attributes_type": "The body must be a JSON object.",
    "dict_type": "The body must be a JSON object.",
    # What a plain pydantic model (not ninja's Schema) reports for a body that is not an object.
    "model_type": "The body must be a JSON object.",
}


@api.exception_handler(NinjaValidationError)
def on_validation_error(request: HttpRequest, exc: NinjaValidationError) -> HttpResponse:
    errors = []
    for error in exc.errors:
        kind = error.get("type", "")
        template = _PYDANTIC_MESSAGES.get(kind)
        if kind == "value_error":
            message = str(error.get("ctx", {}).get("error", error.get("msg", "Invalid value.")))
        elif template:
            message = template.format(**error.get("ctx", {}))
        else:
            message = error.get("msg", "Invalid value.")
        errors.append({"field": _field_name(error.get("loc", ())), "message": message})
    # Every error at once: a source named in the body is checked against the database only when
    # the rest is valid (see post_inquiry and put_source), so here it is checked for the other
    # errors' company.
    reference = {"post_inquiry": "source", "put_source": "parent"}.get(_url_name(request))
    if reference and not any(e["field"] == reference for e in errors):
        errors.extend(_unknown_source_errors(request, reference))
    return _error_response(request, 400, errors)


def _url_name(request: HttpRequest) -> str:
    match = request.resolver_match
    return (match.url_name or "") if match is not None else ""


def _unknown_source_errors(request: HttpRequest, field: str) -> list[dict[str, str]]:
    """The error for the source that the body's `field` names, when no source has that slug."""
    try:
        slug = json.loads(request.body).get(field)
    except (ValueError, AttributeError, RecursionError):
        return []
    if isinstance(slug, str) and slug and not Source.objects.filter(slug=slug).exists():
        return [{"field": field, "message": _unknown_source_message(slug)}]
    return []


def _unknown_source_message(slug: str) -> str:
    return f"Unknown source '{slug}'."


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error_response(
        request,
        401,
        [{"field": "Authorization", "message": "Missing or invalid API key (Bearer token)."}],
    )


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja wraps whatever the parser raises in a generic 400; ours carries the real status.
    if isinstance(exc.__cause__, HttpError):
        exc = exc.__cause__
    return _error_response(request, exc.status_code, [{"field": "body", "message": str(exc)}])


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
    """The database is down, unreachable, or locked past the busy timeout: nothing was stored,
    and the same request can simply be sent again (the upsert makes that safe)."""
    logger.error("database unavailable at %s %s", request.method, request.path, exc_info=exc)
    response = api_error(
        503,
        "The service is temporarily unavailable: nothing was stored. "
        f"Try again in {settings.API_RETRY_AFTER_SECONDS} seconds.",
    )
    response["Retry-After"] = str(settings.API_RETRY_AFTER_SECONDS)
    return response


@api.exception_handler(NotSupportedError)
def on_not_supported(request: HttpRequest, exc: Exception) -> HttpResponse:
    """A statement prepared before a migration changed the columns it returns fails once per
    connection ("cached plan must not change result type"; psycopg then drops it and prepares it
    again): nothing was stored, and the same request sent again succeeds, so it is a 503 like a
    database that is briefly away. Anything else unsupported is an unexpected error."""
    if stale_prepared_statement(exc):
        return on_database_unavailable(request, exc)
    return on_unexpected_error(request, exc)


@api.exception_handler(Exception)
def on_unexpected_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Replaces Ninja's default, which answers with the traceback as text when DEBUG is on."""
    logger.error("unexpected error at %s %s", request.method, request.path, exc_info=exc)
    return api_error(
        500, "Internal error: the request was not processed. It has been logged; try again later."
    )


def _optional_text(max_length: int) -> Any:
    return Field(default=None, max_length=max_length)


def _path_errors(**values: str) -> None:
    """Apply the text rule to path parameters (pydantic only sees the body)."""
    errors = [(name, message) for name, value in values.items() if (message := text_error(value))]
    if errors:
        raise _FieldErrors(errors)


class InquiryIn(TextSchema):
    """An inquiry as Auto-Respond sends it. Absent fields keep their stored value; null clears."""

    model_config = ConfigDict(extra="forbid", strict=True)

    id: str = Field(min_length=1, max_length=64, description="The inquiry's id in Auto-Respond.")
    source: str = Field(min_length=1, max_length=64, description="The source's slug.")
    first_name: str | None = _optional_text(100)
    last_name: str | None = _optional_text(100)
    company: str | None = _optional_text(255)
    email: str | None = _optional_text(254)
    phone: str | None = _optional_text(40)
    street: str | None = _optional_text(255)
    city: str | None = _optional_text(100)
    state: str | None = _optional_text(100)
    postal_code: str | None = _optional_text(20)
    job_description: str | None = _optional_text(32000)
    country: str | None = Field(
        default=None, max_length=100, description="A country name or ISO 3166 code (optional)."
    )

    @field_validator("country")
    @classmethod
    def _known_country(cls, value: str | None) -> str | None:
        if value and value.strip() and country_code(value) is None:
            raise ValueError(UNKNOWN_COUNTRY)
        return value.strip() if value else value

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value:
            value = value.strip()
            try:
                validate_email(value)
            except DjangoValidationError:
                raise ValueError("Enter a valid email address.") from None
            refusal = salesforce_email_refusal(value)
            if refusal:
                raise ValueError(EMAIL_REFUSED.format(reason=refusal))
        return value


# The answers' datetimes as Django's JSON encoder (and so ninja's renderer) writes them: ISO 8601
# with milliseconds, "Z" for UTC. `answer` renders with pydantic and must not change the format.
ApiDateTime = Annotated[
    datetime,
    PlainSerializer(DjangoJSONEncoder().default, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class SyncOut(BaseModel):
    status: str
    status_label: str
    salesforce_object: str
    salesforce_id: str
    error_code: str
    error_message: str
    failed_attempts: int = Field(
        description="Failed attempts in a row since the last success; 0 once it has synced."
    )
    last_attempt_at: ApiDateTime | None
    next_attempt_at: ApiDateTime | None = Field(
        description="When a retrying sync is tried again; null otherwise."
    )
    synced_at: ApiDateTime | None


class InquiryOut(BaseModel):
    id: str
    source: str
    first_name: str
    last_name: str
    company: str
    email: str
    phone: str
    street: str
    city: str
    state: str
    postal_code: str
    country: str
    job_description: str
    created_at: ApiDateTime
    updated_at: ApiDateTime
    sync: SyncOut | None


class ErrorItem(BaseModel):
    field: str | None = Field(
        description="The bad field (a body field, a path parameter, `body` or `Authorization`); "
        "null when the error is about no one field (500, 503)."
    )
    message: str


class ErrorsOut(BaseModel):
    errors: list[ErrorItem]


class SourceIn(TextSchema):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, max_length=64, description="The parent's slug.")


class SourceOut(BaseModel):
    slug: str
    name: str
    parent: str | None


def inquiry_out(inquiry: Inquiry, *, source_slug: str | None = None) -> dict[str, Any]:
    """The inquiry as the API shows it. `source_slug` saves loading the source when the caller
    knows it (the POST named it)."""
    data: dict[str, Any] = {
        "id": inquiry.external_id,
        "source": source_slug if source_slug is not None else inquiry.source.slug,
        **{
            field: getattr(inquiry, field)
            for field in InquiryIn.model_fields
            if field not in ("id", "source")
        },
        "created_at": inquiry.created_at,
        "updated_at": inquiry.updated_at,
    }
    data["sync"] = inquiry_sync_status(inquiry)
    return data


def answer(status: int, schema: type[BaseModel], data: dict[str, Any]) -> HttpResponse:
    """`data`, validated by `schema` (the operation's declared answer for `status`), as a JSON
    response rendered by pydantic. Ninja's own path (validate through a wrapper model, dump to
    Python, then `json.dumps`) was about 4 % of an intake POST's CPU; the output is the same
    JSON (datetimes as Django writes them, see `ApiDateTime`)."""
    return HttpResponse(
        schema.model_validate(data).model_dump_json(),
        status=status,
        content_type="application/json; charset=utf-8",
    )


@api.post(
    "/inquiries",
    response={
        200: InquiryOut,
        201: InquiryOut,
        400: ErrorsOut,
        401: ErrorsOut,
        413: ErrorsOut,
        503: ErrorsOut,
    },
    summary="Create or update an inquiry",
    url_name="post_inquiry",
)
def post_inquiry(request: HttpRequest, payload: InquiryIn) -> Status:
    """The first POST of a (source, id) pair creates the inquiry (201); later ones update it (200):
    fields present replace stored values, fields absent keep them. Sending the same inquiry
    again (or twice at once) is safe: one inquiry, one sync per real change."""
    data = payload.model_dump(exclude_unset=True, exclude={"id", "source"})
    try:
        result = inquiry_upsert(source=payload.source, external_id=payload.id, data=data)
    except Source.DoesNotExist:
        raise _FieldErrors([("source", _unknown_source_message(payload.source))]) from None
    return answer(
        201 if result.created else 200,
        InquiryOut,
        inquiry_out(result.inquiry, source_slug=payload.source),
    )


@api.get(
    # `path:` so an id holding "/" (any string is a valid id) can be read back, URL-encoded or not.
    "/inquiries/{source}/{path:inquiry_id}",
    response={200: InquiryOut, 400: ErrorsOut, 401: ErrorsOut, 404: ErrorsOut, 503: ErrorsOut},
    summary="An inquiry and its sync status",
)
def get_inquiry(request: HttpRequest, source: str, inquiry_id: str) -> Status:
    _path_errors(source=source, id=inquiry_id)
    inquiry = (
        Inquiry.objects.select_related("source")
        .filter(source__slug=source, external_id=inquiry_id)
        .first()
    )
    if inquiry is None:
        # Only on a miss: say which part of the path is unknown.
        if not Source.objects.filter(slug=source).exists():
            return Status(
                404, {"errors": [{"field": "source", "message": _unknown_source_message(source)}]}
            )
        return Status(
            404, {"errors": [{"field": "id", "message": "No such inquiry for this source."}]}
        )
    return answer(200, InquiryOut, inquiry_out(inquiry))


@api.put(
    "/sources/{slug}",
    response={200: SourceOut, 201: SourceOut, 400: ErrorsOut, 401: ErrorsOut, 503: ErrorsOut},
    summary="Create or update a source (a business, or a location with a parent)",
)
def put_source(request: HttpRequest, slug: str, payload: SourceIn) -> Status:
    try:
        SLUG_VALIDATOR(slug)
    except DjangoValidationError as exc:
        raise _FieldErrors([("slug", exc.messages[0])]) from None
    try:
        source, created = source_upsert(slug=slug, name=payload.name, parent_slug=payload.parent)
    except DjangoValidationError as exc:
        raise _FieldErrors(
            [
                (field, message)
                for field, messages in exc.message_dict.items()
                for message in messages
            ]
        ) from None
    return Status(
        201 if created else 200,
        {
            "slug": source.slug,
            "name": source.name,
            "parent": source.parent.slug if source.parent else None,
        },
    )


class _FieldErrors(Exception):
    def __init__(self, errors: list[tuple[str, str]]) -> None:
        super().__init__(errors)
        self.errors = errors


@api.exception_handler(_FieldErrors)
def on_field_errors(request: HttpRequest, exc: _FieldErrors) -> HttpResponse:
    return _error_response(
        request, 400, [{"field": field, "message": message} for field, message in exc.errors]
    )
