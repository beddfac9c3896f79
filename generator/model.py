"""The values that flow through the pipeline."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

@dataclass(frozen=True, slots=True)
class Reread:
    """A source file's text, read again on demand (only when an error is reported)."""

    path: str  # (a string, not a Path: one is kept per manifest, and a Path is twice the memory)

    def __call__(self) -> str | None:
        from generator.io.inputs import Refused, decode_text, read_input

        try:  # the file was read once already: inside the repo, not a FIFO; re-check anyway
            return decode_text(read_input(Path(os.sep), Path(self.path)))
        except (OSError, UnicodeDecodeError, Refused):
            return None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a value came from: a file relative to the repo, and how to find its line.

    The line of a nested value is found lazily with ruamel.yaml (`path` inside document
    `doc_index` of `text`), so positions cost nothing unless an error is reported.
    """

    file: str
    first_line: int | None = None
    doc_index: int = 0
    # The source text, or a way to read it again when an error needs a line (so a render does
    # not hold every manifest's text in memory).
    text: str | Reread | None = field(default=None, repr=False, compare=False)
    path: tuple[str | int, ...] = ()

    def source(self) -> str | None:
        return self.text() if isinstance(self.text, Reread) else self.text

    @property
    def line(self) -> int | None:
        if self.text is not None and self.path:
            from generator.io.yaml_io import locate

            text = self.source()
            return (locate(text, self.doc_index, self.path) if text is not None else None) or self.first_line
        return self.first_line

    def at(self, *path: str | int) -> Origin:
        """The origin of a value nested below this one."""
        return Origin(self.file, self.first_line, self.doc_index, self.text, self.path + path)

    def __str__(self) -> str:
        line = self.line
        return self.file if line is None else f"{self.file}:{line}"


@dataclass(frozen=True, slots=True)
class KeyedOrigin:
    """The origin of every key under one field of a file (`literals:` of one declaration): one
    shared value instead of an Origin per key; `at(key)` makes that key's Origin when needed."""

    origin: Origin
    field: str  # "literals" or "binaryData"

    def at(self, key: str) -> Origin:
        return self.origin.at(self.field, key)

    def describe(self, key: str) -> str:
        label = "literal" if self.field == "literals" else self.field
        return f"{self.origin.file} {label} {key!r}"


class KeyOrigins(Mapping[str, Origin]):
    """Key -> Origin over a mapping that may hold KeyedOrigins, resolved on lookup."""

    __slots__ = ("_where",)

    def __init__(self, where: Mapping[str, Origin | KeyedOrigin]) -> None:
        self._where = where

    def __getitem__(self, key: str) -> Origin:
        found = self._where[key]
        return found.at(key) if isinstance(found, KeyedOrigin) else found

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)


@dataclass(slots=True)
class Resource:
    """One Kubernetes object plus the place it was read from.

    `obj` is the parsed object and is mutated in place by the pipeline steps; `app` decides the
    output folder.
    """

    obj: dict[str, Any]
    origin: Origin
    app: str
    # The name the repo uses for an object the generator renames (a hashed ConfigMap): output
    # paths and references use it, so a content change edits one file instead of adding one.
    declared: str | None = None
    # For generated data (ConfigMaps): where each key's value was set, for errors about one key.
    key_origins: Mapping[str, Origin] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        ns = self.metadata.get("namespace")
        return str(ns) if ns is not None else None

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        if not isinstance(meta, dict):
            meta = {}
            self.obj["metadata"] = meta
        return meta

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.kind, self.namespace, self.name)

    @property
    def declared_name(self) -> str:
        return self.declared or self.name

    def describe(self) -> str:
        return f"{self.kind} {self.name!r}"


@dataclass(frozen=True)
class Source:
    """One entry of a ConfigMap declaration's `files`, `dirs` or `envs`, resolved to a path."""

    kind: str  # "file", "dir" or "env"
    path: Path
    shown: str  # the path as the user should see it (relative to the repo)
    key: str | None = None  # explicit key for "key=path" file sources


@dataclass
class ConfigMapDecl:
    """A ConfigMap declared in app.yaml (or converted from a plain manifest), before overlays."""

    name: str
    app: str
    origin: Origin
    literals: dict[str, str] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    hashed: bool = True
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    # For plain manifests: the object as written (metadata, extra fields kept).
    manifest: dict[str, Any] | None = None
    binary: dict[str, str] = field(default_factory=dict)  # base64 binaryData from a manifest
    # Literal values with {{ or {% are Jinja2 templates in app.yaml; a plain manifest's data is
    # taken as written (template the whole file as .yaml.j2 instead).
    templated: bool = True
    hash_style: str | None = None  # `hashStyle` of the declaration; None: the environment's


@dataclass
class ConfigMapOverlay:
    """An environment's changes to a ConfigMap of the base."""

    name: str
    origin: Origin
    literals: dict[str, str] = field(default_factory=dict)
    sources: list[Source] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    hashed: bool | None = None
    hash_style: str | None = None
