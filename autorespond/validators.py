"""Checks of inquiry values that the ingestion API applies and the integrations reuse.

The core never imports an integration, so what an integration needs to know about a value before
it sends it (may Salesforce store this email? which country is "usa"?) lives here, where both the
API and the integration can call it.

Email: Salesforce refuses an address it considers malformed with INVALID_EMAIL_ADDRESS, and the
record with it (issue 13, case 2). Its published rules (Salesforce Knowledge Article 000001145,
"How does Salesforce qualify an email address?", and 000384328, "Salesforce Email Address Format
Technical Standards Validation"): the local part takes the letters, digits and
``!#$%&'*/=?^_+-`{|}~.``, not starting with a dot; the domain takes letters, digits and dashes in
dot-separated labels. `salesforce_email_refusal` turns down what those rules *clearly* refuse and
Django's own email check lets through: a domain without a dot (``bea@localhost``), an IP-literal
domain (``bea@[10.0.0.1]``), characters outside those sets, a leading dot, and labels that begin
or end with a dash. Non-ASCII addresses are left to the org: orgs that set up Email Address
Internationalization (EAI) accept them, others refuse them, and the sync then sends the record
without the email (see the Salesforce integration's mapping) rather than losing it.

Why hand-written: Django's `validate_email` follows the HTML/RFC rules (it accepts ``localhost``
and IP literals on purpose), and no library encodes Salesforce's narrower rules.

Country: an ISO 3166 code (``US``, ``USA``) or an English name (``United States``), read with
pycountry.
"""

from __future__ import annotations

import re

import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

# KB 000001145: the characters Salesforce accepts in the local part of an email address.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*/=?^_+\-`{|}~.]+")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")

#: What the API says for an email Salesforce would refuse (the field is named beside it).
EMAIL_REFUSED = "Salesforce does not accept this email address: {reason}"

# Names people use that ISO 3166 spells otherwise.
_COUNTRY_ALIASES = {"uk": "GB", "great britain": "GB", "england": "GB"}


def salesforce_email_refusal(email: str) -> str | None:
    """Why Salesforce clearly refuses `email`, in plain words, or None when it may accept it.

    Rules and sources in the module docstring. Non-ASCII addresses return None (they depend on
    the org's EAI setting).
    """
    value = (email or "").strip()
    if not value:
        return None
    try:
        validate_email(value)
    except ValidationError:
        return "it is not a valid email address."
    local, _, domain = value.rpartition("@")
    if not value.isascii():
        return None
    if domain.startswith("["):
        return "the domain is an IP address; it must be a name like example.com."
    if "." not in domain:
        return "the domain has no dot; it must be a full name like example.com."
    if not _LOCAL_PART.fullmatch(local):
        return "the part before the @ holds characters Salesforce does not allow."
    if local.startswith("."):
        return "the part before the @ must not start with a dot."
    if not all(_DOMAIN_LABEL.fullmatch(label) for label in domain.split(".")):
        return "the domain may hold only letters, digits and dashes between its dots."
    return None


def country_code(value: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country given as a code or an English name
    (``"usa"``, ``"United States"`` → ``"US"``), or None when it is not one we know."""
    text = " ".join((value or "").split())
    if not text:
        return None
    alias = _COUNTRY_ALIASES.get(text.casefold())
    if alias:
        return alias
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        return None
