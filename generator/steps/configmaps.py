"""Step: build each ConfigMap's final data (sources, overlays, templates) and turn it into an
immutable object named by its content hash."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.steps import hashing
from generator.config import inside_repo, rel
from generator.errors import ConfigMapError, TemplateError
from generator.model import ConfigMapDecl, ConfigMapOverlay, KeyedOrigin, KeyOrigins, Origin, Resource, Source
from generator.steps.templating import Templates, has_template_syntax

KEY_RE = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_KEY_LENGTH = 253
MAX_SIZE = 1024 * 1024  # the API server refuses ConfigMaps over 1 MiB
CONFIG_NAME_ANNOTATION = "gitops-gen.io/config-name"


Describe = str | KeyedOrigin  # where a key came from, for messages: text, or a shared field origin


@dataclass
class Content:
    """A ConfigMap's keys, with where each came from (for error messages)."""

    data: dict[str, str] = field(default_factory=dict)
    binary: dict[str, str] = field(default_factory=dict)
    origins: dict[str, Describe] = field(default_factory=dict)
    # Where each key was set, as a position (file and line) for errors about one key's value.
    where: dict[str, Origin | KeyedOrigin] = field(default_factory=dict)

    def keys(self) -> set[str]:
        return set(self.data) | set(self.binary)

    def describe(self, key: str) -> str:
        found = self.origins[key]
        return found.describe(key) if isinstance(found, KeyedOrigin) else found

    def put(
        self, key: str, value: bytes | str, origin: Describe, *, override: bool, at: Origin | KeyedOrigin | None = None
    ) -> None:
        if not override and key in self.origins:
            given = origin.describe(key) if isinstance(origin, KeyedOrigin) else origin
            raise ConfigMapError(
                f"key {key!r} is given twice: by {self.describe(key)} and by {given}",
                file=origin.origin.file if isinstance(origin, KeyedOrigin) else origin.split(":")[0],
                hint="rename one of them (files take `key=path`) or drop the duplicate",
            )
        self.data.pop(key, None)
        self.binary.pop(key, None)
        if isinstance(value, str):
            self.data[key] = value
        else:
            try:
                self.data[key] = value.decode("utf-8")
            except UnicodeDecodeError:
                self.binary[key] = base64.b64encode(value).decode("ascii")
        self.origins[key] = origin
        self.where[key] = at or (origin if isinstance(origin, KeyedOrigin) else Origin(origin))

    def merged(self, other: Content) -> Content:
        result = Content(dict(self.data), dict(self.binary), dict(self.origins), dict(self.where))
        for key, value in other.data.items():
            result.put(key, value, other.origins[key], override=True, at=other.where.get(key))
        for key, value in other.binary.items():
            result.binary[key] = value
            result.data.pop(key, None)
            result.origins[key] = other.origins[key]
            result.where[key] = other.where[key]
        return result


@dataclass(frozen=True)
class Builder:
    """Reads sources and renders templated values for one app in one environment."""

    root: Path
    templates: Templates
    context: Mapping[str, Any]

    def content(
        self, literals: Mapping[str, str], sources: list[Source], origin: Origin, templated: bool = True
    ) -> Content:
        out = Content()
        keyed = KeyedOrigin(origin, "literals")
        for key, value in literals.items():
            if templated and has_template_syntax(value):
                value = self._literal(key, value, keyed.at(key))
            out.put(key, value, keyed, override=False)
        for source in sources:
            if source.kind == "file":
                self._file(out, source.path, source.key)
            elif source.kind == "dir":
                for path in sorted(source.path.iterdir()):
                    if path.is_file() and not path.name.startswith("."):
                        self._file(out, path, None)
            else:
                self._env_file(out, source)
        return out

    def _literal(self, key: str, value: str, where: Origin) -> str:
        try:
            return self.templates.render(value, self.context, where.file)
        except TemplateError as exc:
            # Report the literal's own line in the declaring file, not a line inside the value.
            inner = f" (line {exc.line} of the value)" if exc.line is not None and exc.line > 1 else ""
            raise TemplateError(f"literal {key!r}{inner}: {exc.message}", file=where.file,
                                line=where.line, hint=exc.hint) from None

    def _file(self, out: Content, path: Path, key: str | None) -> None:
        shown = rel(self.root, path)
        if not inside_repo(self.root, path):
            raise ConfigMapError("file points outside the repo", file=shown,
                                 hint="data files must live inside the repo")
        raw = path.read_bytes()
        value: bytes | str = raw
        if path.name.endswith(".j2"):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigMapError("a .j2 template must be UTF-8 text", file=shown) from None
            value = self.templates.render(text, self.context, shown)
            key = key or path.name[: -len(".j2")]
        out.put(key or path.name, value, shown, override=False, at=Origin(shown, 1))

    def _env_file(self, out: Content, source: Source) -> None:
        try:
            text = source.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ConfigMapError("env file is not UTF-8 text", file=source.shown) from None
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            key, eq, value = stripped.partition("=")
            if not eq or not key.strip():
                raise ConfigMapError(
                    f"expected KEY=VALUE, got {stripped!r}",
                    file=source.shown,
                    line=number,
                    hint="env files hold KEY=VALUE lines; blank lines and lines starting with # are skipped",
                )
            out.put(key.strip(), value, f"{source.shown}:{number}", override=False, at=Origin(source.shown, number))


def final_content(builder: Builder, decl: ConfigMapDecl, overlay: ConfigMapOverlay | None) -> Content:
    content = builder.content(decl.literals, decl.sources, decl.origin, decl.templated)
    keyed = KeyedOrigin(decl.origin, "binaryData")
    for key, value in decl.binary.items():
        content.binary[key] = value
        content.origins[key] = content.where[key] = keyed
    if overlay is None:
        return content
    content = content.merged(builder.content(overlay.literals, overlay.sources, overlay.origin))
    for i, key in enumerate(overlay.remove):
        if key not in content.origins:
            raise ConfigMapError(
                f"`remove` names key {key!r}, which ConfigMap {decl.name!r} does not have",
                file=overlay.origin.file,
                line=overlay.origin.at("remove", i).line,
                hint=f"its keys are: {', '.join(sorted(content.origins)) or '(none)'}",
            )
        content.data.pop(key, None)
        content.binary.pop(key, None)
        del content.origins[key]
        content.where.pop(key, None)
    return content


def validate_content(decl: ConfigMapDecl, content: Content) -> None:
    size = 0
    for key in sorted(content.origins):
        if len(key) > MAX_KEY_LENGTH or not KEY_RE.match(key):
            literal = decl.origin.at("literals", key) if key in decl.literals else decl.origin
            raise ConfigMapError(
                f"invalid ConfigMap key {key!r} in {decl.name!r} (from {content.describe(key)})",
                file=decl.origin.file,
                line=literal.line,
                hint="keys may hold only letters, digits, '-', '_' and '.', at most 253 characters",
            )
        size += len(key.encode()) + len(content.data.get(key, "").encode()) + len(content.binary.get(key, ""))
    if size > MAX_SIZE:
        raise ConfigMapError(
            f"ConfigMap {decl.name!r} holds {size:,} bytes, over the API server's 1 MiB limit",
            file=decl.origin.file,
            line=decl.origin.line,
            hint="split it into several ConfigMaps, or ship large files in the image or a volume",
        )


def to_resource(
    decl: ConfigMapDecl, content: Content, hash_length: int, hash_style: str = hashing.HASH_STYLES[0]
) -> Resource:
    """The ConfigMap object: hashed name and immutable unless the declaration opts out."""
    base = decl.manifest or {}
    meta: dict[str, Any] = dict(base.get("metadata") or {})
    meta["name"] = decl.name
    if decl.labels:
        meta["labels"] = {**(meta.get("labels") or {}), **decl.labels}
    if decl.annotations:
        meta["annotations"] = {**(meta.get("annotations") or {}), **decl.annotations}
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}
    for key, value in base.items():
        if key not in ("apiVersion", "kind", "metadata", "data", "binaryData", "immutable"):
            obj[key] = value
    if decl.hashed:
        suffix = hashing.suffix_for(hash_style, content.data, content.binary, hash_length)
        meta["name"] = hashing.hashed_name(decl.name, suffix)
        meta["annotations"] = {**(meta.get("annotations") or {}), CONFIG_NAME_ANNOTATION: decl.name}
        obj["immutable"] = True
    elif "immutable" in base:
        obj["immutable"] = base["immutable"]
    if content.data:
        obj["data"] = {k: content.data[k] for k in sorted(content.data)}
    if content.binary:
        obj["binaryData"] = {k: content.binary[k] for k in sorted(content.binary)}
    return Resource(obj, decl.origin, decl.app, declared=decl.name, key_origins=KeyOrigins(content.where))
