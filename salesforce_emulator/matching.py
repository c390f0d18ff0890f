"""Matching rules folded into the emulator's duplicate rules: when two records are duplicates.

A duplicate rule's ``match_fields`` is a list of alternatives (any one matching is enough):

- ``"Email"``: same address, case-insensitive;
- ``"Phone"``: same digits (Phone or MobilePhone; SALESFORCE.md section 2);
- ``"Name"``: the Account matching rule's company name (Fuzzy: Company Name);
- ``"NameAndCompany"`` (Lead and Contact): first name AND last name AND company, the branch of the
  standard Lead and Contact matching rules that makes two different people with the same name at
  the same company "duplicates" (Salesforce Help, "Standard Contact Matching Rule and Standard
  Lead Matching Rule": match key ``First_Name (1,1) Last_Name Company (2,5)``; first name Exact,
  Initials, Jaro-Winkler, Name Variant; last name Exact, Keyboard Distance, Metaphone 3; company
  Fuzzy: Company Name). The company of a Contact is its Account's name.

The emulator's fuzziness is deliberately small and predictable (exact-ish, said here so tests
know it): names compare case-insensitively, a first name also matches its initial ("J" ~
"John") and a short list of name variants ("Bob" ~ "Robert"); last names compare exactly
(case-insensitive); companies compare by ``company_name_key``. Blank values never match (the
standard rules' "Match blank fields" is off). The real engine's Jaro-Winkler, keyboard distance
and Metaphone 3 scores are not modelled.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .values import phone_digits

MATCH_FIELDS = ("Email", "Phone", "Name", "NameAndCompany")

# Salesforce Help, "Matching Methods Used with Matching Rules": the Fuzzy: Company Name method
# "removes words such as Inc and Corp before comparing fields", and fields compare case-
# insensitively. Which words it removes is not listed (UNCONFIRMED: these are the common legal
# suffixes); the emulator then compares what remains exactly, without the acronym and syllable
# algorithms of the real fuzzy engine.
COMPANY_NAME_IGNORED_WORDS = frozenset(
    {"inc", "incorporated", "corp", "corporation", "co", "company", "llc", "ltd", "limited"}
)

# Name Variant: a few common English nicknames (the real list is not public; UNCONFIRMED).
NAME_VARIANTS = [
    {"robert", "bob", "rob", "bobby"},
    {"william", "bill", "will", "billy"},
    {"thomas", "tom", "tommy"},
    {"james", "jim", "jimmy", "jamie"},
    {"michael", "mike", "mick"},
    {"elizabeth", "liz", "beth", "betty"},
    {"katherine", "catherine", "kate", "katie", "cathy"},
    {"ann", "anne", "anna", "annie"},
    {"margaret", "maggie", "peggy"},
    {"richard", "rick", "dick", "rich"},
]

CompanyOf = Callable[[str, Mapping[str, Any]], str | None]


def company_name_key(value: str | None) -> str:
    """A company name as the Account matching rule compares it: "ACME, Inc." ~ "Acme"."""
    words = re.findall(r"[^\W_]+", (value or "").casefold())
    return " ".join(word for word in words if word not in COMPANY_NAME_IGNORED_WORDS)


def first_names_match(mine: str | None, theirs: str | None) -> bool:
    """Fuzzy first name, exact-ish: same, an initial of the other, or a known variant."""
    a, b = (
        (mine or "").strip().casefold().rstrip("."),
        (theirs or "").strip().casefold().rstrip("."),
    )
    if not a or not b:
        return False
    if a == b:
        return True
    if len(a) == 1 or len(b) == 1:
        return a[0] == b[0]
    return any(a in group and b in group for group in NAME_VARIANTS)


def is_duplicate(
    match_fields: list[str],
    record: Mapping[str, Any],
    record_type: str,
    other: Mapping[str, Any],
    other_type: str,
    company_of: CompanyOf,
) -> bool:
    """Whether ``other`` matches ``record`` by any of the rule's alternatives."""
    for name in match_fields:
        if name == "Email":
            mine, theirs = record.get("Email"), other.get("Email")
            if mine and theirs and mine.casefold() == theirs.casefold():
                return True
        elif name == "Phone":
            mine_digits = {
                phone_digits(record.get(f)) for f in ("Phone", "MobilePhone") if record.get(f)
            }
            theirs_digits = {
                phone_digits(other.get(f)) for f in ("Phone", "MobilePhone") if other.get(f)
            }
            if (mine_digits & theirs_digits) - {""}:
                return True
        elif name == "Name":
            mine_key = company_name_key(record.get("Name"))
            if mine_key and mine_key == company_name_key(other.get("Name")):
                return True
        elif name == "NameAndCompany" and _same_name_and_company(
            record, record_type, other, other_type, company_of
        ):
            return True
    return False


def _same_name_and_company(
    record: Mapping[str, Any],
    record_type: str,
    other: Mapping[str, Any],
    other_type: str,
    company_of: CompanyOf,
) -> bool:
    last, other_last = (record.get("LastName") or "").strip(), (other.get("LastName") or "").strip()
    if not last or last.casefold() != other_last.casefold():
        return False
    if not first_names_match(record.get("FirstName"), other.get("FirstName")):
        return False
    company = company_name_key(company_of(record_type, record))
    return bool(company) and company == company_name_key(company_of(other_type, other))
