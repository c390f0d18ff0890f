"""The ingestion API's guard at the edge of the stack (the first middleware).

* **Body size.** A body over `API_MAX_BODY_BYTES` gets 413 in the API's error shape before
  anything reads it: Django would read a body of any declared length up to its own
  `DATA_UPLOAD_MAX_MEMORY_SIZE` into memory (and answer a longer one with a 500 from the API,
  whose framework reads `request.body` before its parser runs). With a Content-Length the check
  reads nothing; without one (a chunked body, which a server like gunicorn de-chunks and marks
  `wsgi.input_terminated`) at most the limit plus one byte is read. The body read here is the
  one the API then parses, so Django's own limit never decides for the API.
* **JSON errors only.** Under `/api/`, any error response that is not JSON (Django's 404 page, a
  DEBUG traceback page from a failure outside the API's own handlers) is replaced by the API's
  error shape. Django has already logged the failure with its traceback (`django.request`);
  the client gets no traceback, whatever DEBUG says.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"

_STATUS_MESSAGES = {
    400: "Bad request.",
    404: "Not found.",
    405: "Method not allowed.",
    413: "Body too large.",
    500: "Internal error: the request was not processed. It has been logged; try again later.",
    503: "The service is temporarily unavailable; try again shortly.",
}


def api_error(status: int, message: str, *, field: str | None = None) -> JsonResponse:
    """A response in the API's error shape: `{"errors": [{"field": …, "message": …}]}`.
    `field` is null for an error that is about no one field (404 of a path, 500, 503)."""
    return JsonResponse({"errors": [{"field": field, "message": message}]}, status=status)


def body_too_large(limit: int) -> JsonResponse:
    return api_error(413, f"Body too large: at most {limit} bytes.", field="body")


class ApiGuardMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX):
            return self.get_response(request)
        too_large = self._read_bounded_body(request)
        if too_large is not None:
            return too_large
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            replacement = api_error(
                response.status_code,
                _STATUS_MESSAGES.get(response.status_code, "Request failed."),
            )
            if response.has_header("Retry-After"):
                replacement["Retry-After"] = response["Retry-After"]
            return replacement
        return response

    @staticmethod
    def _read_bounded_body(request: HttpRequest) -> JsonResponse | None:
        """Read the body (at most the limit) and hand it to the request; or answer 413."""
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return None
        limit = settings.API_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return api_error(400, "Invalid Content-Length header.", field="Content-Length")
        if length > limit:
            return body_too_large(limit)
        if length >= 0:
            # Django's LimitedStream stops at Content-Length: this reads at most `limit` bytes.
            body = request.read(length)
        elif request.META.get("wsgi.input_terminated"):
            # No length (chunked): the server ends the stream at the body's end. Read one byte
            # past the limit to tell "at the limit" from "over it", never the whole body.
            body = request.META["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return body_too_large(limit)
        else:
            body = b""
        # Django's own `request.body` then returns this, without its upload-size check (the
        # body is already in memory and within our limit). Setting `_body` is how Django's
        # test client and its `HttpRequest.body` cache the body too.
        request._body = body
        return None
