"""The Lightning record page, ``https://<instance>/lightning/r/<SObject>/<Id>/view`` (issue 14).

The service links each synced record to Salesforce's Lightning record URL on the org's instance.
Real orgs serve it on the My Domain's Lightning host behind a login; the emulator serves it on its
instance host without one (the emulator listens on 127.0.0.1 only) as a small HTML page showing
the record's fields, so a link in the card opens something true. An unknown, malformed or deleted
id gets a clear 404 page.
"""

from __future__ import annotations

import html
import re

from werkzeug import Request, Response

from . import schema
from .core import EmulatorState, Org, SalesforceError

PATH = re.compile(r"^/lightning/r/(?P<sobject>\w+)/(?P<record_id>\w+)/view/?$")
_STYLE = (
    "body{font-family:sans-serif;margin:0;color:#181818;background:#f3f3f3}"
    "header{background:#0176d3;color:#fff;padding:1em 2em}"
    "main{background:#fff;margin:1.5em 2em;padding:1em 2em;border-radius:.4em}"
    "dl{display:grid;grid-template-columns:max-content 1fr;gap:.4em 2em}"
    "dt{color:#555}dd{margin:0}small{opacity:.8}"
)


def handle_lightning(state: EmulatorState, request: Request) -> Response | None:
    """The page for a /lightning/r/... path, or None for any other path."""
    match = PATH.match(request.path)
    if match is None:
        return None
    definition = schema.sobject_def(match["sobject"])
    record_id = match["record_id"]
    if definition is None or not definition.writable:
        return _not_found(f"There is no object called {match['sobject']}.")
    with state.lock:
        for org in state.orgs.values():
            try:
                record = org.get(definition.name, record_id)
            except SalesforceError as exc:
                if exc.error_code == "ENTITY_IS_DELETED":
                    return _not_found("This record was deleted (it is in the Recycle Bin).")
                continue
            return _record_page(org, definition, record)
    return _not_found(
        f"No {definition.label} has the id {record_id} in any org of this emulator. It may "
        "have been deleted, or the link points to another org."
    )


def _record_page(org: Org, definition: schema.SObjectDef, record: dict[str, object]) -> Response:
    config = org.schema_config()
    rows = []
    for f in definition.fields:
        value = record.get(f.name)
        if not config.has(f) or value in (None, "", False) or f.name in ("IsDeleted",):
            continue
        if f.name == "OwnerId":
            owner = org.owner_name(str(value))
            value = f"{owner[1]} ({value})" if owner else value
        rows.append(f"<dt>{html.escape(f.label)}</dt><dd>{html.escape(str(value))}</dd>")
    title = str(record.get("Name") or record.get("CaseNumber") or record["Id"])
    body = (
        f"<header><small>{html.escape(definition.label)} · {html.escape(org.name)}</small>"
        f"<h1>{html.escape(title)}</h1></header>"
        f"<main><dl>{''.join(rows)}</dl></main>"
    )
    return _page(f"{title} | {definition.label} | Salesforce", body, 200)


def _not_found(reason: str) -> Response:
    body = f"<header><h1>Record not found</h1></header><main><p>{html.escape(reason)}</p></main>"
    return _page("Record not found | Salesforce", body, 404)


def _page(title: str, body: str, status: int) -> Response:
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body>{body}</body></html>"
    )
    return Response(page, status=status, content_type="text/html; charset=utf-8")
