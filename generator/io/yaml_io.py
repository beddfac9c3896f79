"""All YAML input and output of the generator.

The hot path uses libyaml through PyYAML's C loader and dumper. ruamel.yaml is used only on the
error path, to find the line of a field inside a file (`locate`), so positions cost nothing when
the input is good.
"""

from __future__ import annotations

import functools
import re
from sys import intern as _intern
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from generator.errors import LoadError
from generator.io.readers import KUSTOMIZE_UNSAFE, YAML11_SHORT_BOOLS, describe_char, go_types

try:  # libyaml is a hard requirement for speed, but keep working (slowly) without it
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
    _BaseDumper: type[yaml.SafeDumper] = yaml.CSafeDumper  # type: ignore[assignment]
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader
    _BaseDumper = yaml.SafeDumper

# A document whose alias-expanded size passes this many nodes is an alias bomb, not a manifest.
MAX_EXPANDED_NODES = 500_000
# Kubernetes objects nest a dozen levels or so; anything this deep is hostile or broken.
MAX_DEPTH = 200
# What libyaml 0.2.6 and later says when a document passes its own limit (1,000 levels).
_LIBYAML_DEPTH = "exceeded maximum nesting depth"


# The first characters of PyYAML's implicit types (bool, int, float, null, timestamp, merge,
# value): a plain scalar starting with any other character is a string. Unique values (host
# names, image names) miss the tag caches below, so this saves a regex pass for most of them.
# No resolver is keyed by None (one that tries every first character), or this would be wrong.
if None in yaml.SafeLoader.yaml_implicit_resolvers:  # pragma: no cover - not in any PyYAML so far
    raise ImportError("PyYAML has an implicit resolver for every first character; update yaml_io._RESOLVER_FIRSTS")
_RESOLVER_FIRSTS = frozenset(yaml.SafeLoader.yaml_implicit_resolvers)


class _FastResolve:
    """PyYAML's implicit-tag resolution without the path-resolver machinery we never register.

    Same answers as `BaseResolver.resolve` when no path resolvers exist (tested); it is called
    for every node parsed and every node emitted, so the saved calls add up.
    """

    yaml_implicit_resolvers: dict[Any, list[tuple[str, Any]]]

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        pass

    def ascend_resolver(self) -> None:
        pass

    # Plain scalars repeat a lot (keys above all): their tags, by text. Loader and dumper share
    # PyYAML's one table of implicit resolvers, so they can share this too.
    _resolved: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            if implicit[0]:
                if value[:1] not in _RESOLVER_FIRSTS:
                    return "tag:yaml.org,2002:str"  # no implicit type starts with this character
                tag = self._resolved.get(value)
                if tag is not None:
                    return tag
                tag = self._resolve_plain(value)
                if len(value) <= 32 and len(self._resolved) < 2048:
                    self._resolved[value] = tag
                return tag
            return "tag:yaml.org,2002:str"
        if kind is yaml.SequenceNode:
            return "tag:yaml.org,2002:seq"
        return "tag:yaml.org,2002:map"

    def _resolve_plain(self, value: str) -> str:
        table = self.yaml_implicit_resolvers
        if value[:1] not in _RESOLVER_FIRSTS:
            return "tag:yaml.org,2002:str"
        for tag, regexp in table.get(value[:1], ()):
            if regexp.match(value):
                return tag
        for tag, regexp in table.get(None, ()):
            if regexp.match(value):
                return tag
        return "tag:yaml.org,2002:str"


class _Loader(_FastResolve, _BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""

    json_exact = True  # see Documents
    go_text = False  # see _go_text

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        # Duplicates are checked among the keys written in this mapping, before merge keys
        # (`<<: *anchor`) are flattened in: a written key may override a merged one.
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            # Plain scalar keys (all of them in practice) are compared by their text and tag,
            # which is cheap; anything else is constructed to compare.
            if isinstance(key_node, yaml.ScalarNode):
                key: Any = (key_node.tag, key_node.value)
            else:
                key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:
                raise LoadError(
                    "a mapping key must be a plain value, not a list or mapping",
                    line=key_node.start_mark.line + 1,
                ) from None
            if first is not None:
                raise LoadError(
                    f"duplicate key {(key_node.value if isinstance(key_node, yaml.ScalarNode) else key)!r} "
                    f"(first defined on line {first.start_mark.line + 1})",
                    line=key_node.start_mark.line + 1,
                    hint="remove one of them; YAML keys must be unique within a mapping",
                )
            seen[key] = key_node
        self.flatten_mapping(node)
        # Flattened here already: skip SafeConstructor's second flatten_mapping pass.
        return yaml.constructor.BaseConstructor.construct_mapping(self, node, deep=deep)


# A plain `=` is YAML 1.1's "value key", which PyYAML resolves but cannot construct; go-yaml
# (kubectl, kustomize, Argo CD, Flux) has no such type and reads the string "=". So do we.
# (The emitter keeps quoting it: `'='` reads back as "=" in every reader.)
_VALUE = "tag:yaml.org,2002:value"
_Loader.add_constructor(_VALUE, yaml.SafeLoader.construct_yaml_str)


_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _go_text(loader: _Loader, node: yaml.ScalarNode, typed: Callable[[Any, yaml.ScalarNode], Any]) -> Any:
    """In a manifest, a YAML 1.1 base-60 number (`1:30`, 90 to PyYAML) or timestamp
    (`2024-01-05`, a date to PyYAML) is the text it is to kubectl, kustomize, Argo CD and Flux:
    go-yaml has no base 60 (its `resolve()` tries Go's number syntax only), and decoding into an
    untyped value keeps a timestamp's text (checked with `kubectl label --local -o json`).
    Elsewhere (the input rules refuse both in settings and ConfigMap data) PyYAML's value."""
    if loader.go_text and (":" in node.value or node.tag == _TIMESTAMP_TAG):
        return node.value
    return typed(loader, node)


for _tag, _typed in (("tag:yaml.org,2002:int", yaml.SafeLoader.construct_yaml_int),
                     ("tag:yaml.org,2002:float", yaml.SafeLoader.construct_yaml_float),
                     (_TIMESTAMP_TAG, yaml.SafeLoader.construct_yaml_timestamp)):
    _Loader.add_constructor(_tag, lambda loader, node, typed=_typed: _go_text(loader, node, typed))


class _PlainLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader with `=` read as go-yaml reads it (above), for the readers off the
    render's path (`load_plain_all`)."""


_PlainLoader.add_constructor(_VALUE, yaml.SafeLoader.construct_yaml_str)


def load_plain_all(text: str) -> list[Any]:
    """Every document of a YAML stream, read as PyYAML's safe loader reads it except for a plain
    `=` (the string, as in kubectl and kustomize): for files and tool output read off the render's
    path (`import kustomize`, the edit commands), where positions and the input rules are not
    needed. Raises yaml.YAMLError."""
    return list(yaml.load_all(text, Loader=_PlainLoader))


def load_plain(text: str) -> Any:
    """The one document of `text`, read as `load_plain_all` reads (yaml.YAMLError when there are
    several)."""
    return yaml.load(text, Loader=_PlainLoader)


def _check_bounds(root: yaml.Node) -> None:
    """Reject alias bombs and absurd nesting before anything is constructed."""
    sizes: dict[int, int] = {}
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(node.start_mark.line + 1)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                children += [k, v]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        if done:
            total = 1 + sum(sizes[id(c)] for c in children)
            if total > MAX_EXPANDED_NODES:
                raise LoadError(
                    f"document expands to more than {MAX_EXPANDED_NODES:,} nodes through YAML aliases",
                    line=node.start_mark.line + 1,
                    hint="this looks like an alias bomb ('billion laughs'); write the values out",
                )
            sizes[id(node)] = total
            continue
        if id(node) in sizes:
            continue
        stack.append((node, depth, True))
        stack.extend((c, depth + 1, False) for c in children if id(c) not in sizes)


def _check_depth(root: yaml.Node) -> None:
    """`_check_bounds` for a document without aliases, where only the depth can be wrong: the
    same walk in the same order (so the same node is reported), without the size bookkeeping."""
    stack: list[tuple[yaml.Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep(node.start_mark.line + 1)
        cls = node.__class__
        if cls is yaml.MappingNode:
            for k, v in node.value:
                stack.append((k, depth + 1))
                stack.append((v, depth + 1))
        elif cls is yaml.SequenceNode:
            stack.extend([(c, depth + 1) for c in node.value])


# How deep a document can nest without the walk, from its text alone: flow nesting needs a
# bracket per level, block nesting needs indentation. Every block level indents its content at
# least one column more than its parent, except a block sequence under a mapping key, so a line
# whose leading run of indentation and compact-collection markers (" ", "- ", "? ", ": ") is
# n columns long sits at most 2n + 2 levels deep. In a mixed document the two add up.
# (Searching for a newline instead of `^` with MULTILINE lets the regex engine skip ahead fast.)
@functools.lru_cache(maxsize=None)
def _deep_indent(columns: int) -> tuple[re.Pattern[str], re.Pattern[str]]:
    return re.compile(r"[ ?:-]{%d}" % columns), re.compile(r"\n[ ?:-]{%d}" % columns)


# An alias needs an anchor: libyaml refuses `*name` with no `&name` before it ("found undefined
# alias"), so a text without an anchor has no alias. An anchor is a node property: `&` and at
# least one of libyaml's anchor characters (letters, digits, `_`, `-`), at the start of the
# text or after white space (line breaks included), a flow indicator, or `:`/`?` (indicators
# even without a space in flow context), or the byte-order mark. Anything else is text (`a&b`,
# `&&`), so a quoted `"* * * * *"` (a CronJob's schedule) or a shell `&&` costs no walk.
# Written `&` first, the look-behind after it: the regex engine then jumps from `&` to `&`
# instead of trying the look-behind at every character (0.15 s -> 0.003 s over the 7,000
# files of 1,000 realistic apps).
_ANCHOR = re.compile(r"&(?<![^\s\[\]{},:?\ufeff]&)[0-9A-Za-z_-]")


def _may_alias(text: str) -> bool:
    """Whether the text may hold an anchor, hence aliases (a superset: an `&x` inside a quoted
    string counts too)."""
    return _ANCHOR.search(text) is not None


def _needs_bounds_check(text: str) -> bool:
    """Whether the document may hold aliases or nest deeper than MAX_DEPTH (then it is walked);
    plain manifests skip the walk."""
    return _may_alias(text) or _may_nest_deep(text)


def _may_nest_deep(text: str) -> bool:
    """Whether the text may nest deeper than MAX_DEPTH (an upper bound from its text alone)."""
    brackets = text.count("[") + text.count("{")
    if brackets >= MAX_DEPTH - 2:
        return True
    # Block depth stays at or below MAX_DEPTH - brackets while every run is shorter than this:
    first, later = _deep_indent(max(1, (MAX_DEPTH - brackets - 2) // 2))
    return first.match(text) is not None or later.search(text) is not None


def _too_deep(line: int | None) -> LoadError:
    return LoadError(
        f"document nests deeper than {MAX_DEPTH} levels",
        line=line,
        hint="Kubernetes manifests are never this deep; check the file was not generated wrongly",
    )


def _syntax_hint(exc: yaml.MarkedYAMLError, text: str, mark: yaml.Mark | None) -> str:
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in str(exc.problem):
        return "remove the tag: only plain YAML values are read (no !!python/... or custom tags)"
    lines = text.splitlines()
    if mark is not None and mark.line < len(lines) and lines[mark.line][mark.column : mark.column + 1] == "\t":
        return "YAML indents with spaces only: replace the tab at that line with spaces"
    return "fix the syntax at that line (check indentation, quotes and colons)"


_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]{0,17})\Z")


class Documents(list[tuple[Any, int]]):
    """`load_documents`' result: (document, first line) pairs. `json_exact`: every mapping key is
    a string and every value a dict, list, str, int, bool or None, so JSON gives the documents
    back exactly (the parse memo then skips its round-trip check)."""

    json_exact = False


def _build(loader: _Loader, node: yaml.Node) -> Any:
    """The value of a node tree without aliases: PyYAML's safe constructor, minus its generic
    machinery (recursion tracking, generators for two-step construction), for the common tags.

    Anything uncommon (merge keys, a repeated key, a non-scalar key, tags other than str, int,
    bool, null, map and seq, ints in other notations) is handed to the full constructor, so the
    result and the errors are exactly PyYAML's (tested against it); that, and a key that is not a
    string, clears `loader.json_exact`."""
    cls = node.__class__
    tag = node.tag
    if cls is yaml.ScalarNode:
        if tag == _STR:
            value: str = node.value
            # Short values repeat across objects too ("v1", "TCP", label values): share them.
            return _intern(value) if len(value) <= 24 else value
        if tag == _INT and _DECIMAL.match(node.value):
            return int(node.value)
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return loader.bool_values[node.value.lower()]
        if tag == _VALUE:
            return "="
        return _construct(loader, node)
    if cls is yaml.MappingNode and tag == _MAP:
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not yaml.ScalarNode or key_node.tag not in (_STR, _INT, _NULL, _BOOL):
                return _construct(loader, node)
            # Keys repeat in every object ("name", "image", ...): one shared string each.
            if key_node.tag == _STR:
                key = _intern(key_node.value)
            else:
                key = _build(loader, key_node)
                loader.json_exact = False
            if key in out:
                return _construct(loader, node)  # the full check words the error
            out[key] = _build(loader, value_node)
        return out
    if cls is yaml.SequenceNode and tag == _SEQ:
        return [_build(loader, item) for item in node.value]
    return _construct(loader, node)


def _construct(loader: _Loader, node: yaml.Node) -> Any:
    """PyYAML's full constructor, for what `_build` does not build itself."""
    loader.json_exact = False
    return loader.construct_object(node, deep=True)


# What a file is read under: "config" for the generator's own files (every key and value typed
# as written), "manifest" for Kubernetes manifests (the data of a v1 ConfigMap typed as written),
# None for our own output read back (diff, retention). Both input rules refuse strings that
# kustomize refuses or rewrites.
Rules = Literal["config", "manifest"] | None
_FLOAT = "tag:yaml.org,2002:float"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_CANONICAL_INT = re.compile(r"(?:0|-?[1-9][0-9]*)\Z")
# A backslash escape is the only way such a character gets into a parsed string: libyaml
# refuses them raw (and turns a raw NEL into a line break).
_ESCAPE = re.compile(r"\\[xuUN]")


def _misread(node: yaml.ScalarNode) -> tuple[str, str] | None:
    """(problem, hint) when a plain scalar's YAML 1.1 type comes from a spelling other readers
    (YAML 1.2: kustomize; Go: kubectl) read differently, or that we would write back otherwise;
    None when it means the same to every reader: a string, `true`/`false`, a decimal whole
    number, a number with a fraction written plainly, a null."""
    if node.style not in (None, ""):
        return None  # quoted or a block scalar: a string as written
    tag, text = node.tag, node.value
    if tag == _STR:
        if text in YAML11_SHORT_BOOLS:
            return (f"`{text}` is a boolean in YAML 1.1 and to kubectl, but the text {text!r} to other readers",
                    f'quote it ("{text}") for the text, or write true or false')
        return None
    quote = f'quote it ("{text}") for the text'
    if tag == _BOOL and text not in ("true", "false"):
        value = "true" if yaml.safe_load(text) else "false"
        return f"`{text}` is read as the boolean {value}, not as the text {text!r}", f"{quote}, or write {value}"
    if (tag == _INT and not _CANONICAL_INT.match(text)) or (tag == _FLOAT and ("_" in text or ":" in text)):
        number = yaml.safe_load(text)
        return f"`{text}` is read as the number {number}, not as the text {text!r}", f"{quote}, or write {number}"
    if tag == _TIMESTAMP:
        return f"`{text}` is read as a date, not as the text {text!r}", quote
    return None


def _configmap_data(root: yaml.Node) -> yaml.Node | None:
    """The `data` node of a v1 ConfigMap document, else None."""
    if not isinstance(root, yaml.MappingNode):
        return None
    fields = {k.value: v for k, v in root.value if isinstance(k, yaml.ScalarNode)}
    kind, version = fields.get("kind"), fields.get("apiVersion")
    if not (isinstance(kind, yaml.ScalarNode) and kind.value == "ConfigMap"
            and isinstance(version, yaml.ScalarNode) and version.value == "v1"):
        return None
    return fields.get("data")


def _check_input(root: yaml.Node, escapes: bool, rules: Rules, aliases: bool = True) -> None:
    """The input rules (see `Rules`), on the node tree before anything is constructed;
    `escapes`: whether the text has escapes that may spell a character kustomize refuses;
    `aliases`: whether a node may be reached twice (else each is visited once without a check)."""
    typed = root if rules == "config" else _configmap_data(root)
    if typed is None and not escapes:
        return
    stack: list[tuple[yaml.Node, bool, bool]] = [(root, False, typed is root)]
    seen: set[int] | None = set() if aliases else None
    while stack:
        node, is_key, check_type = stack.pop()
        if seen is not None:
            if id(node) in seen:
                continue
            seen.add(id(node))
        cls = node.__class__
        if isinstance(node, yaml.ScalarNode):
            bad = KUSTOMIZE_UNSAFE.search(node.value) if escapes else None
            if bad is not None:
                raise LoadError(
                    f"{describe_char(bad.group())} in a string: `kubectl kustomize` refuses or rewrites it",
                    line=node.start_mark.line + 1,
                    hint="remove it; content that is not plain text belongs in a data file of a ConfigMap "
                         "(which then goes to binaryData)",
                )
            # Only a plain scalar can be misread (quoted ones and block scalars are strings).
            misread = _misread(node) if check_type and node.style in (None, "") else None
            if misread is not None:
                problem, hint = misread
                raise LoadError(f"unquoted {'key' if is_key else 'value'} {problem}",
                                line=node.start_mark.line + 1, hint=hint)
            continue
        # pushed in reverse: popped in document order, so the first offence is the one reported
        if cls is yaml.MappingNode:
            pairs = node.value
            for i in range(len(pairs) - 1, -1, -1):
                k, v = pairs[i]
                stack.append((v, False, check_type or v is typed))
                stack.append((k, True, check_type or k is typed))
        elif cls is yaml.SequenceNode:
            stack.extend([(c, False, check_type or c is typed) for c in reversed(node.value)])


def load_documents(text: str, file: Path | str, rules: Rules = None, go_text: bool = False) -> Documents:
    """Parse a YAML stream into (document, first line) pairs; empty documents are dropped.
    `rules`: the input rules to apply (see `Rules`); `go_text`: base-60 numbers and timestamps
    are text, as kubectl reads them (`_go_text`; always for manifests)."""
    loader = _Loader(text)
    loader.go_text = go_text or rules == "manifest"
    aliases = _may_alias(text)
    check = aliases or _may_nest_deep(text)  # aliases, or nesting deep enough to matter
    escapes = rules is not None and _ESCAPE.search(text) is not None
    docs = Documents()
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            if aliases:
                _check_bounds(node)
            elif check:
                _check_depth(node)
            if rules is not None:
                _check_input(node, escapes, rules, aliases)
            line = node.start_mark.line + 1
            # Without aliases every node is used once, so no memo of constructed nodes is needed
            # (and the walk above, when it ran, bounded the depth _build recurses to).
            data = loader.construct_document(node) if aliases else _build(loader, node)
            if data is not None:
                docs.append((data, line))
    except LoadError as exc:
        raise exc.located(file)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        if _LIBYAML_DEPTH in str(exc.problem):
            # libyaml >= 0.2.6 stops at its own depth limit (1,000) before our walk can run: the
            # same finding, so the same message, whichever libyaml is installed.
            raise _too_deep(mark.line + 1 if mark else None).located(file) from None
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and exc.context_mark and mark and exc.context_mark.line != mark.line:
            # e.g. an unclosed quote: the problem is at the end, its cause where the scan began
            problem += f" ({exc.context} on line {exc.context_mark.line + 1})"
        raise LoadError(
            f"invalid YAML: {problem}",
            file=file,
            line=mark.line + 1 if mark else None,
            hint=_syntax_hint(exc, text, mark),
        ) from None
    except RecursionError:
        # The pure-Python parser (PyYAML without libyaml) recurses once per level.
        raise _too_deep(None).located(file) from None
    except (yaml.YAMLError, ValueError, OverflowError) as exc:
        raise LoadError(f"invalid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    docs.json_exact = loader.json_exact and not aliases
    return docs


def read_text(path: Path, shown: Path | str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise LoadError(
            f"file is not valid UTF-8 (byte {exc.start})", file=shown, line=line,
            hint="save the file as UTF-8; binary data belongs in a ConfigMap's data files, not in manifests",
        ) from None
    except IsADirectoryError:
        raise LoadError("expected a file but found a directory", file=shown) from None
    except FileNotFoundError:
        raise LoadError("file not found", file=shown) from None
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror}", file=shown) from None


# Not a tag anyone reads: what the dumper's resolver answers for a string that PyYAML would
# read back as a string but go-yaml (kubectl, kustomize) would not, so it is quoted.
_GO_TYPED = "tag:gitops-gen,2026:go-typed"


class _Dumper(_FastResolve, _BaseDumper):  # type: ignore[misc, valid-type]
    """Block style, no aliases, multi-line strings as literal blocks: output meant for review.

    A string is written plain only when PyYAML, go-yaml v2 and go-yaml v3 all read that plain
    text back as the same string (readers.py); otherwise libyaml quotes it."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    # Plain-scalar answers by text, with the go-yaml rule folded in (the loader's cache is PyYAML's
    # answers alone, so this one is separate).
    _plain_tags: dict[str, str] = {}

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._plain_tags.get(value)
            if tag is None:
                tag = self._resolve_plain(value)
                if tag == _STR and go_types(value):
                    tag = _GO_TYPED
                if len(value) <= 32 and len(self._plain_tags) < 2048:
                    self._plain_tags[value] = tag
            return tag
        return _FastResolve.resolve(self, kind, value, implicit)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)
_DUMPER = _Dumper(None)  # only its implicit-tag resolver is used


class _Unsupported(Exception):
    """A value the fast emitter leaves to libyaml."""


# Printable ASCII only: anything else (tabs, control or non-ASCII characters) goes to libyaml.
_SIMPLE = re.compile(r"[\x20-\x7e]*\Z")
_MULTILINE = re.compile(r"[\x20-\x7e\n]*\Z")
# Where libyaml refuses a plain scalar in block context (see `_plain_allowed`).
_PLAIN_BREAKERS = re.compile(r": |:\Z| #")
_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_scalar_cache: dict[str, str] = {}


def _plain_allowed(s: str) -> bool:
    """libyaml's analysis of a one-line printable-ASCII scalar in block context: may it be plain?"""
    first = s[0]
    if first == " " or s[-1] == " " or first in _INDICATORS or s.startswith(("---", "...")):
        return False
    if first in "-?:" and (len(s) == 1 or s[1] == " "):
        return False
    return _PLAIN_BREAKERS.search(s) is None


def _scalar(s: str) -> str:
    """A one-line string as libyaml writes it with our settings: plain when every reader reads
    that back as the same string, else single-quoted."""
    out = _scalar_cache.get(s)
    if out is not None:
        return out
    if not _SIMPLE.match(s):
        raise _Unsupported
    if s and _plain_allowed(s) and _DUMPER.resolve(yaml.ScalarNode, s, (True, False)) == _STR:
        out = s
    else:
        out = "'" + s.replace("'", "''") + "'"
    if len(s) <= 32 and len(_scalar_cache) < 2048:
        _scalar_cache[s] = out
    return out


def _literal(s: str, indent: int) -> str:
    """A multi-line string as a literal block (`|`), its lines indented by `indent`."""
    if not _MULTILINE.match(s) or " \n" in s or s.endswith((" ", "\n\n")) or s == "\n":
        raise _Unsupported  # libyaml would double-quote these, or write `|+` and end with `...`
    head = "|2" if s[0] in " \n" else "|"
    if not s.endswith("\n"):
        head += "-"
        s += "\n"
    pad = " " * indent
    lines = s[:-1].split("\n")
    return head + "\n" + "\n".join([pad + line if line else "" for line in lines]) + "\n"


def _value(v: Any, indent: int) -> str:
    """A scalar (or empty collection) after `key:` or `- `, with its leading space and newline."""
    if v.__class__ is str:
        if "\n" in v:
            return " " + _literal(v, indent + 2)
        return " " + _scalar(v) + "\n"
    if v is None:
        return " null\n"
    if v is True:
        return " true\n"
    if v is False:
        return " false\n"
    if v.__class__ is int:
        return f" {v}\n"
    if v == {} and v.__class__ is dict:
        return " {}\n"
    if v == [] and v.__class__ is list:
        return " []\n"
    raise _Unsupported


# A mapping key as written (`name:`), by key: keys repeat in every object, so each is checked and
# quoted once. Only strings are stored, and no other type compares equal to a string.
_key_cache: dict[str, str] = {}


def _key(k: Any) -> str:
    if k.__class__ is not str or "\n" in k or len(k) > 100:
        raise _Unsupported
    out = (_scalar(k) if k else "''") + ":"
    if len(_key_cache) < 4096:
        _key_cache[k] = out
    return out


def _mapping(d: dict[Any, Any], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    append = out.append
    for k, v in d.items():
        key = _key_cache.get(k) if k.__class__ is str else None
        if key is None:
            key = _key(k)
        if inline:
            inline = False
        else:
            key = pad + key
        cls = v.__class__
        if cls is str:  # the common case, as `_value` writes it
            if "\n" in v:
                append(key + " " + _literal(v, indent + 2))
            else:
                append(key + " " + (_scalar_cache.get(v) or _scalar(v)) + "\n")
        elif cls is dict and v:
            append(key + "\n")
            _mapping(v, indent + 2, out, False)
        elif cls is list and v:
            append(key + "\n")
            _sequence(v, indent, out, False)
        else:
            append(key + _value(v, indent))


def _sequence(items: list[Any], indent: int, out: list[str], inline: bool) -> None:
    pad = " " * indent
    for v in items:
        dash = "-" if inline else pad + "-"
        inline = False
        if v.__class__ is dict and v:
            out.append(dash + " ")
            _mapping(v, indent + 2, out, True)
        elif v.__class__ is list and v:
            out.append(dash + " ")
            _sequence(v, indent + 2, out, True)
        else:
            out.append(dash + _value(v, indent))


def _fast_dump(obj: Any) -> str:
    out: list[str] = []
    if obj.__class__ is dict and obj:
        _mapping(obj, 0, out, False)
    elif obj.__class__ is list and obj:
        _sequence(obj, 0, out, False)
    else:
        raise _Unsupported
    return "".join(out)


def dump_document(obj: Any) -> str:
    """One object as a YAML document, deterministic for equal input.

    Byte for byte what libyaml writes with our settings (a property test holds the two
    together); written in Python for the shapes manifests have, because building PyYAML's node
    tree costs more than emitting. Anything else is emitted by libyaml itself."""
    try:
        return _fast_dump(obj)
    except (_Unsupported, RecursionError):
        return _libyaml_dump(obj)


def dump_exact(obj: Any) -> str | None:
    """`dump_document(obj)` when the fast emitter writes it, else None. Its text reads back as
    `obj` exactly: only plain dicts (string keys), lists, strings, ints, booleans and nulls,
    mappings in the same key order (what libyaml reads back from what it writes), so a reader of
    this text may take `obj` itself instead of parsing it (`diff` does)."""
    try:
        return _fast_dump(obj)
    except (_Unsupported, RecursionError):
        return None


def _libyaml_dump(obj: Any) -> str:
    return yaml.dump(
        obj,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
    )


def locate(text: str, doc_index: int, path: Sequence[str | int]) -> int | None:
    """The 1-based line of `path` inside document `doc_index` of `text`, or None.

    Uses ruamel.yaml's positions; only called when an error is being reported.
    """
    from ruamel.yaml import YAML

    try:
        docs = list(YAML(typ="rt", pure=True).load_all(text))
        node: Any = docs[doc_index]
    except Exception:  # noqa: BLE001 - best effort: an error is already being reported
        return None
    line: int | None = None
    for step in path:
        try:
            if isinstance(step, int) and hasattr(node, "lc"):
                line = node.lc.item(step)[0] + 1
            elif hasattr(node, "lc"):
                line = node.lc.key(step)[0] + 1
            node = node[step]
        except (KeyError, IndexError, TypeError, AttributeError):
            break
    return line


def iter_paths(obj: Any, prefix: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    """Every path in a nested structure, the empty one first (for tests that mutate documents)."""
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from iter_paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from iter_paths(v, prefix + (i,))
