"""Reads the SQL text of our stores out of the Rust sources, so the bench runs the
statements the server runs (not a copy that drifts).

What it understands (all the postgres adapter uses):
  sql!(/// docs
       Name, "text" | concat!("text", macro!(), ...));     -- crate::sql statements
  macro_rules! name { () => { "text" }; }                   -- text pieces of concat!
  const NAME: &str = "text";                                -- plain constants
and the `.bind("name", Bind::Variant(..))` calls, which give each `$name` its type.
"""

import re

# Bind variant (crates/adapters/postgres/src/sql.rs) -> the SQL type diesel binds.
BIND_TYPES = {
    "I64": "int8", "OptI64": "int8", "I64s": "int8[]", "I32s": "int4[]",
    "Text": "text", "OptText": "text", "Texts": "text[]", "Bool": "boolean",
    "Ts": "timestamptz", "OptTs": "timestamptz", "OptUuid": "uuid",
    "OptJson": "jsonb", "OptBytes": "bytea", "OptI16": "int2",
}


def _string_literal(src, i):
    """Parses the Rust string literal starting at src[i] == '"'; returns (text, end)."""
    assert src[i] == '"', src[i:i + 20]
    out, i = [], i + 1
    while True:
        c = src[i]
        if c == '"':
            return "".join(out), i + 1
        if c == "\\":
            n = src[i + 1]
            if n == "\n":  # line continuation: skip the newline and the indentation
                i += 2
                while src[i] in " \t\n\r":
                    i += 1
                continue
            out.append({"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "0": "\0"}[n])
            i += 2
            continue
        out.append(c)
        i += 1


def _skip_ws(src, i):
    while True:
        while i < len(src) and src[i] in " \t\r\n,":
            i += 1
        if src.startswith("//", i):
            i = src.index("\n", i)
            continue
        return i


def _expr(src, i, macros):
    """Evaluates a string expression: a literal, concat!(...), or name!()."""
    i = _skip_ws(src, i)
    if src[i] == '"':
        return _string_literal(src, i)
    if src.startswith("concat!(", i):
        i += len("concat!(")
        parts = []
        while True:
            i = _skip_ws(src, i)
            if src[i] == ")":
                return "".join(parts), i + 1
            text, i = _expr(src, i, macros)
            parts.append(text)
    m = re.compile(r"(\w+)!\(\)").match(src, i)
    if m:
        return macros[m.group(1)], m.end()
    raise ValueError("cannot read a string expression at: " + src[i:i + 40])


def read_source(path):
    """Returns {name: sql text} for every sql!() statement and string const of a file."""
    src = open(path, encoding="utf-8").read()
    macros = {}
    for m in re.finditer(r"macro_rules!\s+(\w+)\s*\{\s*\(\)\s*=>\s*\{\s*", src):
        text, _ = _expr(src, m.end(), macros)
        macros[m.group(1)] = text
    found = {}
    for m in re.finditer(r"sql!\(\s*(?:///[^\n]*\n\s*)*(\w+)\s*,", src):
        found[m.group(1)], _ = _expr(src, m.end(), macros)
    for m in re.finditer(r"const\s+(\w+)\s*:\s*&str\s*=\s*", src):
        found[m.group(1)], _ = _expr(src, m.end(), macros)
    return found


def bind_types(path):
    """{param name: sql type} from the `.bind("name", Bind::X(..))` calls of a file
    (`opt_i64(..)` is an OptI64)."""
    src = open(path, encoding="utf-8").read()
    types = {}
    for m in re.finditer(r'\.bind\(\s*"(\w+)"\s*,\s*(?:Bind::(\w+)|(opt_i64))\(', src):
        t = BIND_TYPES["OptI64" if m.group(3) else m.group(2)]
        if types.setdefault(m.group(1), t) != t:
            raise ValueError(f"${m.group(1)} is bound with two types in {path}")
    return types


PARAM = re.compile(r"\$([a-z_][a-z0-9_]*)")
