"""Salesforce-style record ids: 15 case-sensitive characters plus a 3-character checksum.

The 18-character form is what the APIs return; the suffix encodes which of the first 15
characters are upper case, so a 15-character id typed by a person can be widened again.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading

KEY_PREFIXES: dict[str, str] = {
    "Organization": "00D",
    "User": "005",
    "Group": "00G",  # queues are Groups of Type 'Queue'
    "Lead": "00Q",
    "Contact": "003",
    "Account": "001",
    "Case": "500",
    "AssignmentRule": "01Q",
    "AutoResponseRule": "03K",
    "EmailMessage": "02s",
}

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_RE = re.compile(r"^[a-zA-Z0-9]{15}(?:[A-Z0-5]{3})?$")

# A pod-like segment so ids look like "00Q5e00000AbCdEFGH"; the counter keeps them unique.
_POD = "5e"
_counter = itertools.count(secrets.randbelow(62**4) + 62**5)
_lock = threading.Lock()


def _base62(number: int, width: int) -> str:
    chars = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        chars.append(_BASE62[rem])
    return "".join(reversed(chars))


def checksum_suffix(id15: str) -> str:
    """The 3-character suffix that turns a 15-character id into its 18-character form."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for pos, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << pos
        suffix += _SUFFIX_CHARS[bits]
    return suffix


def new_id(prefix: str) -> str:
    """A fresh 18-character id with the given 3-character key prefix."""
    with _lock:
        number = next(_counter)
    id15 = prefix + _POD + "0" + _base62(number, 9)
    return id15 + checksum_suffix(id15)


def is_valid_id(value: str) -> bool:
    """True for a well-formed 15- or 18-character id (with a correct checksum when 18)."""
    if not isinstance(value, str) or not _ID_RE.match(value):
        return False
    return len(value) == 15 or checksum_suffix(value[:15]) == value[15:]


def to_18(value: str) -> str:
    """Widen a 15-character id; 18-character ids come back unchanged."""
    if len(value) == 15:
        return value + checksum_suffix(value)
    return value
