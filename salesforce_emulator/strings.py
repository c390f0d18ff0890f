"""Text values as Salesforce checks them: lengths in UTF-16 code units, and email addresses.

Lengths (docs/salesforce-facts.md section 3, "Lengths"): Salesforce Help article 005166849 says
formulas and Apex count a surrogate pair (an emoji) as 2 characters, and mattermost-data-
warehouse#1273 reports the same for field writes. That the API's length check does so is
UNCONFIRMED, so it is one constant (and an org setting, ``count_utf16_code_units``, for tests that
want the other reading).

Email (docs/salesforce-facts.md section 3, "Email"), Salesforce Help 000384328 "Email Address
Format Technical Standards Validation" and KB 000001145 "How does Salesforce qualify an email
address?": the local part takes ``A-Z a-z 0-9 . ! # $ % & ' * / = ? ^ _ + - ` { | } ~``; two dots
in a row are allowed in the middle and a dot at the end, but not a dot at the start; the domain
takes letters, digits, dashes (and its dots); non-Latin characters only with Email Address
Internationalization (org setting ``email_address_internationalization``). A domain without a
dot and an all-numeric domain are refused in integrations' reports (UNCONFIRMED). Salesforce
stores addresses in lower case (help 000384328; org setting ``email_stored_lowercase``, off by
default so existing tests keep their spelling). Hand-written rather than email-validator because
the point is Salesforce's own rules, not RFC 5321's, and the emulator must not do DNS.
"""

from __future__ import annotations

import re

# UNCONFIRMED (see above): field lengths count UTF-16 code units, so an emoji counts 2.
COUNT_UTF16_CODE_UNITS = True

# Help 000384328 says addresses are stored in lower case; off by default because the service's
# tests written before this fact compare stored addresses with what they sent.
EMAIL_STORED_LOWERCASE = False

# RFC 5322 atext, ASCII: what a local part may hold besides dots.
_LOCAL_ASCII = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$")
_LABEL_ASCII = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$")
# With internationalisation on: any letter or digit too (\w without the underscore for labels).
_LOCAL_INTL = re.compile(r"^[\w!#$%&'*+/=?^`{|}~-]+$")
_LABEL_INTL = re.compile(r"^[^\W_](?:[\w-]*[^\W_])?$")
MAX_LOCAL_PART = 64  # RFC 5321; Salesforce's Email fields are 80 in all


def length(value: str, *, utf16: bool = COUNT_UTF16_CODE_UNITS) -> int:
    """The length Salesforce compares with a field's ``length`` (UTF-16 units or code points)."""
    if not utf16:
        return len(value)
    return len(value.encode("utf-16-le")) // 2


def truncate(value: str, limit: int, *, utf16: bool = COUNT_UTF16_CODE_UNITS) -> str:
    """Cut to ``limit`` units without splitting a surrogate pair (AllowFieldTruncationHeader)."""
    if not utf16:
        return value[:limit]
    out, used = [], 0
    for char in value:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit:
            break
        out.append(char)
        used += size
    return "".join(out)


def email_problem(value: str, *, international: bool = False) -> str | None:
    """Why Salesforce would refuse this address, or None when it is accepted."""
    if value.count("@") != 1:
        return "needs exactly one @"
    local, domain = value.split("@")
    if not local or len(local) > MAX_LOCAL_PART:
        return "the part before @ is empty or too long"
    if local.startswith("."):
        return "a dot at the start of the name"
    if not international and not value.isascii():
        return "non-Latin characters (the org does not allow international addresses)"
    local_re = _LOCAL_INTL if international else _LOCAL_ASCII
    # Help 000384328: ".." in the middle and "." at the end are allowed (Japanese providers).
    if not all(local_re.match(part) for part in local.split(".") if part):
        return "a character not allowed before @"
    if domain.startswith("["):
        return "an IP-address domain"
    labels = domain.split(".")
    if len(labels) < 2:
        return "a domain without a dot"
    label_re = _LABEL_INTL if international else _LABEL_ASCII
    if not all(label_re.match(label) for label in labels):
        return "a character not allowed in the domain"
    if labels[-1].isdigit() or all(label.isdigit() for label in labels):
        return "an IP-address domain"
    return None
