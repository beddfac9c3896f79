"""How the YAML readers that consume our files type a plain (unquoted) scalar.

Three readers see what we write and read: PyYAML (YAML 1.1; our own loader and the emitter's
fallback), go-yaml v2 as vendored in sigs.k8s.io/yaml (kubectl, Argo CD, Flux decode with it)
and go-yaml v3 (kustomize's kyaml). A string may be written plain only when none of them types
it; everything here is derived from their resolvers:

- go-yaml v2, sigs.k8s.io/yaml `goyaml.v2/resolve.go`, `resolve()`: a table of words (`y`, `Y`,
  `yes`, `on`, `n`, `no`, `off`, `true`/`false` in three casings, `~`/`null`, `.inf`, `.nan`,
  `<<`); a scalar starting with `.` is a float when Go's `strconv.ParseFloat` takes it; one
  starting with a sign or digit is a timestamp (`parseTimestamp`: four digits and `-`, then
  `time.Parse` with "2006-1-2" and three longer layouts), else, with every `_` removed, an int
  when `strconv.ParseInt(s, 0, 64)` (Go syntax: `0x`, `0o`, `0b`, leading-zero octal, a sign),
  `ParseUint` or `big.Int.SetString(s, 0)` takes it, else a float when it matches
  `yamlStyleFloat` (`[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?`): so `08544`,
  `09`, `1e3`, `-.5`, `0o17`, `0X1F`, `1_000`, `+1` and `2024-3-5` are not strings to it.
- go-yaml v3, sigs.k8s.io/yaml `goyaml.v3/resolve.go`: the same function with a smaller word
  table (no `y`/`yes`/`on`/`n`/`no`/`off`), so it types a subset of what v2 types.
- PyYAML: its YAML 1.1 implicit resolvers (used through the dumper's `resolve`).

The timestamp rule is taken by shape (four digits, `-`, one or two digits, `-`, one or two
digits, then the end or a `T`, `t` or space): `time.Parse` also checks the ranges of month and
day, so a few strings are quoted that Go would have read as strings; quoting is always safe.
"""

from __future__ import annotations

import re

# go-yaml v2's `resolveMapList`; v3's is a subset of it.
_GO_WORDS = frozenset(
    "y Y yes Yes YES true True TRUE on On ON n N no No NO false False FALSE off Off OFF "
    "~ null Null NULL .nan .NaN .NAN .inf .Inf .INF +.inf +.Inf +.INF -.inf -.Inf -.INF <<".split()
) | {""}
# A leading `.`: `strconv.ParseFloat` on the text as written.
_GO_DOT_FLOAT = re.compile(r"\.[0-9]+(?:[eE][-+]?[0-9]+)?\Z")
_GO_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:[Tt ]|\Z)")
# After removing `_`: what `strconv.ParseInt(s, 0, 64)` / `big.Int.SetString(s, 0)` accept
# (ranges aside), or `yamlStyleFloat`.
_GO_NUMBER = re.compile(
    r"[-+]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|[0-9]+"
    r"|(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?)\Z"
)
_SIGN_OR_DIGIT = frozenset("+-0123456789")


def go_types(s: str) -> bool:
    """Whether go-yaml v2 or v3 reads the plain scalar `s` as something other than a string."""
    if s in _GO_WORDS:
        return True
    first = s[:1]
    if first == ".":
        return _GO_DOT_FLOAT.match(s) is not None
    if first in _SIGN_OR_DIGIT:
        return _GO_TIMESTAMP.match(s) is not None or _GO_NUMBER.match(s.replace("_", "")) is not None
    return False


# The YAML 1.1 booleans PyYAML leaves out of its resolver (the spec lists them; go-yaml v2
# reads them as booleans too).
YAML11_SHORT_BOOLS = frozenset("y Y n N".split())

# Characters that `kubectl kustomize` refuses in a string ("yaml: control characters are not
# allowed": DEL, the C1 controls, U+FFFE, U+FFFF) or rewrites (U+0085 NEL becomes a line break,
# folded into a space), however we escape them: kyaml writes the decoded string out raw and
# reads it back (measured with kubectl v1.32 / kustomize v5.5 and v1.35 / v5.7). Lone
# surrogates cannot be written as UTF-8 at all.
KUSTOMIZE_UNSAFE = re.compile("[\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def kustomize_unsafe(text: str) -> re.Match[str] | None:
    """`KUSTOMIZE_UNSAFE.search(text)`; ASCII text (the usual case, known without reading it)
    can only hold DEL, which a plain substring search finds at memory speed."""
    if text.isascii() and "\x7f" not in text:
        return None
    return KUSTOMIZE_UNSAFE.search(text)


def describe_char(c: str) -> str:
    """`c` (matched by KUSTOMIZE_UNSAFE) for a message."""
    if c == "\x7f":
        name = "DEL"
    elif c == "\x85":
        name = "NEL, which kustomize turns into a space"
    elif c < "\xa0":
        name = "a C1 control character"
    elif "\ud800" <= c <= "\udfff":
        name = "a lone surrogate"
    else:
        name = "a noncharacter"
    return f"U+{ord(c):04X} ({name})"
