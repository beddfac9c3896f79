"""Minimal edits of a YAML source file: every byte outside the changed lines stays as it was.

ruamel.yaml's round-trip *dumper* re-flows what it writes (indentation of sequences, long
lines, spacing inside flow collections, comment columns, line endings), so it cannot promise
an unchanged file. Its round-trip *composer* can: it knows where every node starts and ends.
So an edit composes the file with ruamel.yaml, finds the node, and splices new text into the
original at those positions: a changed scalar keeps its line (and its comment, quoting and
flow context), a new key or list item is one inserted block in the file's own indentation and
line ending. After every edit the file is parsed again and must equal the old data with
exactly the intended change, or the edit is refused (never a silently wrong file).

Values reached through an alias (`*anchor`), or shared through an anchor, are refused: changing
them would change every place that uses the anchor. A key that a mapping only gets from a merge
(`<<: *defaults`) is added to the mapping itself, which overrides the merged one.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from generator.errors import EditError
from generator.io.yaml_io import load_plain_all

Path_ = tuple[str | int, ...]
_DELETE = object()  # the marker of a deletion in `_expected`

# A plain scalar we write must be a string for every reader of the file: PyYAML (YAML 1.1),
# ruamel.yaml (YAML 1.2) and Go's sigs.k8s.io/yaml (bools y/n/on/off, numbers with _, 0x, 0o).
_PLAIN = re.compile(r"[A-Za-z_./][A-Za-z0-9_./@+-]*(?::[A-Za-z0-9_./@+-]+)*\Z|[0-9][A-Za-z0-9_./@+-]*\Z")
_GO_NUMBER = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?\Z|[-+]?0[xXoObB]?[0-9a-fA-F_]+\Z")
_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


def is_plain_safe(text: str) -> bool:
    """Whether `text` can be written without quotes and still be read back as this string."""
    if not _PLAIN.match(text) or text.lower() in _WORDS or _GO_NUMBER.match(text.replace("_", "")):
        return False
    try:
        return bool(yaml.safe_load(text) == text)
    except yaml.YAMLError:
        return False


def scalar(value: Any, style: str | None = None) -> str:
    """One scalar in YAML on one line; `style` is the quoting of the value it replaces."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value)
    if style == "'" and text and all(_printable(c) for c in text):
        return "'" + text.replace("'", "''") + "'"
    if style is None and is_plain_safe(text):
        return text
    return double_quoted(text)


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _printable(c: str) -> bool:
    """YAML 1.1/1.2's printable set, less the characters that readers fold or drop inside quotes
    (NEL, LS, PS as line breaks; the BOM)."""
    o = ord(c)
    if c in "\x85\u2028\u2029\ufeff":
        return False
    return 0x20 <= o <= 0x7E or 0xA0 <= o <= 0xD7FF or 0xE000 <= o <= 0xFFFD or 0x10000 <= o <= 0x10FFFF


def double_quoted(text: str) -> str:
    """`text` as a double-quoted YAML scalar on one line; what cannot be written raw is escaped."""
    out = []
    for c in text:
        if c in _ESCAPES:
            out.append(_ESCAPES[c])
        elif _printable(c):
            out.append(c)
        elif ord(c) <= 0xFF:
            out.append(f"\\x{ord(c):02x}")
        elif ord(c) <= 0xFFFF:
            out.append(f"\\u{ord(c):04x}")
        else:
            out.append(f"\\U{ord(c):08x}")
    return '"' + "".join(out) + '"'


def flow(value: Any) -> str:
    """A value in flow style (for inside `{...}` or `[...]`)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{scalar(k)}: {flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(v) for v in value) + "]"
    return scalar(value)


@dataclass(frozen=True)
class Layout:
    """How a file writes block collections: indentation step, `-` offset below a key, line ending."""

    step: int = 2
    dash: int = 2
    eol: str = "\n"

    def below(self, value: Any, key_col: int) -> list[str]:
        """The lines of a non-empty mapping or list nested under a key at column `key_col`."""
        if isinstance(value, dict):
            return self.mapping(value, key_col + self.step)
        return self.items(value, key_col + self.dash)

    def mapping(self, value: dict[Any, Any], col: int) -> list[str]:
        lines: list[str] = []
        for k, v in value.items():
            head = f"{' ' * col}{scalar(k)}:"
            if isinstance(v, (dict, list)) and v:
                lines += [head + self.eol, *self.below(v, col)]
            else:
                lines.append(f"{head} {flow(v)}{self.eol}")
        return lines

    def items(self, values: list[Any], dash_col: int) -> list[str]:
        lines: list[str] = []
        for item in values:
            if isinstance(item, dict) and item:
                inner = self.mapping(item, dash_col + 2)
                lines += [" " * dash_col + "- " + inner[0][dash_col + 2:], *inner[1:]]
            else:
                lines.append(" " * dash_col + "- " + flow(item) + self.eol)
        return lines


@dataclass
class Change:
    """One edit, for messages and dry runs: what changed at which line of which file."""

    file: str
    line: int
    description: str


class YamlText:
    """The text of one YAML file (one document of it) and the edits made to it."""

    def __init__(self, text: str, shown: str, doc_index: int = 0) -> None:
        self.text = text
        self.shown = shown
        self.doc_index = doc_index
        self.eol = "\r\n" if "\r\n" in text else "\n"
        self._composed: tuple[str, Any] | None = None

    # ------------------------------------------------------------ reading

    def _root(self) -> Any:
        """The composed document; composed again only after the text changed (node ids stay
        comparable between lookups of one text)."""
        if self._composed is None or self._composed[0] != self.text:
            self._composed = (self.text, self._compose())
        return self._composed[1]

    def _compose(self) -> Any:
        from ruamel.yaml import YAML

        try:
            docs = list(YAML(typ="rt", pure=True).compose_all(self.text))
        except Exception as exc:  # noqa: BLE001 - ruamel raises many types; the render reports details
            raise EditError(f"cannot edit: the file is not valid YAML ({exc})", file=self.shown) from None
        return docs[self.doc_index] if self.doc_index < len(docs) else None

    def data(self) -> Any:
        docs = load_plain_all(self.text)
        return docs[self.doc_index] if self.doc_index < len(docs) else None

    def find(self, path: Path_) -> tuple[Any, list[Any]]:
        """The node at `path` (or None) and the nodes above it (root first)."""
        node, chain = self._root(), []
        for step in path:
            chain.append(node)
            node = _child(node, step)
            if node is None:
                return None, chain
        return node, chain

    def line_of(self, path: Path_) -> int:
        node, chain = self.find(path)
        target = node if node is not None else next((n for n in reversed(chain) if n is not None), None)
        return 1 if target is None else int(target.start_mark.line) + 1

    def get(self, path: Path_) -> Any:
        node = self.data()
        for step in path:
            if isinstance(node, dict) and isinstance(step, str):
                node = node.get(step)
            elif isinstance(node, list) and isinstance(step, int) and step < len(node):
                node = node[step]
            else:
                return None
        return node

    # ------------------------------------------------------------ edits

    def set(self, path: Path_, value: Any) -> None:
        """Set the value at `path` (a scalar, or a new key with any value); create missing parents."""
        node, chain = self.find(path)
        self._refuse_shared(path, node, chain)
        before = self.text
        if node is not None:
            if not _is_scalar(node) or node.tag.endswith(":null") and node.start_mark.index == node.end_mark.index:
                self._replace_empty_or_refuse(path, node, chain, value)
            else:
                end = node.end_mark.index
                if node.style in ("|", ">"):  # the span runs over trailing blank lines: keep them
                    end = self._line_end(_content_end(self.text, node))
                self._splice(node.start_mark.index, end, self._scalar_text(node, value))
        else:
            self._add(path, chain, value)
        self._verify(before, path, value)

    def append(self, path: Path_, item: Any) -> None:
        """Append `item` to the list at `path` (created if missing)."""
        node, chain = self.find(path)
        self._refuse_shared(path, node, chain)
        before = self.text
        current = self.get(path)
        if node is None or (_is_scalar(node) and node.tag.endswith(":null")):
            self.set(path, [item])
            return
        if not _is_seq(node):
            raise EditError(f"cannot add to `{_dotted(path)}`: it is not a list", file=self.shown, line=self.line_of(path))
        if node.flow_style:
            self._flow_insert(node, flow(item))
        else:
            self._insert_lines(self._after(node), self._layout().items([item], int(node.start_mark.column)))
        self._verify(before, path, [*(current or []), item])

    def delete(self, path: Path_) -> None:
        """Remove a key of a mapping or an item of a list, with its whole lines in block style."""
        node, chain = self.find(path)
        if node is None:
            return
        self._refuse_shared(path, node, chain)
        before = self.text
        parent = chain[-1]
        if parent.flow_style:
            self._flow_delete(parent, path[-1])
        elif len(parent.value) == 1 and len(chain) >= 2 and _is_map(chain[-2]):
            # The only entry of a block collection: the collection becomes an empty flow one
            # (`remove: []`), since nothing left under the key would read as null.
            key = _key_node(chain[-2], path[-2])
            colon = self.text.index(":", key.end_mark.index)
            self._splice(colon + 1, self._after(node), (" []" if _is_seq(parent) else " {}") + self.eol)
        else:
            start = self._line_start(_entry_start(parent, path[-1]))
            if self.text[start:_entry_start(parent, path[-1])].strip(" ") not in ("", "-"):
                raise EditError(f"cannot remove `{_dotted(path)}` without touching its neighbours; edit it by hand",
                                file=self.shown, line=self.line_of(path))
            if self.text[start:_entry_start(parent, path[-1])].strip(" ") == "-" and _is_map(parent):
                raise EditError(f"cannot remove `{_dotted(path)}`, the first key of a list item; edit it by hand",
                                file=self.shown, line=self.line_of(path))
            self._splice(start, self._after(node), "")
        self._verify(before, path, _DELETE)

    # ------------------------------------------------------------ helpers

    def _scalar_text(self, node: Any, value: Any) -> str:
        style = node.style
        if style in ("|", ">"):
            return self._block_scalar(node, value)
        if isinstance(value, (bool, int)):
            return scalar(value)
        return scalar(value, style if style in ("'", '"') else None)

    def _block_scalar(self, node: Any, value: Any) -> str:
        text = str(value)
        body = text[:-1] if text.endswith("\n") else text
        if not body or body[0] == " " or body.endswith("\n") or not all(c.isprintable() for c in body.replace("\n", "")):
            return double_quoted(text) + self.eol
        indent = " " * (self._content_column(node))
        chomp = "" if text.endswith("\n") else "-"
        lines = [f"|{chomp}{self.eol}"] + [(indent + line if line else "") + self.eol for line in body.split("\n")]
        return "".join(lines)

    def _content_column(self, node: Any) -> int:
        first = self.text[node.start_mark.index:node.end_mark.index].split("\n", 2)
        if len(first) > 1:
            line = first[1].rstrip("\r")
            if line.strip():
                return len(line) - len(line.lstrip(" "))
        return int(node.start_mark.column) + 2

    def _replace_empty_or_refuse(self, path: Path_, node: Any, chain: list[Any], value: Any) -> None:
        if _is_scalar(node) and node.tag.endswith(":null"):
            parent = chain[-1]
            key_col = _key_node(parent, path[-1]).start_mark.column if _is_map(parent) else parent.start_mark.column
            if parent.flow_style or not isinstance(value, (dict, list)) or not value:
                span = (node.start_mark.index, node.end_mark.index)
                if span[0] == span[1]:  # `key:` with nothing: put the value after the colon
                    colon = self.text.index(":", _key_node(parent, path[-1]).end_mark.index)
                    self._splice(colon + 1, colon + 1, " " + flow(value))
                else:
                    self._splice(*span, flow(value))
                return
            if node.start_mark.index != node.end_mark.index:
                self._splice(node.start_mark.index, node.end_mark.index, "")
            key = _key_node(parent, path[-1])
            self._insert_lines(self._line_end(key.end_mark.index), self._layout().below(value, int(key_col)))
            return
        raise EditError(f"cannot set `{_dotted(path)}`: it holds a {'list' if _is_seq(node) else 'mapping'}, not a value",
                        file=self.shown, line=self.line_of(path))

    def _add(self, path: Path_, chain: list[Any], value: Any) -> None:
        """Add the missing part of `path` below the deepest existing node."""
        depth = len(chain) - 1
        parent = chain[-1]
        existing = path[:depth]
        rest = path[depth:]
        nested: Any = value
        for step in reversed(rest[1:]):
            nested = {step: nested}
        key = rest[0]
        if parent is None:
            raise EditError(f"cannot add `{_dotted(path)}`: the file is empty; edit it by hand", file=self.shown)
        if _is_scalar(parent) and parent.tag.endswith(":null"):
            self.set(existing, {key: nested})
            return
        if not _is_map(parent) or not isinstance(key, str):
            raise EditError(f"cannot add `{_dotted(path)}`: `{_dotted(existing) or 'the top'}` is not a mapping",
                            file=self.shown, line=self.line_of(existing))
        if parent.flow_style:
            self._flow_insert(parent, f"{scalar(key)}: {flow(nested)}")
            return
        self._insert_lines(self._after(parent), self._layout().mapping({key: nested}, _first_key_col(parent)))

    def _flow_insert(self, node: Any, text: str) -> None:
        pos = node.end_mark.index - 1  # the closing bracket; new text goes after the last item
        while pos > 0 and self.text[pos - 1] in " \t\r\n":
            pos -= 1
        self._splice(pos, pos, text if not node.value else ", " + text)

    def _flow_delete(self, parent: Any, step: str | int) -> None:
        items = parent.value
        index = _index_of(parent, step)
        start = _entry_start(parent, step)
        end = (items[index][1] if _is_map(parent) else items[index]).end_mark.index
        if index + 1 < len(items):  # up to the next entry, taking the comma after
            end = _entry_start(parent, _step_at(parent, index + 1))
        elif index > 0:  # the last: take the comma before
            prev = items[index - 1]
            start = (prev[1] if _is_map(parent) else prev).end_mark.index
        self._splice(start, end, "")

    def _after(self, node: Any) -> int:
        """Where a new line goes after `node` and everything in it: the start of the next line."""
        return self._line_end(_content_end(self.text, node))

    def _line_end(self, index: int) -> int:
        if index > 0 and self.text[index - 1] == "\n":
            return index
        newline = self.text.find("\n", index)
        if newline < 0:
            self.text += self.eol
            return len(self.text)
        return newline + 1

    def _line_start(self, index: int) -> int:
        return self.text.rfind("\n", 0, index) + 1

    def _insert_lines(self, index: int, lines: Sequence[str]) -> None:
        self._splice(index, index, "".join(lines))

    def _splice(self, start: int, end: int, text: str) -> None:
        self.text = self.text[:start] + text + self.text[end:]

    def _layout(self) -> Layout:
        return Layout(self._step(), self._dash(), self.eol)

    def _step(self) -> int:
        """The file's indentation step (2 unless its first nested mapping says otherwise)."""
        for node, parent_col in _block_maps(self._root(), -1):
            if parent_col >= 0 and node.start_mark.column > parent_col:
                return int(node.start_mark.column - parent_col)
        return 2

    def _dash(self) -> int:
        """How far the file indents a block list's `-` beyond its key (0 or 2, as written)."""
        root = self._root()
        for key, seq in _keyed_seqs(root):
            return int(seq.start_mark.column - key.start_mark.column)
        return 2

    def _refuse_shared(self, path: Path_, node: Any, chain: list[Any]) -> None:
        shared = _shared_nodes(self._root())
        for n in [*chain, node]:
            if n is not None and id(n) in shared:
                anchor = _anchor(n)
                raise EditError(
                    f"cannot edit `{_dotted(path)}`: it is shared through the anchor &{anchor} "
                    f"(line {n.start_mark.line + 1}), so the change would reach every alias of it",
                    file=self.shown, line=n.start_mark.line + 1,
                    hint="edit it by hand, or give this place its own value instead of the alias")

    def _verify(self, before: str, path: Path_, value: Any) -> None:
        expected = _expected(_load(before, self.doc_index), path, value)
        try:
            got = _load(self.text, self.doc_index)
        except yaml.YAMLError:
            got = _Unreadable()
        if got != expected:
            self.text = before
            raise EditError(f"could not change `{_dotted(path)}` without disturbing the rest of the file; edit it by hand",
                            file=self.shown, line=self.line_of(path))


class _Unreadable:
    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = None  # type: ignore[assignment]


def _load(text: str, doc_index: int) -> Any:
    docs = load_plain_all(text)
    return docs[doc_index] if doc_index < len(docs) else None


def _expected(data: Any, path: Path_, value: Any) -> Any:
    out = copy.deepcopy(data)
    node = out
    for step in path[:-1]:
        if isinstance(node, dict):
            if node.get(step) is None:
                node[step] = {}
            node = node[step]
        else:
            node = node[step]
    last = path[-1]
    if value is _DELETE:
        del node[last]
    else:
        node[last] = copy.deepcopy(value)
    return out


# ---------------------------------------------------------------- node helpers


def _is_scalar(node: Any) -> bool:
    return type(node).__name__ == "ScalarNode"


def _is_map(node: Any) -> bool:
    return type(node).__name__ == "MappingNode"


def _is_seq(node: Any) -> bool:
    return type(node).__name__ == "SequenceNode"


def _anchor(node: Any) -> str:
    anchor = getattr(node, "anchor", None)
    return str(getattr(anchor, "value", anchor) or "")


def _child(node: Any, step: str | int) -> Any:
    if _is_map(node) and isinstance(step, str):
        for key, value in node.value:
            if _is_scalar(key) and key.value == step and not key.tag.endswith(":merge"):
                return value
        return None
    if _is_seq(node) and isinstance(step, int) and 0 <= step < len(node.value):
        return node.value[step]
    return None


def _key_node(node: Any, step: str | int) -> Any:
    for key, _ in node.value:
        if key.value == step:
            return key
    raise KeyError(step)


def _index_of(node: Any, step: str | int) -> int:
    if _is_seq(node):
        return int(step)
    return next(i for i, (k, _) in enumerate(node.value) if k.value == step)


def _step_at(node: Any, index: int) -> str | int:
    return index if _is_seq(node) else str(node.value[index][0].value)


def _entry_start(node: Any, step: str | int) -> int:
    if _is_seq(node):
        return int(node.value[int(step)].start_mark.index)
    return int(_key_node(node, step).start_mark.index)


def _first_key_col(node: Any) -> int:
    return int(node.value[0][0].start_mark.column) if node.value else int(node.start_mark.column)


def _content_end(text: str, node: Any) -> int:
    """The end of the last character that belongs to `node` (not trailing blank or comment lines)."""
    if _is_scalar(node):
        if node.style in ("|", ">"):
            body = text[node.start_mark.index:node.end_mark.index].rstrip("\r\n \t")
            return int(node.start_mark.index) + len(body)
        return int(node.end_mark.index)
    if node.flow_style or not node.value:
        return int(node.end_mark.index)
    last = node.value[-1]
    if _is_map(node):
        key, value = last
        if _is_scalar(value) and value.start_mark.index == value.end_mark.index:
            return int(key.end_mark.index)
        return _content_end(text, value)
    return _content_end(text, last)


def _walk(node: Any, seen: dict[int, int], stack: set[int]) -> None:
    if node is None:
        return
    seen[id(node)] = seen.get(id(node), 0) + 1
    if seen[id(node)] > 1 or id(node) in stack:
        return
    stack.add(id(node))
    if _is_map(node):
        for key, value in node.value:
            _walk(key, seen, stack)
            _walk(value, seen, stack)
    elif _is_seq(node):
        for item in node.value:
            _walk(item, seen, stack)
    stack.discard(id(node))


def _shared_nodes(root: Any) -> set[int]:
    """Ids of nodes reached more than once (an anchor with aliases), and of all nodes inside them."""
    seen: dict[int, int] = {}
    _walk(root, seen, set())
    shared: set[int] = set()

    def mark(node: Any) -> None:
        if id(node) in shared:
            return
        shared.add(id(node))
        for child in _children(node):
            mark(child)

    def visit(node: Any, done: set[int]) -> None:
        if id(node) in done:
            return
        done.add(id(node))
        if seen.get(id(node), 0) > 1:
            mark(node)
        for child in _children(node):
            visit(child, done)

    if root is not None:
        visit(root, set())
    return shared


def _children(node: Any) -> Iterator[Any]:
    if _is_map(node):
        for key, value in node.value:
            yield key
            yield value
    elif _is_seq(node):
        yield from node.value


def _block_maps(node: Any, parent_col: int) -> Iterator[tuple[Any, int]]:
    if _is_map(node) and not node.flow_style:
        yield node, parent_col
        for key, value in node.value:
            yield from _block_maps(value, int(key.start_mark.column))
    elif _is_seq(node) and not node.flow_style:
        for item in node.value:
            yield from _block_maps(item, -1)


def _keyed_seqs(node: Any) -> Iterator[tuple[Any, Any]]:
    if _is_map(node):
        for key, value in node.value:
            if _is_seq(value) and not value.flow_style and value.value:
                yield key, value
            yield from _keyed_seqs(value)
    elif _is_seq(node):
        for item in node.value:
            yield from _keyed_seqs(item)


def _dotted(path: Path_) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out
