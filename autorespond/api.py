"""The ingestion API Auto-Respond calls: `/api/v1/…`. The contract (paths, fields, statuses) is
fixed by the product; the OpenAPI schema is served at `/api/v1/openapi.json`.

Every bad request gets a 4xx with `{"errors": [{"field": …, "message": …}, …]}` naming each bad
field, and changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import ConfigDict, Field, field_validator

from autorespond.hooks import inquiry_sync_status
from autorespond.models import SLUG_VALIDATOR, Inquiry, Source
from autorespond.services import api_key_authenticate, inquiry_upsert, source_upsert
from autorespond.validators import EMAIL_REFUSED, country_code, salesforce_email_refusal

UNKNOWN_COUNTRY = "Unknown country: give an ISO 3166 code (like US) or its English name."


class GuardedJsonParser(Parser):
    """Checks what pydantic cannot see: the body's size, and that it is JSON at all."""

    def parse_body(self, request: HttpRequest) -> Any:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.API_MAX_BODY_BYTES:
            raise HttpError(413, f"Body too large: at most {settings.API_MAX_BODY_BYTES} bytes.")
        try:
            return json.loads(request.body or b"")
        except (ValueError, UnicodeDecodeError):
            raise HttpError(400, "Malformed JSON.") from None


class ApiKeyAuth(HttpBearer):
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
    "json_invalid": "Malformed JSON.",
    "model_attributes_type": "The body must be a JSON object.",
    "dict_type": "The body must be a JSON object.",
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
    return _error_response(request, 400, errors)


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


def _optional_text(max_length: int) -> Any:
    return Field(default=None, max_length=max_length)


class InquiryIn(Schema):
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


class SyncOut(Schema):
    status: str
    status_label: str
    salesforce_object: str
    salesforce_id: str
    error_code: str
    error_message: str
    failed_attempts: int = Field(
        description="Failed attempts in a row since the last success; 0 once it has synced."
    )
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(
        description="When a retrying sync is tried again; null otherwise."
    )
    synced_at: datetime | None


class InquiryOut(Schema):
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
    created_at: datetime
    updated_at: datetime
    sync: SyncOut | None


class ErrorItem(Schema):
    field: str
    message: str


class ErrorsOut(Schema):
    errors: list[ErrorItem]


class SourceIn(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    name: str = Field(min_length=1, max_length=200)
    parent: str | None = Field(default=None, max_length=64, description="The parent's slug.")


class SourceOut(Schema):
    slug: str
    name: str
    parent: str | None


def inquiry_out(inquiry: Inquiry) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": inquiry.external_id,
        "source": inquiry.source.slug,
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


@api.post(
    "/inquiries",
    response={200: InquiryOut, 201: InquiryOut, 400: ErrorsOut, 401: ErrorsOut, 413: ErrorsOut},
    summary="Create or update an inquiry",
)
def post_inquiry(request: HttpRequest, payload: InquiryIn) -> Status:
    """The first POST of a (source, id) pair creates the inquiry (201); later ones update it (200):
    fields present replace stored values, fields absent keep them."""
    source = Source.objects.filter(slug=payload.source).first()
    if source is None:
        raise _FieldErrors([("source", f"Unknown source '{payload.source}'.")])
    data = payload.model_dump(exclude_unset=True, exclude={"id", "source"})
    result = inquiry_upsert(source=source, external_id=payload.id, data=data)
    return Status(201 if result.created else 200, inquiry_out(result.inquiry))


@api.get(
    "/inquiries/{source}/{inquiry_id}",
    response={200: InquiryOut, 401: ErrorsOut, 404: ErrorsOut},
    summary="An inquiry and its sync status",
)
def get_inquiry(request: HttpRequest, source: str, inquiry_id: str) -> Status:
    inquiry = (
        Inquiry.objects.select_related("source")
        .filter(source__slug=source, external_id=inquiry_id)
        .first()
    )
    if inquiry is None:
        return Status(
            404, {"errors": [{"field": "id", "message": "No such inquiry for this source."}]}
        )
    return Status(200, inquiry_out(inquiry))


@api.put(
    "/sources/{slug}",
    response={200: SourceOut, 201: SourceOut, 400: ErrorsOut, 401: ErrorsOut},
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
