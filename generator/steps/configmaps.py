"""Step: build each ConfigMap's final data (sources, overlays, templates) and turn it into an
immutable object named by its content hash."""

from __future__ import annotations

import base64
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.steps import hashing
from generator.config import rel
from generator.errors import ConfigMapError, TemplateError
from generator.io import index as render_index
from generator.io.inputs import Refused, TooBig, decode_text, probe, read_input
from generator.model import ConfigMapDecl, ConfigMapOverlay, KeyedOrigin, KeyOrigins, Origin, Resource, Source
from generator.io.readers import describe_char, kustomize_unsafe
from generator.steps.templating import Templates, has_template_syntax

# Kubernetes' IsConfigMapKey (k8s.io/apimachinery/pkg/util/validation/validation.go):
# `configMapKeyFmt = [-._a-zA-Z0-9]+` anchored ^...$ (Go's `$` is the end of the text: `\Z` here,
# Python's `$` would also take a trailing newline), at most DNS1123SubdomainMaxLength (253)
# bytes, and not `.`, `..` or anything starting with `..`.
KEY_RE = re.compile(r"[-._a-zA-Z0-9]+\Z")
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
            bad = kustomize_unsafe(value)
            if bad is not None:
                where = at or (origin if isinstance(origin, KeyedOrigin) else Origin(origin))
                if isinstance(where, KeyedOrigin):
                    where = where.at(key)
                raise ConfigMapError(
                    f"value of key {key!r} holds {describe_char(bad.group())} at character {bad.start() + 1}: "
                    "`kubectl kustomize` refuses or rewrites it",
                    file=where.file, line=where.line,
                    hint="remove it, or put the content in a data file (`files:`): "
                         "a file with such characters goes to binaryData, byte for byte",
                )
            self.data[key] = value
        else:
            text = _as_text(value)
            if text is None:
                self.binary[key] = base64.b64encode(value).decode("ascii")
            else:
                self.data[key] = text
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


def _as_text(content: bytes) -> str | None:
    """A data file's content as text, or None when it belongs in binaryData: not UTF-8, or
    holding characters that `kubectl kustomize` refuses or rewrites in a string (readers.py).
    binaryData carries the bytes unchanged to a mounted file, as kustomize's own generator does
    for non-UTF-8 content; an env var cannot read binaryData, but a file with such bytes is no
    env value."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if kustomize_unsafe(text) else text


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
                for path in self._dir_files(source):
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

    def _dir_files(self, source: Source) -> list[Path]:
        """The regular files directly in a `dirs:` folder (names starting with '.' skipped);
        a symlink among them is checked like any data file, a FIFO, socket or device refused."""
        files = []
        render_index.note(source.path)  # its listing is an input of the render
        with os.scandir(source.path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.name.startswith(".") or entry.is_dir(follow_symlinks=False):
                    continue
                path = Path(entry.path)
                if entry.is_file(follow_symlinks=False):
                    files.append(path)
                    continue
                try:
                    found = probe(self.root, path)
                except Refused as exc:
                    shown = rel(self.root, path)
                    raise ConfigMapError(f"{shown} {exc.reason}", file=shown, hint=exc.hint) from None
                if found is not None and stat.S_ISREG(found.st_mode):
                    files.append(path)
        return files

    def _read(self, path: Path, shown: str) -> bytes:
        """A data file's bytes; its size is checked against the ConfigMap limit before reading."""
        try:
            return read_input(self.root, path, MAX_SIZE)
        except TooBig as exc:
            raise ConfigMapError(
                f"data file is {exc.size:,} bytes, over the API server's 1 MiB ConfigMap limit",
                file=shown,
                hint="ship large files in the image or a volume; a ConfigMap holds at most 1 MiB",
            ) from None
        except Refused as exc:
            raise ConfigMapError(f"{shown} {exc.reason}", file=shown, hint=exc.hint) from None
        except OSError as exc:
            raise ConfigMapError(f"cannot read data file: {exc.strerror}", file=shown) from None

    def _file(self, out: Content, path: Path, key: str | None) -> None:
        shown = rel(self.root, path)
        raw = self._read(path, shown)
        value: bytes | str = raw
        if path.name.endswith(".j2"):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ConfigMapError("a .j2 template must be UTF-8 text", file=shown) from None
            value = self.templates.render(text, self.context, shown).encode("utf-8", "surrogatepass")
            key = key or path.name[: -len(".j2")]
        out.put(key or path.name, value, shown, override=False, at=Origin(shown, 1))

    def _env_file(self, out: Content, source: Source) -> None:
        try:
            text = decode_text(self._read(source.path, source.shown))
        except UnicodeDecodeError:
            raise ConfigMapError("env file is not UTF-8 text", file=source.shown) from None
        for number, key, value in env_entries(text, source.shown):
            out.put(key, value, f"{source.shown}:{number}", override=False, at=Origin(source.shown, number))


# What Go's unicode.IsSpace calls space (kubectl trims it from the start of an env-file line);
# Python's str.isspace differs (it also takes U+001C..U+001F).
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
# IsEnvVarName (k8s.io/apimachinery/pkg/util/validation), which kubectl applies to env-file keys.
ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*\Z")


def env_entries(text: str, shown: str) -> list[tuple[int, str, str]]:
    """(line number, key, value) of an env file, read as `kubectl create configmap
    --from-env-file` reads it (k8s.io/kubectl/pkg/cmd/util/env_file.go, AddFromEnvFile):
    lines are bufio.ScanLines tokens (split on "\n" only, one trailing "\r" dropped); a UTF-8
    BOM is dropped from the first line; leading white space (Go's unicode.IsSpace) is trimmed;
    empty lines and lines starting with "#" are skipped; the key is everything before the first
    "=", untrimmed, and must be an environment variable name; the value is everything after it,
    unchanged (spaces, quotes and "#" included).

    One deliberate difference: kubectl takes the value of a line without "=" from its own
    environment; that would make the output depend on who renders, so it is an error here."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # ScanLines returns no empty token after a final newline
    entries: list[tuple[int, str, str]] = []
    for number, line in enumerate(lines, start=1):
        if line.endswith("\r"):
            line = line[:-1]
        if number == 1 and line.startswith("\ufeff"):
            line = line[1:]
        line = line.lstrip(_GO_SPACE)
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not eq:
            raise ConfigMapError(
                f"expected KEY=VALUE, got {line!r}",
                file=shown, line=number,
                hint="write KEY= for an empty value (kubectl would take a line without '=' from the "
                     "environment of whoever runs it); lines starting with # are skipped",
            )
        if not ENV_NAME_RE.match(key):
            raise ConfigMapError(
                f"{key!r} is not a valid env-file key",
                file=shown, line=number,
                hint="a key is letters, digits, '_', '-' and '.', not starting with a digit, with nothing "
                     "between it and '=' (as kubectl --from-env-file requires)",
            )
        entries.append((number, key, value))
    return entries


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


def key_problem(key: str) -> str | None:
    """Why Kubernetes refuses `key` as a ConfigMap key (IsConfigMapKey), or None."""
    if len(key.encode("utf-8")) > MAX_KEY_LENGTH:
        return f"longer than {MAX_KEY_LENGTH} characters"
    if not KEY_RE.match(key):
        return "only letters, digits, '-', '_' and '.' are allowed"
    if key in (".", ".."):
        return f"a key must not be {key!r}"
    if key.startswith(".."):
        return "a key must not start with '..'"
    return None


def validate_content(decl: ConfigMapDecl, content: Content) -> None:
    size = 0
    for key in sorted(content.origins):
        problem = key_problem(key)
        if problem is not None:
            literal = decl.origin.at("literals", key) if key in decl.literals else decl.origin
            raise ConfigMapError(
                f"invalid ConfigMap key {key!r} in {decl.name!r} (from {content.describe(key)}): {problem}",
                file=decl.origin.file,
                line=literal.line,
                hint="keys may hold only letters, digits, '-', '_' and '.', at most 253 characters, "
                     "and are not '.', '..' or '..'-prefixed (Kubernetes' IsConfigMapKey)",
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
