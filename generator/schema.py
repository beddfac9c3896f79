"""Checks the shape of the generator's own files: unknown keys (with a did-you-mean) and wrong
types, each reported with the file and line (found with ruamel.yaml only when reporting)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from generator.hints import close_matches as _close_matches
from generator.errors import ConfigError
from generator.io.yaml_io import locate

Path_ = tuple[str | int, ...]


@dataclass(frozen=True)
class Doc:
    """A parsed document of one of the generator's files, able to say where a path is."""

    shown: str
    text: str
    doc_index: int = 0

    def error(self, path: Path_, message: str, hint: str | None = None) -> ConfigError:
        line = locate(self.text, self.doc_index, path) if path else 1
        where = ".".join(str(p) for p in path)
        prefix = f"`{where}`: " if where else ""
        return ConfigError(prefix + message, file=self.shown, line=line, hint=hint)


_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false",
               dict: "a mapping", list: "a list", float: "a number with a fraction"}


def type_name(t: type) -> str:
    return _TYPE_NAMES.get(t, t.__name__)


def expect(doc: Doc, path: Path_, value: Any, t: type) -> Any:
    ok = isinstance(value, t) and not (t is int and isinstance(value, bool))
    if not ok:
        got = "nothing" if value is None else type_name(type(value))
        raise doc.error(path, f"expected {type_name(t)}, got {got}")
    return value


def check_keys(doc: Doc, path: Path_, value: Mapping[str, Any], allowed: Sequence[str]) -> None:
    for key in value:
        if key not in allowed:
            guess = _close_matches(str(key), allowed, n=1)
            hint = f"did you mean {guess[0]!r}?" if guess else None
            raise doc.error(
                path + (key,),
                f"unknown key {key!r}; allowed here: {', '.join(allowed)}",
                hint=hint,
            )


def mapping(doc: Doc, path: Path_, value: Any, allowed: Sequence[str]) -> dict[str, Any]:
    expect(doc, path, value, dict)
    check_keys(doc, path, value, allowed)
    return value  # type: ignore[no-any-return]


def str_list(doc: Doc, path: Path_, value: Any) -> list[str]:
    expect(doc, path, value, list)
    for i, item in enumerate(value):
        expect(doc, path + (i,), item, str)
    return list(value)


def scalar_text(doc: Doc, path: Path_, value: Any) -> str:
    """A ConfigMap value: strings as they are, whole numbers and booleans as YAML spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    raise doc.error(
        path,
        f"a ConfigMap value must be a string, got {'nothing' if value is None else type_name(type(value))}",
        hint='quote the value, e.g. "0.5" or "" (ConfigMap data holds only strings)',
    )


def key_text(doc: Doc, path: Path_, key: Any) -> str:
    """A mapping key as the text it was written as. The loader has already refused spellings
    that YAML 1.1 types differently from how they read (`NO`, `0022`, `1:30`, ... see
    yaml_io.Rules), so an unquoted whole number or boolean key reads back as written; never
    `str()`, which would turn `true` into 'True'."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool) or (isinstance(key, int) and not isinstance(key, bool)):
        return scalar_text(doc, path + (key,), key)
    if key is None:
        raise doc.error(path + (cast(Any, key),), "a key must be a string, got nothing",
                        hint='an empty, `~` or `null` key is a null in YAML: quote it ("~") or name it')
    raise doc.error(path + (key,), f"a key must be a string, got {type_name(type(key))}",
                    hint="quote the key as it should read")


def text_map(doc: Doc, path: Path_, value: Mapping[Any, Any], convert: Any) -> dict[str, Any]:
    """`value` with its keys as written (`key_text`) and `convert(doc, path, v)` applied to each
    value; two keys that read as the same text are the "given twice" error."""
    out: dict[str, Any] = {}
    first: dict[str, Any] = {}
    for k, v in value.items():
        text = key_text(doc, path, k)
        if text in out:
            raise doc.error(
                path + (k,),
                f"key {text!r} is given twice (as {first[text]!r} and as {k!r})",
                hint="remove one of them",
            )
        first[text] = k
        out[text] = convert(doc, path + (k,), v)
    return out


def str_map(doc: Doc, path: Path_, value: Any) -> dict[str, str]:
    expect(doc, path, value, dict)
    return text_map(doc, path, value, scalar_text)
