"""The emulator's control API (JSON under /_emulator/) and its HTML page (/_emulator/ui).

Tests in other processes (Django tests, a Celery worker, benchmarks) set up orgs, users, queues,
rules and faults here and read back records, emails, API usage and the call log. It is served on
all three hosts and has no authentication: the emulator only listens on 127.0.0.1.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from typing import Any

from werkzeug import Request, Response
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule

from . import schema
from .core import (
    AssignmentEntry,
    AutoResponseEntry,
    DuplicateRule,
    EmulatorState,
    Org,
    SalesforceError,
)

# Callback URLs a new org's connected app accepts unless others are given: the Django service in
# `make run` and in tests (Django's test client host is "testserver").
DEFAULT_CALLBACK_URLS = [
    "http://127.0.0.1:8000/integrations/salesforce/callback/",
    "http://localhost:8000/integrations/salesforce/callback/",
    "http://testserver/integrations/salesforce/callback/",
]

_URLS = Map(
    [
        Rule("/_emulator/", endpoint="summary", methods=["GET"]),
        Rule("/_emulator/reset", endpoint="reset", methods=["POST"]),
        Rule("/_emulator/settings", endpoint="settings", methods=["PATCH", "POST"]),
        Rule("/_emulator/connected-apps", endpoint="add_app", methods=["POST"]),
        Rule("/_emulator/orgs", endpoint="orgs", methods=["GET", "POST"]),
        Rule("/_emulator/orgs/<org_id>", endpoint="org", methods=["GET"]),
        Rule("/_emulator/orgs/<org_id>/settings", endpoint="org_settings", methods=["PATCH"]),
        Rule("/_emulator/orgs/<org_id>/users", endpoint="add_user", methods=["POST"]),
        Rule(
            "/_emulator/orgs/<org_id>/users/<user_id>/permissions",
            endpoint="user_permissions",
            methods=["PUT"],
        ),
        Rule("/_emulator/orgs/<org_id>/queues", endpoint="add_queue", methods=["POST"]),
        Rule(
            "/_emulator/orgs/<org_id>/assignment-rules",
            endpoint="assignment_rule",
            methods=["POST"],
        ),
        Rule(
            "/_emulator/orgs/<org_id>/auto-response-rules",
            endpoint="auto_response_rule",
            methods=["POST"],
        ),
        Rule(
            "/_emulator/orgs/<org_id>/duplicate-rules/<sobject>",
            endpoint="duplicate_rule",
            methods=["PUT", "DELETE"],
        ),
        Rule("/_emulator/orgs/<org_id>/faults", endpoint="faults", methods=["POST", "DELETE"]),
        Rule(
            "/_emulator/orgs/<org_id>/expire-access-tokens",
            endpoint="expire_tokens",
            methods=["POST"],
        ),
        Rule(
            "/_emulator/orgs/<org_id>/revoke-refresh-tokens",
            endpoint="revoke_tokens",
            methods=["POST"],
        ),
        Rule(
            "/_emulator/orgs/<org_id>/records/<sobject>",
            endpoint="records",
            methods=["GET", "POST"],
        ),
        Rule(
            "/_emulator/orgs/<org_id>/records/<sobject>/<record_id>",
            endpoint="record",
            methods=["GET"],
        ),
        Rule(
            "/_emulator/orgs/<org_id>/leads/<lead_id>/convert",
            endpoint="convert",
            methods=["POST"],
        ),
        Rule("/_emulator/orgs/<org_id>/emails", endpoint="emails", methods=["GET"]),
        Rule("/_emulator/orgs/<org_id>/calls", endpoint="calls", methods=["GET"]),
        Rule("/_emulator/orgs/<org_id>/api-usage", endpoint="api_usage", methods=["GET", "PATCH"]),
        Rule("/_emulator/ui", endpoint="ui", methods=["GET"]),
    ],
    strict_slashes=False,
)


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, default=str), status=status, content_type="application/json")


def create_org_with_app(state: EmulatorState, spec: dict[str, Any]) -> dict[str, Any]:
    """Create an org and the connected app its service uses; returns the org with credentials."""
    spec = dict(spec)
    client_id = spec.pop("client_id", None)
    client_secret = spec.pop("client_secret", None)
    callback_urls = spec.pop("callback_urls", None) or DEFAULT_CALLBACK_URLS
    rotation = spec.pop("app_refresh_token_rotation", False)
    with state.lock:
        org = state.create_org(
            spec.pop("name", "Acme"),
            kind=spec.pop("kind", "production"),
            users=spec.pop("users", None),
            **spec,
        )
        app = state.apps.get(client_id or "")
        if app is None:
            app = state.add_connected_app(
                client_id, client_secret, callback_urls, refresh_token_rotation=rotation
            )
        else:
            app.callback_urls.extend(u for u in callback_urls if u not in app.callback_urls)
        return org.summary() | {
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "callback_urls": list(app.callback_urls),
        }


def handle_control(state: EmulatorState, request: Request) -> Response:
    adapter = _URLS.bind_to_environ(request.environ)
    try:
        endpoint, values = adapter.match()
    except NotFound:
        return _json({"error": "not found"}, 404)
    except HTTPException as exc:
        return _json({"error": exc.description}, exc.code or 400)
    body: dict[str, Any] = {}
    if request.method in ("POST", "PUT", "PATCH") and request.get_data():
        try:
            body = json.loads(request.get_data(as_text=True))
        except ValueError:
            return _json({"error": "body must be JSON"}, 400)
    try:
        org = state.org(values.pop("org_id")) if "org_id" in values else None
        return _dispatch(state, request, endpoint, org, values, body)
    except KeyError as exc:
        return _json({"error": f"not found: {exc}"}, 404)
    except (ValueError, TypeError) as exc:
        return _json({"error": str(exc)}, 400)
    except SalesforceError as exc:
        return _json({"error": exc.error_code, "message": exc.message}, exc.status_code)


def _dispatch(
    state: EmulatorState,
    request: Request,
    endpoint: str,
    org: Org | None,
    values: dict[str, str],
    body: dict[str, Any],
) -> Response:
    if endpoint == "ui":
        return render_ui(state, request.args.get("org"))
    if endpoint == "summary":
        return _json(
            {
                "login_urls": state.login_urls,
                "instance_url": state.instance_url,
                "auth_code_ttl_seconds": state.auth_code_ttl_seconds,
                "orgs": [o.summary() for o in state.orgs.values()],
                "connected_apps": [
                    {k: v for k, v in asdict(a).items() if k != "client_secret"}
                    for a in state.apps.values()
                ],
            }
        )
    if endpoint == "reset":
        state.reset()
        return _json({"ok": True})
    if endpoint == "settings":
        if "auth_code_ttl_seconds" in body:
            state.auth_code_ttl_seconds = float(body["auth_code_ttl_seconds"])
        return _json({"auth_code_ttl_seconds": state.auth_code_ttl_seconds})
    if endpoint == "add_app":
        app = state.add_connected_app(**body)
        return _json(asdict(app), 201)
    if endpoint == "orgs":
        if request.method == "GET":
            return _json([o.summary() for o in state.orgs.values()])
        return _json(create_org_with_app(state, body), 201)
    assert org is not None
    if endpoint == "org":
        return _json(org.summary())
    if endpoint == "org_settings":
        org.update_settings(**body)
        return _json(org.settings())
    if endpoint == "add_user":
        user = org.add_user(**body)
        return _json(asdict(user) | {"name": user.name}, 201)
    if endpoint == "user_permissions":
        user = org.set_user_permissions(
            values["user_id"], cannot_create=body.get("cannot_create", [])
        )
        return _json(asdict(user) | {"name": user.name})
    if endpoint == "add_queue":
        queue = org.add_queue(**body)
        return _json(asdict(queue), 201)
    if endpoint == "assignment_rule":
        rule = org.set_assignment_rule(
            body["sobject"],
            body.get("name", "Default assignment"),
            [AssignmentEntry(**e) for e in body.get("entries", [])],
            active=body.get("active", True),
        )
        return _json(asdict(rule), 201)
    if endpoint == "auto_response_rule":
        auto = org.set_auto_response_rule(
            body["sobject"],
            body.get("name", "Auto-response"),
            [AutoResponseEntry(**e) for e in body.get("entries", [])],
            active=body.get("active", True),
        )
        return _json(asdict(auto), 201)
    if endpoint == "duplicate_rule":
        sobject = values["sobject"]
        if request.method == "DELETE":
            org.set_duplicate_rule(None, sobject)
            return _json({"ok": True})
        rule = DuplicateRule(
            sobject=sobject,
            name=body.pop("name", f"Standard_{sobject}_Duplicate_Rule"),
            match_rule=body.pop("match_rule", f"Standard_{sobject}_Match_Rule_v1_0"),
            **body,
        )
        org.set_duplicate_rule(rule)
        return _json(asdict(rule))
    if endpoint == "faults":
        if request.method == "DELETE":
            org.clear_faults()
            return _json({"ok": True})
        return _json(asdict(org.add_fault(**body)), 201)
    if endpoint == "expire_tokens":
        return _json({"expired": state.expire_access_tokens(org.id)})
    if endpoint == "revoke_tokens":
        return _json({"revoked": state.revoke_refresh_tokens(org.id)})
    if endpoint == "records":
        definition = schema.sobject_def(values["sobject"])
        if definition is None:
            raise KeyError(values["sobject"])
        if request.method == "POST":
            record_id = org.insert_record(
                definition.name, body.get("fields", {}), converted=body.get("converted", False)
            )
            return _json({"id": record_id}, 201)
        include_deleted = request.args.get("include_deleted") == "true"
        with org.lock:
            rows = [dict(r) for r in org.rows(definition.name, include_deleted=include_deleted)]
        return _json(rows)
    if endpoint == "record":
        return _json(org.get(values["sobject"], values["record_id"]))
    if endpoint == "convert":
        contact_id, account_id = org.convert_lead(values["lead_id"], body.get("account_id"))
        return _json({"contact_id": contact_id, "account_id": account_id})
    if endpoint == "emails":
        with org.lock:
            return _json(list(org.emails))
    if endpoint == "calls":
        with org.lock:
            return _json(list(org.calls))
    if endpoint == "api_usage":
        if request.method == "PATCH":
            with org.lock:
                org.api_used = int(body["used"])
        return _json(org.api_usage())
    return _json({"error": "not found"}, 404)


# --------------------------------------------------------------------------- HTML page

_UI_FIELDS = {
    "Lead": [
        "Id",
        "Name",
        "Company",
        "Email",
        "Phone",
        "Status",
        "LeadSource",
        "OwnerId",
        "IsConverted",
    ],
    "Contact": ["Id", "Name", "Email", "Phone", "MobilePhone", "AccountId", "OwnerId"],
    "Account": ["Id", "Name", "Phone", "OwnerId"],
    "Case": ["Id", "CaseNumber", "Subject", "SuppliedEmail", "Status", "Origin", "OwnerId"],
}


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    if not rows:
        return "<p class='empty'>None yet.</p>"
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape('' if v is None else str(v))}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_ui(state: EmulatorState, org_id: str | None) -> Response:
    """A page for the demo: each org's records, sent emails and recent API calls."""
    sections = []
    with state.lock:
        orgs = [o for o in state.orgs.values() if org_id in (None, o.id)]
        for org in orgs:
            owner = {**{u.id: u.name for u in org.users.values()}}
            owner.update({q.id: f"Queue: {q.name}" for q in org.queues.values()})
            parts = [
                f"<h2>{html.escape(org.name)} <small>{org.kind} · {org.id}</small></h2>",
                f"<p>API requests today: {org.api_used}/{org.daily_api_limit} · "
                f"auto-response emails today: {org.email_usage()['used']}/"
                f"{org.daily_email_limit}</p>",
            ]
            for sobject, fields in _UI_FIELDS.items():
                rows = [
                    [owner.get(r.get(f), r.get(f)) if f == "OwnerId" else r.get(f) for f in fields]
                    for r in org.rows(sobject)
                ]
                if rows or sobject in ("Lead", "Contact"):
                    parts.append(f"<h3>{sobject}s</h3>" + _table(fields, rows))
            parts.append(
                "<h3>Emails sent</h3>"
                + _table(
                    ["time", "kind", "status", "to", "from", "subject", "template", "record"],
                    [
                        [
                            e["time"],
                            e["kind"],
                            e["status"],
                            e["to"],
                            e["from"],
                            e["subject"],
                            e["template"],
                            e["record_id"],
                        ]
                        for e in reversed(org.emails)
                    ],
                )
            )
            parts.append(
                "<h3>Recent API calls</h3>"
                + _table(
                    ["time", "api", "method", "path", "status", "fault"],
                    [
                        [c["time"], c["api"], c["method"], c["path"], c["status"], c["fault"]]
                        for c in list(reversed(org.calls))[:50]
                    ],
                )
            )
            sections.append("<section>" + "".join(parts) + "</section>")
    content = "".join(sections) or "<p>No orgs yet. Create one through the control API.</p>"
    page = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'><title>Salesforce emulator</title>"
        "<style>body{font-family:sans-serif;margin:2em;color:#181818}"
        "table{border-collapse:collapse;margin-bottom:1em;font-size:.9em}"
        "td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}"
        "th{background:#f3f3f3}small{color:#666;font-weight:normal}"
        "section{border-top:2px solid #0176d3;margin-top:2em}</style></head>"
        "<body><h1>Salesforce emulator</h1>"
        f"{content}</body></html>"
    )
    return Response(page, content_type="text/html; charset=utf-8")
