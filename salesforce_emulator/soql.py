"""SOQL and SOSL for the emulator: the subset a sync service sends, and errors for the rest.

SOQL: ``SELECT f1, f2, Owner.Name | COUNT() FROM Obj [WHERE cond] [ORDER BY f [ASC|DESC]
[NULLS FIRST|LAST], ...] [LIMIT n] [OFFSET n]`` where cond uses = != <> < <= > >= LIKE, [NOT] IN
(...), AND, OR, NOT and parentheses. As in Salesforce, AND and OR cannot be mixed at one level
without parentheses. String literals follow "Quoted String Escape Sequences" (SALESFORCE.md
section 2); ``=`` on text ignores case (LANDSCAPE.md section 0). Anything else is MALFORMED_QUERY.

SOSL: ``FIND {term} [IN ALL|NAME|EMAIL|PHONE|SIDEBAR FIELDS] [RETURNING Obj[(fields [WHERE ...]
[ORDER BY ...] [LIMIT n])], ...] [LIMIT n]``. Reserved characters in the term must be
backslash-escaped (SALESFORCE.md section 2); phone search compares digits only.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import schema
from .ids import is_valid_id, to_18
from .schema import FieldDef, SObjectDef
from .values import SalesforceError, phone_digits, record_url

if TYPE_CHECKING:
    from .core import Org

# SALESFORCE.md section 2: FIND reserved characters that must be backslash-escaped.
SOSL_RESERVED = set("&|!(){}[]^\"~*?:\\'+-")
# UNCONFIRMED: Salesforce treats some unescaped reserved characters as operators; the emulator
# rejects them (MALFORMED_SEARCH) except the wildcards * and ?, which is the safer direction for
# a client that must escape user input.
SOSL_UNESCAPED_ALLOWED = set("*?")
# UNCONFIRMED: whether SOSL returns converted Leads. The emulator leaves them out, as global
# search does; SOQL returns them (with IsConverted = true).
SOSL_INCLUDES_CONVERTED_LEADS = False
SOSL_MAX_ROWS = 2000
SEARCHABLE_SOBJECTS = ("Lead", "Contact", "Account", "Case")
NAME_FIELDS = {
    "Lead": ("FirstName", "LastName", "Name", "Company"),
    "Contact": ("FirstName", "LastName", "Name"),
    "Account": ("Name",),
    "Case": ("Subject", "SuppliedName"),
}

_STRING_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))?)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op>!=|<>|<=|>=|=|<|>)
  | (?P<punct>[(),])
  | (?P<string>')
    """,
    re.VERBOSE,
)


def malformed(message: str, code: str = "MALFORMED_QUERY") -> SalesforceError:
    return SalesforceError(400, code, message)


# --------------------------------------------------------------------------- tokens


@dataclass
class Token:
    kind: str  # ident, string, number, datetime, op, punct, eof
    value: Any
    pos: int
    plain: Any = None  # for strings outside LIKE: the value, or the error reading it raised

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.value.upper() in words


def read_string(text: str, start: int, *, like: bool = False) -> tuple[str, int]:
    """Read a quoted literal starting after the opening quote; returns (value, end index).

    Inside LIKE patterns \\% and \\_ stay escaped (as "\\%" / "\\_") for the matcher.
    """
    out: list[str] = []
    i = start
    while i < len(text):
        char = text[i]
        if char == "'":
            return "".join(out), i + 1
        if char == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt in _STRING_ESCAPES:
                out.append("\\\\" if like and nxt == "\\" else _STRING_ESCAPES[nxt])
                i += 2
                continue
            if nxt in "%_":
                if not like:
                    raise malformed(
                        f"Invalid string literal: \\{nxt} is only valid in a LIKE pattern"
                    )
                out.append("\\" + nxt)
                i += 2
                continue
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2 : i + 6]):
                out.append(chr(int(text[i + 2 : i + 6], 16)))
                i += 6
                continue
            raise malformed(f"Invalid string literal: illegal escape sequence \\{nxt}")
        out.append(char)
        i += 1
    raise malformed("Invalid string literal: unterminated quoted string")


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if not match:
            raise malformed(f"unexpected token: '{text[pos : pos + 10]}'")
        kind = match.lastgroup or ""
        if kind == "ws":
            pos = match.end()
            continue
        if kind == "string":
            value, end = read_string(text, match.end(), like=True)
            plain: Any
            try:
                plain, _ = read_string(text, match.end(), like=False)
            except SalesforceError as exc:
                plain = exc
            tokens.append(Token("string", value, pos, plain))
            pos = end
            continue
        raw = match.group(kind)
        tokens.append(Token(kind, raw, pos))
        pos = match.end()
    tokens.append(Token("eof", None, len(text)))
    return tokens


# --------------------------------------------------------------------------- AST


@dataclass
class FieldRef:
    """A field path: ("Email",) or ("Owner", "Name") with the resolved definitions."""

    path: tuple[str, ...]
    relationship: FieldDef | None = None  # the reference field for a dotted path

    @property
    def label(self) -> str:
        return ".".join(self.path)


@dataclass
class Condition:
    ref: FieldRef
    op: str  # = != < <= > >= LIKE IN NOT IN
    value: Any


@dataclass
class BoolOp:
    op: str  # AND | OR | NOT
    items: list[Any]


@dataclass
class OrderItem:
    ref: FieldRef
    descending: bool
    nulls_last: bool


@dataclass
class Select:
    sobject: SObjectDef
    fields: list[FieldRef] = field(default_factory=list)
    count_only: bool = False
    where: Any = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0


# --------------------------------------------------------------------------- parser


class Parser:
    def __init__(self, tokens: list[Token], code: str = "MALFORMED_QUERY") -> None:
        self.tokens = tokens
        self.i = 0
        self.code = code

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self) -> SalesforceError:
        tok = self.tok
        shown = "<EOF>" if tok.kind == "eof" else tok.value
        return malformed(f"unexpected token: '{shown}'", self.code)

    def expect_kw(self, word: str) -> None:
        if not self.tok.is_kw(word):
            raise self.error()
        self.i += 1

    def expect_punct(self, char: str) -> None:
        if self.tok.kind != "punct" or self.tok.value != char:
            raise self.error()
        self.i += 1

    def accept_punct(self, char: str) -> bool:
        if self.tok.kind == "punct" and self.tok.value == char:
            self.i += 1
            return True
        return False

    def integer(self) -> int:
        tok = self.next()
        if tok.kind != "number" or not tok.value.isdigit():
            self.i -= 1
            raise self.error()
        return int(tok.value)

    # ------------------------------------------------------------ pieces

    def field_ref(self, sobject: SObjectDef) -> FieldRef:
        tok = self.next()
        if tok.kind != "ident" or tok.is_kw(*KEYWORDS):
            self.i -= 1
            raise self.error()
        return resolve_field(sobject, tok.value)

    def field_list(self, sobject: SObjectDef) -> list[FieldRef]:
        refs = [self.field_ref(sobject)]
        while self.accept_punct(","):
            refs.append(self.field_ref(sobject))
        return refs

    def where(self, sobject: SObjectDef) -> Any:
        return self.expression(sobject)

    def expression(self, sobject: SObjectDef) -> Any:
        items = [self.unary(sobject)]
        joiner: str | None = None
        while self.tok.is_kw("AND", "OR"):
            word = self.next().value.upper()
            if joiner and word != joiner:
                # Salesforce requires parentheses when AND and OR are mixed.
                self.i -= 1
                raise self.error()
            joiner = word
            items.append(self.unary(sobject))
        return items[0] if joiner is None else BoolOp(joiner, items)

    def unary(self, sobject: SObjectDef) -> Any:
        if self.tok.is_kw("NOT"):
            self.i += 1
            return BoolOp("NOT", [self.unary(sobject)])
        if self.accept_punct("("):
            inner = self.expression(sobject)
            self.expect_punct(")")
            return inner
        return self.condition(sobject)

    def condition(self, sobject: SObjectDef) -> Condition:
        ref = self.field_ref(sobject)
        tok = self.tok
        if tok.kind == "op":
            self.i += 1
            op = "!=" if tok.value == "<>" else tok.value
            return Condition(ref, op, self.literal(ref, like=False))
        if tok.is_kw("LIKE"):
            self.i += 1
            value = self.next()
            if value.kind != "string":
                self.i -= 1
                raise self.error()
            return Condition(ref, "LIKE", value.value)
        negate = False
        if tok.is_kw("NOT"):
            self.i += 1
            negate = True
        if self.tok.is_kw("IN"):
            self.i += 1
            self.expect_punct("(")
            values = [self.literal(ref, like=False)]
            while self.accept_punct(","):
                values.append(self.literal(ref, like=False))
            self.expect_punct(")")
            return Condition(ref, "NOT IN" if negate else "IN", values)
        raise self.error()

    def literal(self, ref: FieldRef, *, like: bool) -> Any:
        tok = self.next()
        if tok.kind == "string":
            if like:
                return tok.value
            if isinstance(tok.plain, SalesforceError):
                raise tok.plain
            return tok.plain
        if tok.is_kw("TRUE"):
            return True
        if tok.is_kw("FALSE"):
            return False
        if tok.is_kw("NULL"):
            return None
        if tok.kind == "number":
            return float(tok.value)
        if tok.kind == "datetime":
            return parse_datetime(tok.value)
        self.i -= 1
        raise self.error()

    def order_by(self, sobject: SObjectDef) -> list[OrderItem]:
        items = []
        while True:
            ref = self.field_ref(sobject)
            descending = False
            if self.tok.is_kw("ASC", "DESC"):
                descending = self.next().value.upper() == "DESC"
            nulls_last = descending  # Salesforce default: NULLS FIRST ascending
            if self.tok.is_kw("NULLS"):
                self.i += 1
                if not self.tok.is_kw("FIRST", "LAST"):
                    raise self.error()
                nulls_last = self.next().value.upper() == "LAST"
            items.append(OrderItem(ref, descending, nulls_last))
            if not self.accept_punct(","):
                return items


KEYWORDS = (
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "IN",
    "LIKE",
    "ORDER",
    "BY",
    "LIMIT",
    "OFFSET",
    "ASC",
    "DESC",
    "NULLS",
    "TRUE",
    "FALSE",
    "NULL",
    "RETURNING",
    "FIND",
)


def resolve_field(sobject: SObjectDef, name: str) -> FieldRef:
    """Canonical field path, or INVALID_FIELD (SALESFORCE.md: "No such column ...")."""
    parts = name.split(".")
    if len(parts) == 1:
        f = sobject.field(name)
        if f is None:
            raise _no_such_column(name, sobject)
        return FieldRef((f.name,))
    if len(parts) == 2:
        rel = next(
            (
                f
                for f in sobject.fields
                if f.type == "reference" and (f.name[:-2].lower() == parts[0].lower())
            ),
            None,
        )
        if rel is not None:
            for target in rel.reference_to:
                target_def = schema.SOBJECTS[target]
                target_field = target_def.field(parts[1])
                if target_field is not None:
                    return FieldRef((rel.name[:-2], target_field.name), relationship=rel)
    raise _no_such_column(name, sobject)


def _no_such_column(name: str, sobject: SObjectDef) -> SalesforceError:
    return SalesforceError(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{sobject.name}'. If you are attempting to use a "
        "custom field, be sure to append the '__c' after the custom field name. Please reference "
        "your WSDL or the describe call for the appropriate names.",
    )


def parse_datetime(value: str) -> dt.datetime:
    if "T" not in value:
        return dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
    value = value.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", value):
        value = value[:-2] + ":" + value[-2:]
    return dt.datetime.fromisoformat(value)


def parse_soql(text: str) -> Select:
    tokens = tokenize(text)
    p = Parser(tokens)
    p.expect_kw("SELECT")
    # The object comes after the field list; find it first to resolve the fields.
    depth = 0
    from_index = None
    for index in range(p.i, len(tokens)):
        tok = tokens[index]
        if tok.kind == "punct":
            depth += {"(": 1, ")": -1}.get(tok.value, 0)
        if depth == 0 and tok.is_kw("FROM"):
            from_index = index
            break
    if from_index is None or tokens[from_index + 1].kind != "ident":
        raise malformed("unexpected token: 'FROM'" if from_index else "FROM clause is missing")
    object_name = tokens[from_index + 1].value
    sobject = schema.sobject_def(object_name)
    if sobject is None:
        raise SalesforceError(
            400,
            "INVALID_TYPE",
            f"sObject type '{object_name}' is not supported. If you are attempting to use a "
            "custom object, be sure to append the '__c' after the entity name. Please reference "
            "your WSDL or the describe call for the appropriate names.",
        )
    query = Select(sobject)
    if p.tok.is_kw("COUNT") and tokens[p.i + 1].value == "(" and tokens[p.i + 2].value == ")":
        query.count_only = True
        p.i += 3
    else:
        query.fields = p.field_list(sobject)
    p.expect_kw("FROM")
    p.i += 1
    if p.tok.is_kw("WHERE"):
        p.i += 1
        query.where = p.where(sobject)
    if p.tok.is_kw("ORDER"):
        p.i += 1
        p.expect_kw("BY")
        query.order = p.order_by(sobject)
    if p.tok.is_kw("LIMIT"):
        p.i += 1
        query.limit = p.integer()
    if p.tok.is_kw("OFFSET"):
        p.i += 1
        query.offset = p.integer()
    if p.tok.kind != "eof":
        raise p.error()
    return query


# --------------------------------------------------------------------------- evaluation


def field_value(org: Org, sobject: SObjectDef, row: dict[str, Any], ref: FieldRef) -> Any:
    if ref.relationship is None:
        return row.get(ref.path[0])
    parent = related_row(org, row.get(ref.relationship.name), ref.relationship)
    return None if parent is None else parent[1].get(ref.path[1])


def related_row(
    org: Org, parent_id: str | None, rel: FieldDef
) -> tuple[str, dict[str, Any]] | None:
    if not parent_id:
        return None
    for target in rel.reference_to:
        for row in org.rows(target, include_deleted=True):
            if row["Id"] == parent_id:
                return target, row
    return None


def _comparable(value: Any) -> Any:
    if isinstance(value, str):
        if re.match(r"^\d{4}-\d{2}-\d{2}T", value):
            try:
                return parse_datetime(value)
            except ValueError:
                pass
        return value.casefold()
    return value


def _is_id_field(sobject: SObjectDef, ref: FieldRef) -> bool:
    if ref.relationship is not None:
        return ref.path[1] == "Id"
    f = sobject.field(ref.path[0])
    return f is not None and f.type in ("id", "reference")


def _check_type(sobject: SObjectDef, ref: FieldRef, value: Any) -> None:
    f = sobject.field(ref.path[0]) if ref.relationship is None else None
    if f is None or value is None:
        return
    if f.is_text or f.type in ("id", "reference"):
        if not isinstance(value, str):
            raise SalesforceError(
                400,
                "INVALID_QUERY_FILTER_OPERATOR",
                f"value of filter criterion for field '{f.name}' must be of type string and "
                "should be enclosed in quotes",
            )
    elif f.type == "boolean" and not isinstance(value, bool):
        raise SalesforceError(
            400,
            "INVALID_QUERY_FILTER_OPERATOR",
            f"value of filter criterion for field '{f.name}' must be of type boolean",
        )


@functools.lru_cache(maxsize=4096)
def _like_regex(pattern: str) -> str:
    """The regular expression of a LIKE pattern: `%` any run, `_` one character, `\\` escapes
    the next one (SALESFORCE.md section 2: `\\_` and `\\%` are valid only inside LIKE)."""
    regex = ""
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        i += 1
    return regex


@functools.lru_cache(maxsize=1024)
def _like_matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    """One compiled regex that fully matches a value when any of the LIKE `patterns` does (an
    OR of LIKEs on one field is then one scan of the value, not one per pattern). LIKE ignores
    case, as on Salesforce."""
    alternatives = "|".join(f"(?:{_like_regex(p)})" for p in patterns)
    return re.compile(alternatives, re.IGNORECASE | re.DOTALL)


def _like(value: Any, pattern: str) -> bool:
    if value is None:
        return False
    return _like_matcher((pattern,)).fullmatch(str(value)) is not None


def evaluate(org: Org, sobject: SObjectDef, row: dict[str, Any], node: Any) -> bool:
    """Does `row` satisfy the WHERE tree `node`? (One row; `compile_where` for many.)"""
    return compile_where(org, sobject, node)(row)


Predicate = Callable[[dict[str, Any]], bool]


def _normalizer(sobject: SObjectDef, ref: FieldRef) -> Callable[[Any], Any]:
    """How a value is compared with `ref`'s values: Ids in their 18-character form, whole floats
    as integers, text case-folded and date-times parsed (`_comparable`)."""
    id_field = _is_id_field(sobject, ref)

    def norm(value: Any) -> Any:
        if id_field and isinstance(value, str) and is_valid_id(value):
            return to_18(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return _comparable(value)

    return norm


def _member(values: list[Any]) -> Callable[[Any], bool]:
    """`value in values` by equality, through a set when every value is hashable."""
    try:
        wanted = frozenset(values)
    except TypeError:
        return lambda left: any(left == v for v in values)

    def contains(left: Any) -> bool:
        try:
            return left in wanted
        except TypeError:  # an unhashable field value (a compound address): plain equality
            return any(left == v for v in values)

    return contains


def _compile_condition(org: Org, sobject: SObjectDef, cond: Condition) -> Predicate:
    ref = cond.ref

    def actual(row: dict[str, Any]) -> Any:
        return field_value(org, sobject, row, ref)

    if cond.op == "LIKE":
        matcher = _like_matcher((cond.value,))

        def like(row: dict[str, Any]) -> bool:
            value = actual(row)
            return value is not None and matcher.fullmatch(str(value)) is not None

        return like
    wanted = cond.value if isinstance(cond.value, list) else [cond.value]
    for value in wanted:
        _check_type(sobject, ref, value)
    norm = _normalizer(sobject, ref)
    if cond.op in ("IN", "NOT IN"):
        member = _member([norm(v) for v in wanted])
        if cond.op == "IN":
            return lambda row: member(norm(actual(row)))
        return lambda row: not member(norm(actual(row)))
    right = norm(cond.value)
    if cond.op == "=":
        return lambda row: norm(actual(row)) == right
    if cond.op == "!=":
        return lambda row: norm(actual(row)) != right
    compare = {
        "<": operator.lt,
        "<=": operator.le,
        ">": operator.gt,
        ">=": operator.ge,
    }[cond.op]

    def ordered(row: dict[str, Any]) -> bool:
        left = norm(actual(row))
        if left is None or right is None:
            return False
        try:
            return bool(compare(left, right))
        except TypeError:
            return False

    return ordered


def _compile_or(org: Org, sobject: SObjectDef, items: list[Any]) -> Predicate:
    """An OR: its `=`/`IN` terms on one plain field become one set look-up, and its LIKE terms
    on one plain field one regex, so a look-up of 50 people by email and phone costs a few
    checks per row instead of a hundred. The result is the same as testing each term."""
    equal: dict[str, list[Condition]] = {}
    like: dict[str, list[Condition]] = {}
    rest: list[Predicate] = []
    for item in items:
        plain = isinstance(item, Condition) and item.ref.relationship is None
        if plain and item.op == "LIKE":
            like.setdefault(item.ref.path[0], []).append(item)
        elif plain and item.op in ("=", "IN"):
            equal.setdefault(item.ref.path[0], []).append(item)
        else:
            rest.append(compile_where(org, sobject, item))
    for name, conds in equal.items():
        values: list[Any] = []
        for cond in conds:
            wanted = cond.value if isinstance(cond.value, list) else [cond.value]
            for value in wanted:
                _check_type(sobject, cond.ref, value)
            values.extend(wanted)
        norm = _normalizer(sobject, conds[0].ref)
        member = _member([norm(v) for v in values])
        rest.insert(0, lambda row, name=name, norm=norm, member=member: member(norm(row.get(name))))
    for name, conds in like.items():
        matcher = _like_matcher(tuple(c.value for c in conds))

        def any_like(row: dict[str, Any], name: str = name, matcher: Any = matcher) -> bool:
            value = row.get(name)
            return value is not None and matcher.fullmatch(str(value)) is not None

        rest.append(any_like)
    return lambda row: any(p(row) for p in rest)


def compile_where(org: Org, sobject: SObjectDef, node: Any) -> Predicate:
    """The WHERE tree `node` as one function of a row, with each literal normalised and each
    LIKE pattern compiled once per query rather than once per row. Type errors in the literals
    (INVALID_QUERY_FILTER_OPERATOR) are raised here."""
    if isinstance(node, BoolOp):
        if node.op == "NOT":
            inner = compile_where(org, sobject, node.items[0])
            return lambda row: not inner(row)
        if node.op == "OR":
            return _compile_or(org, sobject, node.items)
        parts = [compile_where(org, sobject, item) for item in node.items]
        return lambda row: all(p(row) for p in parts)
    return _compile_condition(org, sobject, node)


def sort_rows(
    org: Org, sobject: SObjectDef, rows: list[dict[str, Any]], order: list[OrderItem]
) -> list[dict[str, Any]]:
    for item in reversed(order):  # stable sorts, last key first
        present = [r for r in rows if field_value(org, sobject, r, item.ref) is not None]
        absent = [r for r in rows if field_value(org, sobject, r, item.ref) is None]
        present.sort(
            key=lambda r, item=item: _comparable(field_value(org, sobject, r, item.ref)),
            reverse=item.descending,
        )
        rows = present + absent if item.nulls_last else absent + present
    return rows


def project(
    org: Org, sobject: SObjectDef, row: dict[str, Any], refs: Iterable[FieldRef], version: str
) -> dict[str, Any]:
    """A row as REST returns it, with nested parent objects for dotted fields."""
    out: dict[str, Any] = {
        "attributes": {"type": sobject.name, "url": record_url(sobject.name, row["Id"], version)}
    }
    for ref in refs:
        if ref.relationship is None:
            out[ref.path[0]] = row.get(ref.path[0])
            continue
        rel_name = ref.path[0]
        parent = related_row(org, row.get(ref.relationship.name), ref.relationship)
        if parent is None:
            out[rel_name] = None
            continue
        target, parent_row = parent
        nested = out.get(rel_name) or {
            "attributes": {"type": target, "url": record_url(target, parent_row["Id"], version)}
        }
        nested[ref.path[1]] = parent_row.get(ref.path[1])
        out[rel_name] = nested
    return out


def select_rows(org: Org, query: Select) -> list[dict[str, Any]]:
    config = org.schema_config()
    for ref in query.fields:
        f = query.sobject.field(ref.path[0]) if len(ref.path) == 1 else None
        if f is not None and not config.has(f):
            # A feature's field (StateCode…) does not exist in an org without the feature.
            raise _no_such_column(f.name, query.sobject)
    rows = list(org.rows(query.sobject.name))
    if query.where is not None and rows:
        matches = compile_where(org, query.sobject, query.where)
        rows = [row for row in rows if matches(row)]
    if query.order:
        rows = sort_rows(org, query.sobject, rows, query.order)
    rows = rows[query.offset :]
    if query.limit is not None:
        rows = rows[: query.limit]
    return rows


def run_query(org: Org, soql: str, version: str) -> dict[str, Any]:
    """The complete REST query result (the transport pages it)."""
    query = parse_soql(soql)
    rows = select_rows(org, query)
    if query.count_only:
        return {"totalSize": len(rows), "done": True, "records": []}
    records = [project(org, query.sobject, row, query.fields, version) for row in rows]
    return {"totalSize": len(records), "done": True, "records": records}


# --------------------------------------------------------------------------- SOSL


@dataclass
class Returning:
    sobject: SObjectDef
    fields: list[FieldRef]
    where: Any = None
    order: list[OrderItem] = field(default_factory=list)
    limit: int | None = None


def read_search_term(text: str, start: int) -> tuple[list[list[str]], int]:
    """Read ``{...}`` from ``start`` (at the brace); returns (OR-alternatives of words, end)."""
    if start >= len(text) or text[start] != "{":
        raise malformed("Search term must be enclosed in braces: FIND {...}", "MALFORMED_SEARCH")
    words: list[str] = []
    alternatives: list[list[str]] = []
    current = ""
    i = start + 1
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            current += text[i + 1]
            i += 2
            continue
        if char == "}":
            if current:
                words.append(current)
            alternatives.append(words)
            alternatives = [[w for w in alt if w] for alt in alternatives if alt]
            if not alternatives or all(len("".join(alt)) < 2 for alt in alternatives):
                raise malformed("search term must be longer than one character", "MALFORMED_SEARCH")
            return alternatives, i + 1
        if char.isspace():
            if current.upper() == "OR" and not current.startswith("\\"):
                alternatives.append(words)
                words = []
            elif current.upper() != "AND" and current:
                words.append(current)
            current = ""
            i += 1
            continue
        if char in SOSL_RESERVED and char not in SOSL_UNESCAPED_ALLOWED:
            raise malformed(
                f"line 1:{i + 1} mismatched character '{char}': reserved characters in a search "
                "term must be escaped with a backslash",
                "MALFORMED_SEARCH",
            )
        current += char
        i += 1
    raise malformed("unterminated search term, missing '}'", "MALFORMED_SEARCH")


def parse_sosl(text: str) -> tuple[list[list[str]], str, list[Returning], int | None]:
    match = re.match(r"\s*FIND\s*", text, re.IGNORECASE)
    if not match:
        raise malformed("unexpected token: FIND expected", "MALFORMED_SEARCH")
    terms, end = read_search_term(text, match.end())
    p = Parser(tokenize(text[end:]), code="MALFORMED_SEARCH")
    group = "ALL"
    if p.tok.is_kw("IN"):
        p.i += 1
        if not p.tok.is_kw("ALL", "NAME", "EMAIL", "PHONE", "SIDEBAR"):
            raise p.error()
        group = p.next().value.upper()
        p.expect_kw("FIELDS")
    returning: list[Returning] = []
    if p.tok.is_kw("RETURNING"):
        p.i += 1
        while True:
            tok = p.next()
            sobject = schema.sobject_def(tok.value) if tok.kind == "ident" else None
            if sobject is None or sobject.name not in SEARCHABLE_SOBJECTS:
                raise SalesforceError(
                    400, "INVALID_TYPE", f"sObject type '{tok.value}' is not supported."
                )
            spec = Returning(sobject, [FieldRef(("Id",))])
            if p.accept_punct("("):
                spec.fields = p.field_list(sobject)
                if p.tok.is_kw("WHERE"):
                    p.i += 1
                    spec.where = p.where(sobject)
                if p.tok.is_kw("ORDER"):
                    p.i += 1
                    p.expect_kw("BY")
                    spec.order = p.order_by(sobject)
                if p.tok.is_kw("LIMIT"):
                    p.i += 1
                    spec.limit = p.integer()
                p.expect_punct(")")
            returning.append(spec)
            if not p.accept_punct(","):
                break
    else:
        returning = [
            Returning(schema.SOBJECTS[name], [FieldRef(("Id",))]) for name in SEARCHABLE_SOBJECTS
        ]
    overall = None
    if p.tok.is_kw("LIMIT"):
        p.i += 1
        overall = p.integer()
    if p.tok.kind != "eof":
        raise p.error()
    return terms, group, returning, overall


def _word_matches(word: str, text: str) -> bool:
    tokens = re.split(r"[^\w@.+'-]+", text.casefold())
    pattern = word.casefold()
    if "*" in pattern or "?" in pattern:
        return any(fnmatch.fnmatchcase(t, pattern) for t in tokens) or fnmatch.fnmatchcase(
            text.casefold(), pattern
        )
    return pattern in tokens or pattern == text.casefold()


def search_matches(sobject: SObjectDef, row: dict[str, Any], words: list[str], group: str) -> bool:
    """Does a row match one alternative (all its words) in the given search group?"""
    phrase = " ".join(words)
    phones = [row.get(f.name) for f in sobject.fields if f.type == "phone" and row.get(f.name)]
    emails = [row.get(f.name) for f in sobject.fields if f.type == "email" and row.get(f.name)]
    term_digits = phone_digits(phrase)
    phone_hit = bool(term_digits) and any(phone_digits(p) == term_digits for p in phones)
    email_hit = any(
        e.casefold() == phrase.casefold() or fnmatch.fnmatchcase(e.casefold(), phrase.casefold())
        for e in emails
    )
    if group == "PHONE":
        return phone_hit
    if group == "EMAIL":
        return email_hit
    if group == "NAME":
        texts = [str(row.get(n)) for n in NAME_FIELDS[sobject.name] if row.get(n)]
    else:
        if phone_hit or email_hit:
            return True
        texts = [str(row.get(f.name)) for f in sobject.fields if f.is_text and row.get(f.name)]
    return all(any(_word_matches(word, text) for text in texts) for word in words)


def run_search(org: Org, sosl: str, version: str) -> list[dict[str, Any]]:
    terms, group, returning, overall = parse_sosl(sosl)
    found: list[dict[str, Any]] = []
    for spec in returning:
        rows = []
        where: Predicate | None = None
        for row in org.rows(spec.sobject.name):
            hidden = spec.sobject.name == "Lead" and row.get("IsConverted")
            if hidden and not SOSL_INCLUDES_CONVERTED_LEADS:
                continue
            if not any(search_matches(spec.sobject, row, words, group) for words in terms):
                continue
            if spec.where is not None:
                if where is None:
                    where = compile_where(org, spec.sobject, spec.where)
                if not where(row):
                    continue
            rows.append(row)
        if spec.order:
            rows = sort_rows(org, spec.sobject, rows, spec.order)
        if spec.limit is not None:
            rows = rows[: spec.limit]
        found.extend(project(org, spec.sobject, row, spec.fields, version) for row in rows)
    limit = min(overall, SOSL_MAX_ROWS) if overall is not None else SOSL_MAX_ROWS
    return found[:limit]
