"""`externalSecrets:` in app.yaml: a declaration that renders an External Secrets Operator
`ExternalSecret`, so a credential reaches a pod without ever being committed.

    externalSecrets:
      - name: exchange-engine-api-key          # the Secret's declared name (what pods reference)
        secretStore: {kind: ClusterSecretStore, name: exchange-vault}   # kind: SecretStore by default
        refreshInterval: 1h                    # default 1h; "0" fetches once
        data:
          - secretKey: api-key                 # the key in the produced Secret
            remoteRef: {key: "exchange/{{ env }}/engine", property: api_key, version: "3"}
        apiVersion: external-secrets.io/v1     # default; v1beta1 for operators older than 0.16.2
        hash: true                             # false: keep the plain name

The object is rendered here with its plain name; the secrets step then names the ExternalSecret
and its target Secret `<name>-<hash>`, the hash taken over the declarative spec, like a hand-written
ExternalSecret. String values in `secretStore` and `remoteRef` may be Jinja2 templates.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.errors import TemplateError
from generator.model import Origin, Resource
from generator.schema import Doc, Path_, expect, mapping
from generator.steps.templating import Templates, has_template_syntax

API_VERSIONS = ("external-secrets.io/v1", "external-secrets.io/v1beta1")
STORE_KINDS = ("SecretStore", "ClusterSecretStore")
DEFAULT_REFRESH = "1h"
HASH_ANNOTATION = "gitops-gen.io/hash"  # the opt-out shared with ConfigMap and Secret manifests
_DURATION = re.compile(r"0|(?:[0-9]+(?:\.[0-9]+)?(?:ns|us|µs|ms|s|m|h))+")
_SECRET_KEY = re.compile(r"[-._a-zA-Z0-9]+")
_KEYS = ("name", "secretStore", "refreshInterval", "data", "apiVersion", "hash")


@dataclass(frozen=True)
class RemoteRef:
    key: str
    property: str | None = None
    version: str | None = None


@dataclass(frozen=True)
class SecretData:
    secret_key: str
    remote: RemoteRef


@dataclass(frozen=True)
class ExternalSecretDecl:
    name: str
    app: str
    origin: Origin
    store_name: str
    store_kind: str
    data: tuple[SecretData, ...]
    refresh_interval: str = DEFAULT_REFRESH
    api_version: str = API_VERSIONS[0]
    hashed: bool = True


def _required_str(doc: Doc, path: Path_, m: Mapping[str, Any], key: str, example: str) -> str:
    if key not in m:
        raise doc.error(path, f"missing `{key}`", hint=f"e.g. {example}")
    value = expect(doc, path + (key,), m[key], str)
    if not value:
        raise doc.error(path + (key,), f"`{key}` is empty")
    return str(value)


def _optional_str(doc: Doc, path: Path_, m: Mapping[str, Any], key: str) -> str | None:
    if key not in m:
        return None
    return str(expect(doc, path + (key,), m[key], str))


def _one_of(doc: Doc, path: Path_, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise doc.error(path, f"{value!r} is not one of: {', '.join(allowed)}")
    return value


def _data(doc: Doc, path: Path_, value: Any) -> tuple[SecretData, ...]:
    items = expect(doc, path, value, list)
    if not items:
        raise doc.error(path, "`data` is empty", hint="list at least one {secretKey, remoteRef}")
    out: list[SecretData] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        p = path + (i,)
        entry = mapping(doc, p, item, ("secretKey", "remoteRef"))
        key = _required_str(doc, p, entry, "secretKey", "secretKey: api-key")
        if not _SECRET_KEY.fullmatch(key) or len(key) > 253:
            raise doc.error(p + ("secretKey",), f"invalid Secret key {key!r}",
                            hint="keys may hold only letters, digits, '-', '_' and '.'")
        if key in seen:
            raise doc.error(p + ("secretKey",), f"secretKey {key!r} is given twice")
        seen.add(key)
        if "remoteRef" not in entry:
            raise doc.error(p, "missing `remoteRef`", hint="e.g. remoteRef: {key: exchange/engine, property: api_key}")
        rp = p + ("remoteRef",)
        ref = mapping(doc, rp, entry["remoteRef"], ("key", "property", "version"))
        remote = RemoteRef(
            _required_str(doc, rp, ref, "key", "key: exchange/engine"),
            _optional_str(doc, rp, ref, "property"),
            _optional_str(doc, rp, ref, "version"),
        )
        out.append(SecretData(key, remote))
    return tuple(out)


def parse_declarations(doc: Doc, path: Path_, value: Any, app: str) -> tuple[ExternalSecretDecl, ...]:
    """The `externalSecrets:` list of one app.yaml, strictly checked."""
    decls: list[ExternalSecretDecl] = []
    seen: set[str] = set()
    for i, item in enumerate(expect(doc, path, value, list)):
        p = path + (i,)
        d = mapping(doc, p, item, _KEYS)
        name = _required_str(doc, p, d, "name", "name: exchange-engine-api-key")
        if name in seen:
            raise doc.error(p + ("name",), f"external secret {name!r} is declared twice in this file")
        seen.add(name)
        if "secretStore" not in d:
            raise doc.error(p, "missing `secretStore`", hint="e.g. secretStore: {kind: ClusterSecretStore, name: vault}")
        sp = p + ("secretStore",)
        store = mapping(doc, sp, d["secretStore"], ("name", "kind"))
        refresh = str(expect(doc, p + ("refreshInterval",), d.get("refreshInterval", DEFAULT_REFRESH), str))
        if not _DURATION.fullmatch(refresh):
            raise doc.error(p + ("refreshInterval",), f"{refresh!r} is not a duration",
                            hint='write e.g. "1h", "15m", "1h30m", or "0" to fetch once')
        decls.append(
            ExternalSecretDecl(
                name=name,
                app=app,
                origin=Origin(doc.shown, 1, 0, doc.text, p),
                store_name=_required_str(doc, sp, store, "name", "name: vault"),
                store_kind=_one_of(doc, sp + ("kind",), str(expect(doc, sp + ("kind",), store.get("kind", STORE_KINDS[0]), str)), STORE_KINDS),
                data=_data(doc, p + ("data",), d.get("data")),
                refresh_interval=refresh,
                api_version=_one_of(doc, p + ("apiVersion",), str(expect(doc, p + ("apiVersion",), d.get("apiVersion", API_VERSIONS[0]), str)), API_VERSIONS),
                hashed=bool(expect(doc, p + ("hash",), d.get("hash", True), bool)),
            )
        )
    return tuple(decls)


def _render(templates: Templates, context: Mapping[str, Any], text: str, where: Origin) -> str:
    if not has_template_syntax(text):
        return text
    try:
        return templates.render(text, context, where.file)
    except TemplateError as exc:
        raise TemplateError(f"external secret: {exc.message}", file=where.file, line=where.line, hint=exc.hint) from None


def to_resource(decl: ExternalSecretDecl, templates: Templates, context: Mapping[str, Any]) -> Resource:
    """The ExternalSecret object, with its plain name (the secrets step hashes it)."""
    o = decl.origin
    data: list[dict[str, Any]] = []
    for i, item in enumerate(decl.data):
        at = o.at("data", i, "remoteRef")
        remote: dict[str, Any] = {"key": _render(templates, context, item.remote.key, at.at("key"))}
        if item.remote.property is not None:
            remote["property"] = _render(templates, context, item.remote.property, at.at("property"))
        if item.remote.version is not None:
            remote["version"] = _render(templates, context, item.remote.version, at.at("version"))
        data.append({"secretKey": item.secret_key, "remoteRef": remote})
    metadata: dict[str, Any] = {"name": decl.name}
    if not decl.hashed:
        metadata["annotations"] = {HASH_ANNOTATION: "false"}
    obj: dict[str, Any] = {
        "apiVersion": decl.api_version,
        "kind": "ExternalSecret",
        "metadata": metadata,
        "spec": {
            "refreshInterval": decl.refresh_interval,
            "secretStoreRef": {
                "kind": decl.store_kind,
                "name": _render(templates, context, decl.store_name, o.at("secretStore", "name")),
            },
            "target": {"name": decl.name, "creationPolicy": "Owner"},
            "data": data,
        },
    }
    return Resource(obj, o, decl.app)
