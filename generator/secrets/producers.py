"""Steps that keep credentials out of git and make Secrets roll pods like ConfigMaps do.

scan step     Every string of every object (ConfigMap data and text binaryData, env values, args,
              annotations, labels, custom resources) goes through the credential detector
              (generator.secrets.scan) before anything is written; each hit not on the repo's
              allow-list is reported.
secrets step  A plaintext Secret (`data` or `stringData`) is refused. The three supported ways:
                1. a Secret managed outside the repo, listed under `external.secrets`
                   (references to it are checked by the references step);
                2. an External Secrets Operator `ExternalSecret` (declared under
                   `externalSecrets:` in app.yaml, or written by hand);
                3. an encrypted manifest committed as it is: a Bitnami `SealedSecret`, or a
                   SOPS-encrypted `Secret` (top-level `sops:` with a `mac`, values `ENC[...]`).
              The objects of 2 and 3 produce a Secret; each is renamed `<name>-<hash>`, the hash
              taken over its committed content (encrypted or declarative), and registered as a
              Secret target so every reference to the declared name is rewritten: changing the
              secret in git changes the name, which changes exactly the pod templates that use it.
              `gitops-gen.io/hash: "false"` keeps the plain name.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from generator.steps import hashing
from generator.secrets import scan
from generator.config import AllowKey, Allowance
from generator.errors import SecretError
from generator.steps.load import HASH_ANNOTATION
from generator.io.memo import Memo
from generator.model import Origin, Resource
from generator.steps.references import Target

SECRET_NAME_ANNOTATION = "gitops-gen.io/secret-name"
SEALED_GROUP = "bitnami.com"
ESO_GROUP = "external-secrets.io"
SEALED_SCOPES = ("sealedsecrets.bitnami.com/namespace-wide", "sealedsecrets.bitnami.com/cluster-wide")
_SOPS_VALUE = re.compile(r"ENC\[[A-Za-z0-9_]+,data:.*\]", re.DOTALL)
# ExternalSecret creation policies under which the operator does not own the target Secret:
# it must already exist, so it is an outside Secret (`external.secrets`), not one produced here.
_NOT_PRODUCING = ("Merge", "None")

WAYS = (
    "the supported ways: (1) create the Secret outside the repo and list its name under "
    "`external.secrets` in gitops-gen.yaml; (2) declare it under `externalSecrets:` in the app's "
    "app.yaml, rendered as an External Secrets Operator ExternalSecret; (3) commit it encrypted: "
    "a Bitnami SealedSecret (`kubeseal --scope namespace-wide`) or a SOPS-encrypted Secret "
    "(`sops --encrypt --encrypted-regex '^(data|stringData)$'`)"
)


# --- scan step ------------------------------------------------------------------------------

Problem = tuple[str, int | None, str]  # file, line, message


def _key_location(r: Resource, key: str, finding: scan.Finding) -> tuple[str, int | None]:
    """The file and line that set `key` of a ConfigMap, down to the line inside a data file."""
    where = r.key_origins.get(key)
    if where is None:
        return r.origin.file, r.origin.at("data", key).line
    if where.path:
        if where.path == ("literals", key):  # a plain ConfigMap manifest: the key is under data
            where = Origin(where.file, where.first_line, where.doc_index, where.text, ("data", key))
        return where.file, where.line
    start = where.first_line or 1
    return where.file, start + finding.line - 1


def _field_location(r: Resource, path: scan.FieldPath, finding: scan.Finding) -> tuple[str, int | None]:
    if r.kind == "ConfigMap" and len(path) == 2 and path[0] == "data":
        return _key_location(r, str(path[1]), finding)
    return r.origin.file, r.origin.at(*path).line


def _what(r: Resource, path: scan.FieldPath, label: str) -> str:
    if r.kind == "ConfigMap" and len(path) == 2 and path[0] in ("data", "binaryData"):
        where = "key" if path[0] == "data" else "binaryData key"
        return f"ConfigMap {r.declared_name!r} {where} {str(path[1])!r}"
    return f"{r.kind} {r.declared_name!r} field `{label}`"


def _allowed(allow: Mapping[AllowKey, Allowance], r: Resource, label: str) -> Allowance | None:
    return allow.get((r.kind, r.declared_name, label)) or allow.get((None, r.declared_name, label))


def scan_step(resources: Iterable[Resource], allow: Iterable[Allowance], memo: Memo | None = None) -> frozenset[AllowKey]:
    """Refuse every field of every object that holds a credential and is not on the allow-list;
    return the allow-list entries that let a finding through (`check` reports the others).

    With a memo, an object that scanned clean before (same object, same scanner rules) is not
    scanned again; anything with a finding is always scanned, so the error is always reported."""
    by_field = {a.key: a for a in allow}
    used: set[AllowKey] = set()
    problems: list[Problem] = []
    first: tuple[Resource, str] | None = None
    for r in resources:
        found = scan.scan_fields(r.obj) if memo is None else memo.scan(r.obj)
        for path, findings in found.items():
            label = scan.field_label(r.obj, path)
            entry = _allowed(by_field, r, label)
            if entry is not None:
                used.add(entry.key)
                continue
            file, line = _field_location(r, path, findings[0])
            reasons = "; ".join(f.reason for f in findings)
            problems.append((file, line, f"{_what(r, path, label)} holds a credential: {reasons}"))
            first = first or (r, label)
    if first is not None:
        raise _leak_error(problems, *first)
    return frozenset(used)


def _leak_error(problems: list[Problem], r: Resource, label: str) -> SecretError:
    file, line, message = problems[0]
    more = "".join(f"\n  also: {f}{'' if n is None else f':{n}'}: {m}" for f, n, m in problems[1:])
    if r.kind == "ConfigMap":
        move = ("ConfigMaps are committed to git and readable in the clear. Move the value to a Secret "
                "and read it with secretKeyRef or envFrom.secretRef")
    else:
        move = (f"every object in out/ is committed to git and readable in the clear. Move the value to a Secret "
                f"and reference it (env `valueFrom.secretKeyRef`, a secret volume, or the field the {r.kind} offers "
                "for a Secret reference)")
    entry = f'{{kind: {r.kind}, name: {r.declared_name}, field: "{label}", reason: "why it is safe"}}'
    return SecretError(
        message + more,
        file=file,
        line=line,
        hint=(
            f"{move}; {WAYS}. For a URL, keep the URL without the password and give the app the password "
            f"from the Secret. If it is not a credential, allow it in gitops-gen.yaml: allowInOutput: [{entry}]"
        ),
    )


# --- secrets step ---------------------------------------------------------------------------

def _group(r: Resource) -> str:
    return str(r.obj.get("apiVersion", "")).split("/")[0]


def is_sops(obj: Mapping[str, Any]) -> bool:
    sops = obj.get("sops")
    return isinstance(sops, dict) and isinstance(sops.get("mac"), str) and bool(sops["mac"])


def _annotations(meta: Any) -> dict[str, Any]:
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        return meta["annotations"]  # type: ignore[no-any-return]
    return {}


def _hashed(r: Resource) -> bool:
    return str(_annotations(r.metadata).get(HASH_ANNOTATION, "true")).lower() != "false"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _check_secret(r: Resource) -> bool:
    """True for a SOPS-encrypted Secret; refuses plaintext data. False: a Secret without data."""
    fields = [f for f in ("data", "stringData") if r.obj.get(f)]
    if not is_sops(r.obj):
        if fields:
            raise SecretError(
                f"{r.describe()} holds plaintext `{fields[0]}`: it would be committed to git "
                "(base64 is an encoding, not encryption)",
                file=r.origin.file,
                line=r.origin.at(fields[0]).line,
                hint=f"delete it from the repo and use one of {WAYS}",
            )
        return False
    for f in fields:
        values = r.obj[f]
        if not isinstance(values, dict):
            raise SecretError(f"{r.describe()}: `{f}` must be a mapping", file=r.origin.file,
                              line=r.origin.at(f).line)
        for key, value in values.items():
            if not (isinstance(value, str) and _SOPS_VALUE.fullmatch(value)):
                raise SecretError(
                    f"{r.describe()} is SOPS-encrypted but `{f}.{key}` is not (a plaintext value "
                    "would be committed)",
                    file=r.origin.file,
                    line=r.origin.at(f, key).line,
                    hint="encrypt every value: `sops --encrypt --encrypted-regex '^(data|stringData)$'` "
                    "(check `encrypted_regex` and `unencrypted_suffix` in .sops.yaml)",
                )
    return True


def _rename(r: Resource, payload: Any, secret_name: str, length: int) -> str:
    """Name the object `<name>-<hash of payload>`; returns the suffix."""
    suffix = hashing.object_hash(payload, length)
    meta = r.metadata
    r.declared = r.name
    meta["name"] = hashing.hashed_name(r.name, suffix)
    meta["annotations"] = {**_annotations(meta), SECRET_NAME_ANNOTATION: secret_name}
    return suffix


# The kinds whose objects produce a Secret and are content-hashed (a Secret only when SOPS-encrypted).
PRODUCER_KINDS = ("Secret", "SealedSecret", "ExternalSecret")


def hash_payload(obj: Mapping[str, Any]) -> Any:
    """What decides a Secret producer's hash suffix, as committed (README "Secrets" table): a SOPS
    Secret's type, data and stringData; a SealedSecret's spec without the template's name; an
    ExternalSecret's spec without the target's name (the names carry the suffix themselves)."""
    if obj.get("kind") == "Secret":
        return {k: obj[k] for k in ("type", "data", "stringData") if k in obj}
    payload = copy.deepcopy(_dict(obj.get("spec")))
    if obj.get("kind") == "SealedSecret":
        _dict(_dict(payload.get("template")).get("metadata")).pop("name", None)
    else:
        _dict(payload.get("target")).pop("name", None)
    return payload


def _sops_secret(r: Resource, length: int) -> None:
    _rename(r, hash_payload(r.obj), r.name, length)


def _sealed_scope_ok(r: Resource, spec: dict[str, Any]) -> bool:
    template_meta = _dict(_dict(spec.get("template")).get("metadata"))
    return any(
        str(_annotations(meta).get(scope, "")).lower() == "true"
        for scope in SEALED_SCOPES
        for meta in (r.metadata, template_meta)
    )


def _sealed_secret(r: Resource, length: int) -> None:
    spec = r.obj.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("encryptedData"), dict):
        raise SecretError(f"{r.describe()} has no `spec.encryptedData` mapping", file=r.origin.file,
                          line=r.origin.first_line, hint="commit the SealedSecret as kubeseal wrote it")
    if not _sealed_scope_ok(r, spec):
        raise SecretError(
            f"{r.describe()} is sealed with the default `strict` scope, which binds the ciphertext "
            "to its name: renamed to a content-hashed name it could not be unsealed",
            file=r.origin.file,
            line=r.origin.at("metadata", "name").line,
            hint="reseal it with `kubeseal --scope namespace-wide` (the name is then free and "
            f'pods roll when it changes), or keep its name with the annotation `{HASH_ANNOTATION}: "false"` '
            "(pods then do not roll when it changes)",
        )
    _rename(r, hash_payload(r.obj), r.name, length)
    template_meta = _dict(_dict(spec.get("template")).get("metadata"))
    if "name" in template_meta:  # the controller names the Secret after the SealedSecret
        template_meta["name"] = r.name


def produced_secret(r: Resource) -> str | None:
    """The name of the Secret an object makes the cluster create, or None (not a producer)."""
    if r.kind == "Secret" and r.obj.get("apiVersion") == "v1":
        return r.name
    if r.kind == "SealedSecret" and _group(r) == SEALED_GROUP:
        return r.name
    if r.kind == "ExternalSecret" and _group(r) == ESO_GROUP:
        target = _dict(_dict(r.obj.get("spec")).get("target"))
        if target.get("creationPolicy", "Owner") in _NOT_PRODUCING:
            return None
        return str(target.get("name") or r.name)
    return None


def _external_secret(r: Resource, length: int) -> None:
    spec = r.obj.get("spec")
    if not isinstance(spec, dict):
        raise SecretError(f"{r.describe()} has no `spec` mapping", file=r.origin.file, line=r.origin.first_line)
    secret = produced_secret(r) or r.name
    suffix = _rename(r, hash_payload(r.obj), secret, length)
    target = spec.get("target")
    if not isinstance(target, dict):
        target = spec["target"] = {}
    target["name"] = hashing.hashed_name(secret, suffix)


def secret_step(resources: list[Resource], hash_length: int) -> None:
    """Refuse plaintext Secrets; content-hash and rename every in-repo Secret producer."""
    producers: dict[tuple[str | None, str], Resource] = {}
    for r in resources:
        secret = produced_secret(r)
        if secret is None:
            continue
        first = producers.get((r.namespace, secret))
        if first is not None:
            raise SecretError(
                f"{r.describe()} and {first.describe()} (at {first.origin}) both produce Secret {secret!r}",
                file=r.origin.file, line=r.origin.first_line, hint="keep one of them",
            )
        producers[(r.namespace, secret)] = r
        if r.kind == "Secret":
            if _check_secret(r) and _hashed(r):
                _sops_secret(r, hash_length)
        elif _hashed(r):
            if r.kind == "SealedSecret":
                _sealed_secret(r, hash_length)
            else:
                _external_secret(r, hash_length)


def _secret_keys(r: Resource) -> frozenset[str] | None:
    """The keys of the Secret a SealedSecret or ExternalSecret produces (None: unknown)."""
    spec = _dict(r.obj.get("spec"))
    template = _dict(spec.get("template")) if r.kind == "SealedSecret" else _dict(_dict(spec.get("target")).get("template"))
    template_keys = set(_dict(template.get("data")))
    if r.kind == "SealedSecret":
        return frozenset(set(_dict(spec.get("encryptedData"))) | template_keys)
    if spec.get("dataFrom") or template.get("templateFrom"):
        return None
    data_keys = {str(d["secretKey"]) for d in spec.get("data") or [] if isinstance(d, dict) and "secretKey" in d}
    if template_keys:
        return frozenset(template_keys | data_keys if template.get("mergePolicy") == "Merge" else template_keys)
    return frozenset(data_keys)


def secret_targets(resources: Iterable[Resource]) -> dict[tuple[str, str | None, str], Target]:
    """SealedSecrets and ExternalSecrets as targets of kind Secret, by their declared Secret name."""
    out: dict[tuple[str, str | None, str], Target] = {}
    for r in resources:
        if r.kind not in ("SealedSecret", "ExternalSecret"):
            continue
        final = produced_secret(r)
        if final is None:
            continue
        declared = str(_annotations(r.metadata).get(SECRET_NAME_ANNOTATION) or final)
        out[("Secret", r.namespace, declared)] = Target("Secret", declared, final, _secret_keys(r), r)
    return out
