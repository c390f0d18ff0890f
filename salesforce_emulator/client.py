"""EmulatorControl: a small client of the emulator's JSON control API.

For tests and tools in other processes than the emulator (Django tests, a Celery worker,
benchmarks). Every method is one HTTP call to ``/_emulator/...`` on any of the emulator's hosts.
"""

from __future__ import annotations

from typing import Any

import requests

TIMEOUT_SECONDS = 10


class EmulatorControlError(RuntimeError):
    """The control API refused a request."""


class EmulatorControl:
    """Set up orgs, users, rules and faults; read records, emails, calls and API usage."""

    def __init__(self, base_url: str, *, verify: Any = True) -> None:
        # base_url: the login host (http) or the instance host (https, then pass verify=ca_path).
        self.base_url = base_url.rstrip("/")
        self.session = requests.Session()
        self.session.verify = verify

    def _call(self, method: str, path: str, json: Any = None, params: Any = None) -> Any:
        response = self.session.request(
            method,
            f"{self.base_url}/_emulator{path}",
            json=json,
            params=params,
            timeout=TIMEOUT_SECONDS,
        )
        if response.status_code >= 400:
            raise EmulatorControlError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json()

    # ------------------------------------------------------------------ setup

    def summary(self) -> dict[str, Any]:
        return self._call("GET", "/")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def set_auth_code_ttl(self, seconds: float) -> None:
        self._call("PATCH", "/settings", {"auth_code_ttl_seconds": seconds})

    def create_org(
        self,
        name: str = "Acme",
        *,
        kind: str = "production",
        users: list[dict[str, Any]] | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        callback_urls: list[str] | None = None,
        **settings: Any,
    ) -> dict[str, Any]:
        """A new org; returns org_id, users, queues, client_id, client_secret, callback_urls.

        ``users``: [{"username", "first_name", "last_name", "email", "active", "cannot_create"}].

        ``settings``: daily_api_limit, daily_email_limit, refresh_token_rotation, auto_approve,
        session_timeout_seconds, default_lead_status, and the real-org switches
        (docs/salesforce-facts.md): state_country_picklists (bool), default_country (ISO code or
        None), picklist_values ({"Lead.LeadSource": [...]}), restricted_picklists
        (["Lead.LeadSource"]), email_address_internationalization (bool),
        count_utf16_code_units (bool).
        """
        spec: dict[str, Any] = {"name": name, "kind": kind, **settings}
        for key, value in (
            ("users", users),
            ("client_id", client_id),
            ("client_secret", client_secret),
            ("callback_urls", callback_urls),
        ):
            if value is not None:
                spec[key] = value
        return self._call("POST", "/orgs", spec)

    def org(self, org_id: str) -> dict[str, Any]:
        return self._call("GET", f"/orgs/{org_id}")

    def set_org_settings(self, org_id: str, **settings: Any) -> dict[str, Any]:
        """Change org settings (the same names as ``create_org``); returns them all."""
        return self._call("PATCH", f"/orgs/{org_id}/settings", settings)

    def add_connected_app(self, **app: Any) -> dict[str, Any]:
        return self._call("POST", "/connected-apps", app)

    def add_user(self, org_id: str, username: str, **fields: Any) -> dict[str, Any]:
        return self._call("POST", f"/orgs/{org_id}/users", {"username": username, **fields})

    def set_user_permissions(
        self, org_id: str, user_id: str, *, cannot_create: list[str]
    ) -> dict[str, Any]:
        """Set the objects a user's profile may not create (replaces the earlier list; [] gives
        every permission back). Describe then says createable false for them, and REST, SOAP,
        composite and collection creates fail with CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY."""
        return self._call(
            "PUT", f"/orgs/{org_id}/users/{user_id}/permissions", {"cannot_create": cannot_create}
        )

    def add_queue(
        self,
        org_id: str,
        name: str,
        *,
        member_ids: list[str] | None = None,
        email: str | None = None,
        sobjects: list[str] | None = None,
    ) -> dict[str, Any]:
        body = {"name": name, "member_ids": member_ids or [], "email": email}
        if sobjects:
            body["sobjects"] = sobjects
        return self._call("POST", f"/orgs/{org_id}/queues", body)

    def set_assignment_rule(
        self,
        org_id: str,
        sobject: str,
        entries: list[dict[str, Any]],
        *,
        name: str = "Default assignment",
        active: bool = True,
    ) -> dict[str, Any]:
        """entries: [{"assign_to": user/queue id, "criteria": {"LeadSource": "Web"}}], ordered."""
        body = {"sobject": sobject, "name": name, "entries": entries, "active": active}
        return self._call("POST", f"/orgs/{org_id}/assignment-rules", body)

    def set_auto_response_rule(
        self,
        org_id: str,
        sobject: str,
        entries: list[dict[str, Any]],
        *,
        name: str = "Auto-response",
        active: bool = True,
    ) -> dict[str, Any]:
        """entries: [{"template", "from_address", "criteria", "subject", "body", "reply_to"}]."""
        body = {"sobject": sobject, "name": name, "entries": entries, "active": active}
        return self._call("POST", f"/orgs/{org_id}/auto-response-rules", body)

    def set_duplicate_rule(
        self,
        org_id: str,
        sobject: str,
        *,
        match_fields: list[str] | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """match_fields (alternatives, any one matching is enough) from {"Email", "Phone"}, "Name"
        (the company) for Account, and "NameAndCompany" (first name, last name and company, as the
        standard Lead/Contact matching rules; see matching.py) for Lead and Contact. Options:
        allow_save (True = Allow with alert, False = Block), compare_sobjects, on_create,
        on_edit, active, name, match_rule, error_message."""
        body = {"match_fields": match_fields or ["Email"], **options}
        return self._call("PUT", f"/orgs/{org_id}/duplicate-rules/{sobject}", body)

    def remove_duplicate_rule(self, org_id: str, sobject: str) -> None:
        self._call("DELETE", f"/orgs/{org_id}/duplicate-rules/{sobject}")

    # ------------------------------------------------------------------ faults and tokens

    def add_fault(
        self,
        org_id: str,
        kind: str,
        *,
        count: int | None = None,
        probability: float | None = None,
        latency_ms: int = 0,
        api: str | None = None,
        method: str | None = None,
        path_contains: str | None = None,
    ) -> dict[str, Any]:
        """kind: latency, slow_response, server_unavailable, unable_to_lock_row,
        drop_connection, drop_after_processing, request_limit_exceeded."""
        body = {
            "kind": kind,
            "count": count,
            "probability": probability,
            "latency_ms": latency_ms,
            "api": api,
            "method": method,
            "path_contains": path_contains,
        }
        return self._call("POST", f"/orgs/{org_id}/faults", body)

    def clear_faults(self, org_id: str) -> None:
        self._call("DELETE", f"/orgs/{org_id}/faults")

    def expire_access_tokens(self, org_id: str) -> int:
        return self._call("POST", f"/orgs/{org_id}/expire-access-tokens")["expired"]

    def revoke_refresh_tokens(self, org_id: str) -> int:
        return self._call("POST", f"/orgs/{org_id}/revoke-refresh-tokens")["revoked"]

    # ------------------------------------------------------------------ data

    def records(
        self, org_id: str, sobject: str, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        params = {"include_deleted": "true"} if include_deleted else None
        return self._call("GET", f"/orgs/{org_id}/records/{sobject}", params=params)

    def record(self, org_id: str, sobject: str, record_id: str) -> dict[str, Any]:
        return self._call("GET", f"/orgs/{org_id}/records/{sobject}/{record_id}")

    def insert_record(
        self, org_id: str, sobject: str, fields: dict[str, Any], *, converted: bool = False
    ) -> str:
        """Seed a record directly: no validation rules, no automation, not an API call."""
        body = {"fields": fields, "converted": converted}
        return self._call("POST", f"/orgs/{org_id}/records/{sobject}", body)["id"]

    def convert_lead(self, org_id: str, lead_id: str) -> str:
        """Convert a Lead; returns the new Contact id."""
        return self._call("POST", f"/orgs/{org_id}/leads/{lead_id}/convert")["contact_id"]

    def emails(self, org_id: str) -> list[dict[str, Any]]:
        return self._call("GET", f"/orgs/{org_id}/emails")

    def calls(self, org_id: str) -> list[dict[str, Any]]:
        """The org's call log, oldest first. ``api`` is "rest", "soap" or "oauth" (token and
        revoke requests: ``grant_type``, ``client_auth``, ``status``, ``error``; not counted as
        API requests). Filter on ``api`` to count only the data API's calls."""
        return self._call("GET", f"/orgs/{org_id}/calls")

    def api_usage(self, org_id: str) -> dict[str, int]:
        """{"used", "max", "remaining"} of the org's daily API requests."""
        return self._call("GET", f"/orgs/{org_id}/api-usage")

    def set_api_usage(self, org_id: str, used: int) -> dict[str, int]:
        return self._call("PATCH", f"/orgs/{org_id}/api-usage", {"used": used})
