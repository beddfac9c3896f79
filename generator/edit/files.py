"""Planned source edits: applied in memory, shown as a diff, written together or not at all."""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.edit.yamltext import Path_, YamlText

SET, APPEND, DELETE = "set", "append", "delete"


@dataclass(frozen=True)
class Edit:
    """One change to one source file: `op` at `path` of document `doc_index`."""

    file: Path
    shown: str  # relative to the repo
    op: str  # set, append, delete
    path: Path_
    value: Any = None
    why: str = ""  # what it does, in the user's words
    doc_index: int = 0


def read_source(path: Path) -> str:
    # newline="": keep CRLF line endings as they are (they are part of the bytes we keep).
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def planned(edits: Sequence[Edit]) -> dict[Path, tuple[str, str, str]]:
    """file -> (shown, text before, text after), applying the edits in order in memory."""
    texts: dict[Path, tuple[str, str, str]] = {}
    for edit in edits:
        if edit.file not in texts:
            before = read_source(edit.file)
            texts[edit.file] = (edit.shown, before, before)
        shown, before, current = texts[edit.file]
        doc = YamlText(current, shown, edit.doc_index)
        if edit.op == SET:
            doc.set(edit.path, edit.value)
        elif edit.op == APPEND:
            doc.append(edit.path, edit.value)
        else:
            doc.delete(edit.path)
        texts[edit.file] = (shown, before, doc.text)
    return texts


def unified(changes: dict[Path, tuple[str, str, str]]) -> str:
    """The edits as a unified diff (what a dry run prints)."""
    out: list[str] = []
    for shown, before, after in changes.values():
        out += difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                    f"a/{shown}", f"b/{shown}")
    return "".join(line if line.endswith("\n") else line + "\n" for line in out)


def changed_lines(before: str, after: str) -> int:
    """How many lines of `after` are new or changed (for the report of an edit)."""
    matcher = difflib.SequenceMatcher(None, before.splitlines(), after.splitlines(), autojunk=False)
    return sum(j2 - j1 for tag, _, _, j1, j2 in matcher.get_opcodes() if tag != "equal")


def _write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
        os.chmod(tmp, os.stat(path).st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def written(changes: dict[Path, tuple[str, str, str]]) -> Iterator[None]:
    """Write the edited sources; put every file back as it was if the block raises."""
    done: list[tuple[Path, str]] = []
    try:
        for path, (_, before, after) in changes.items():
            if before != after:
                _write(path, after)
                done.append((path, before))
        yield
    except BaseException:
        for path, before in reversed(done):
            _write(path, before)
        raise
