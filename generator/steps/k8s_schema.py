"""Step: validate every rendered object against the Kubernetes API schema of a pinned version, so
`replica: 3` or a misplaced field is an error at render time instead of a sync failure.

The schemas are the strict JSON schemas (unknown fields rejected) that the `kubernetes-validate`
package ships, one `_definitions.json` per Kubernetes version; only its data files are read.
They use a handful of keywords (type, enum, properties, additionalProperties, required, items,
oneOf, $ref, format), so instead of a general JSON-schema validator (jsonschema costs ~0.3 ms an
object) each definition is compiled once, when the first object that needs it is seen, into a
plain Python check that costs microseconds. Two deliberate differences from JSON schema, both to
agree with the API server: `oneOf` (only used for int-or-string and quantity values) accepts a
value that any branch accepts, so `null` stays "unset"; and `int32`/`int64` formats are range-checked.

An object whose apiVersion is not a Kubernetes API group (a custom resource: Argo Rollouts,
SealedSecrets, ...) has no schema here and passes through unchecked. An object in a Kubernetes
group whose kind or version this Kubernetes version does not serve is an error.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.config import Patch
from generator.hints import close_matches as _close_matches
from generator.errors import ConfigError, ValidationError
from generator.model import Resource
from generator.steps.merge import DIRECTIVE, Strategy, key_of
from generator.steps.merge_keys import StrategyBuilder
from generator.steps import quantity
from generator.steps.quantity import QUANTITY_HINT

# The Kubernetes version whose API the output is checked against. The package's version is
# pinned in pyproject.toml, so the schemas cannot change under a render.
KUBERNETES_VERSION = "1.35"
SCHEMA_PACKAGE = "kubernetes_validate"

FieldPath = tuple[str | int, ...]
_REF_PREFIX = "#/$defs/"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_DEFS_URL_PREFIX = "/api/_definitions.json#/$defs/"
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_TYPE_NAMES = {
    "string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
    "object": "a mapping", "array": "a list", "null": "null",
}


@dataclass(frozen=True)
class Problem:
    """Why a value does not fit its schema; `path` leads from the object's root to the value."""

    path: FieldPath
    message: str
    hint: str | None = None

    def under(self, step: str | int) -> Problem:
        return Problem((step, *self.path), self.message, self.hint)


Check = Callable[[Any], "Problem | None"]


def _accept(value: Any) -> Problem | None:
    return None


def describe(value: Any) -> str:
    """A value's type, as a reader of YAML would call it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"


def _short(definition: str) -> str:
    return definition.rsplit(".", 1)[-1]


class _Compiler:
    """Turns schema nodes into checks; each definition is compiled at most once."""

    def __init__(self, definitions: Mapping[str, Any], reload: Callable[[], Mapping[str, Any]] | None = None) -> None:
        self._definitions: Mapping[str, Any] | None = definitions
        self._reload = reload
        self.compiled: dict[str, Check] = {}

    @property
    def definitions(self) -> Mapping[str, Any]:
        if self._definitions is None:
            assert self._reload is not None
            self._definitions = self._reload()
        return self._definitions

    def forget(self) -> None:
        """Free the raw definitions (about 3 MB) once the kinds at hand are compiled; compiled
        checks stay, and a kind not seen yet reads the definitions again."""
        if self._reload is not None:
            self._definitions = None

    def ref(self, name: str) -> Check:
        check = self.compiled.get(name)
        if check is None and name == QUANTITY:
            check = self.compiled[name] = _quantity
        if check is None:
            # Definitions can be recursive (JSONSchemaProps): point at a cell filled in below.
            cell: list[Check] = []
            self.compiled[name] = lambda value: cell[0](value)
            check = self.node(self.definitions[name], _short(name))
            cell.append(check)
            self.compiled[name] = check
        return check

    def node(self, schema: Mapping[str, Any], owner: str) -> Check:
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return self.ref(ref.removeprefix(_DEFS_URL_PREFIX).removeprefix(_REF_PREFIX))
        if "oneOf" in schema:
            return self._any_of([self.node(s, owner) for s in schema["oneOf"]], schema["oneOf"])
        types = schema.get("type")
        if types is None:
            return _accept
        types = (types,) if isinstance(types, str) else tuple(types)
        checks: list[Check] = []
        if "enum" in schema:
            checks.append(_enum(schema["enum"]))
        fmt = schema.get("format")
        if fmt in _INT_RANGES:
            checks.append(_int_range(fmt, *_INT_RANGES[fmt]))
        if "object" in types and ("properties" in schema or "additionalProperties" in schema or "required" in schema):
            checks.append(self._object(schema, owner))
        if "array" in types and "items" in schema:
            checks.append(_items(self.node(schema["items"], owner)))
        return _typed(types, checks)

    def _object(self, schema: Mapping[str, Any], owner: str) -> Check:
        props = {name: self.node(sub, owner) for name, sub in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties")
        additional: Check | None = (
            _accept if extra is None or extra is True else None if extra is False else self.node(extra, owner)
        )
        required = tuple(schema.get("required", ()))
        fields = sorted(props)

        def check(value: Any) -> Problem | None:
            if not isinstance(value, dict):
                return None
            for key in required:
                if key not in value:
                    return Problem((key,), f"required field missing ({owner} needs `{key}`)")
            for key, item in value.items():
                sub = props.get(key) if isinstance(key, str) else None
                if sub is None:
                    if additional is None:
                        return _unknown(key, owner, fields)
                    sub = additional
                problem = sub(item)
                if problem is not None:
                    return problem.under(key)
            return None

        return check

    def _any_of(self, branches: list[Check], schemas: list[Any]) -> Check:
        names = " or ".join(
            dict.fromkeys(_TYPE_NAMES[t] for s in schemas for t in _type_list(s) if t != "null")
        )

        def check(value: Any) -> Problem | None:
            if any(branch(value) is None for branch in branches):
                return None
            return Problem((), f"expected {names}, got {describe(value)}")

        return check


def _quantity(value: Any) -> Problem | None:
    """A resource.Quantity: the schema says only "string or number"; the API server parses the
    string with ParseQuantity (k8s.io/apimachinery pkg/api/resource), see generator/steps/quantity.py."""
    if isinstance(value, str) and quantity.parse(value) is None:
        return Problem((), f"{value!r} is not a Kubernetes quantity (resource.ParseQuantity refuses it)", QUANTITY_HINT)
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) or value is None:
        return None
    return Problem((), f"expected a quantity (a string or a number), got {describe(value)}")


def _type_list(schema: Mapping[str, Any]) -> tuple[str, ...]:
    types = schema.get("type", ())
    return (types,) if isinstance(types, str) else tuple(types)


def _unknown(key: Any, owner: str, fields: list[str]) -> Problem:
    guess = _close_matches(str(key), fields, n=1)
    hint = f"did you mean {guess[0]!r}? " if guess else ""
    hint += f"fields of {owner}: {', '.join(fields) or '(none)'}"
    return Problem((str(key),), f"unknown field {str(key)!r} ({owner} has no such field)", hint)


def _typed(types: tuple[str, ...], checks: list[Check]) -> Check:
    """Check the JSON type first (booleans are not integers; integral floats are), then the rest."""
    pytypes: list[type] = []
    for t, py in (("string", str), ("object", dict), ("array", list), ("boolean", bool),
                  ("integer", int), ("number", int), ("number", float), ("null", type(None))):
        if t in types:
            pytypes.append(py)
    allowed = tuple(pytypes)
    bool_ok = "boolean" in types
    integral_float_ok = "integer" in types and "number" not in types
    wanted = " or ".join(_TYPE_NAMES[t] for t in types if t != "null")

    def check(value: Any) -> Problem | None:
        if not isinstance(value, allowed) or (value is True or value is False) and not bool_ok:
            if not (integral_float_ok and isinstance(value, float) and value.is_integer()):
                return Problem((), f"expected {wanted}, got {describe(value)}", _type_hint(value, types))
        for sub in checks:
            problem = sub(value)
            if problem is not None:
                return problem
        return None

    return check


def _type_hint(value: Any, types: tuple[str, ...]) -> str | None:
    if isinstance(value, str) and ("integer" in types or "number" in types or "boolean" in types):
        return "remove the quotes around the value"
    if "string" in types and isinstance(value, (bool, int, float)):
        return "quote the value, e.g. \"true\" or \"8080\" (YAML reads it as a number or boolean otherwise)"
    return None


def _enum(values: list[Any]) -> Check:
    allowed = tuple(values)

    def check(value: Any) -> Problem | None:
        if value is None or any(value == v and type(value) is type(v) for v in allowed):
            return None
        return Problem((), f"{value!r} is not one of: {', '.join(map(str, allowed))}")

    return check


def _int_range(fmt: str, low: int, high: int) -> Check:
    def check(value: Any) -> Problem | None:
        if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
            return Problem((), f"{value} is out of range for {fmt}")
        return None

    return check


def _items(item: Check) -> Check:
    def check(value: Any) -> Problem | None:
        if isinstance(value, list):
            for i, element in enumerate(value):
                problem = item(element)
                if problem is not None:
                    return problem.under(i)
        return None

    return check


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class Schemas:
    """The API of one Kubernetes version: which apiVersion/kind pairs exist, and their checks."""

    def __init__(
        self, definitions: Mapping[str, Any], version: str, reload: Callable[[], Mapping[str, Any]] | None = None
    ) -> None:
        self.version = version
        self.compiler = _Compiler(definitions, reload)
        self.kinds: dict[tuple[str, str], str] = {}
        for name, schema in definitions.items():
            for gvk in schema.get("x-kubernetes-group-version-kind", ()):
                api = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
                self.kinds.setdefault((api, gvk["kind"]), name)
        self.groups = frozenset(_group(api) for api, _ in self.kinds)
        self._strategies: dict[str, Strategy] = {}

    def strategy(self, api_version: str, kind: str) -> Strategy | None:
        """How patches of this kind merge (see merge_keys.py); None for a kind without a schema
        (custom resources), which merges by the schema-less rules."""
        name = self.kinds.get((api_version, kind))
        if name is None:
            return None
        found = self._strategies.get(name)
        return found if found is not None else StrategyBuilder(self.compiler.definitions, self._strategies).definition(name)

    @classmethod
    def load(cls, version: str) -> Schemas:
        spec = importlib.util.find_spec(SCHEMA_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                "the Kubernetes schemas are missing: the `kubernetes-validate` package is not installed",
                hint="install gitops-gen with its dependencies: pip install -e .",
            )
        folder = Path(spec.submodule_search_locations[0]) / "kubernetes-json-schema" / f"v{version}.0-local-strict"
        def read() -> Mapping[str, Any]:
            with open(folder / "_definitions.json", encoding="utf-8") as handle:
                definitions: Mapping[str, Any] = json.load(handle)["$defs"]
                return definitions

        try:
            return cls(read(), version, read)
        except FileNotFoundError:
            raise ConfigError(
                f"the installed `kubernetes-validate` has no schemas for Kubernetes {version}",
                file=folder,
                hint="install the version pinned in pyproject.toml: pip install -e .",
            ) from None

    def check(self, obj: Mapping[str, Any]) -> Problem | None:
        """The first problem of one object, or None; custom resources are not checked."""
        api, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        name = self.kinds.get((api, kind))
        if name is not None:
            return self.compiler.ref(name)(obj)
        if _group(api) not in self.groups:
            return None
        served = sorted(a for a, k in self.kinds if k == kind)
        if served:
            return Problem(("apiVersion",), f"Kubernetes {self.version} does not serve {kind} as {api!r}",
                           f"use apiVersion {' or '.join(served)}")
        in_group = sorted({k for a, k in self.kinds if a == api})
        guess = _close_matches(kind, in_group, n=1)
        return Problem(("kind",), f"Kubernetes {self.version} has no kind {kind!r} in apiVersion {api!r}",
                       f"did you mean {guess[0]!r}?" if guess else f"kinds of {api}: {', '.join(in_group)}")


@functools.cache
def schemas(version: str = KUBERNETES_VERSION) -> Schemas:
    """Loaded once per process (about 10 ms); compiled checks accumulate on it."""
    return Schemas.load(version)


# The kinds nearly every repo has: compiled before a render loads anything (see `precompile`).
COMMON_KINDS = (
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "ServiceAccount"),
    ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"), ("batch/v1", "CronJob"), ("networking.k8s.io/v1", "Ingress"),
)


def precompile(kinds: Sequence[tuple[str, str]] = COMMON_KINDS) -> None:
    """Compile the checks and merge strategies of `kinds` now and free the raw definitions again.

    Called while the process is still small: reading the definitions (about 3 MB of objects
    for a moment) then costs nothing at the peak, which comes later, when every object of an
    environment is in memory and the schema step runs."""
    api = schemas()
    for pair in kinds:
        name = api.kinds.get(pair)
        if name is not None:
            api.compiler.ref(name)
            api.strategy(*pair)
    api.compiler.forget()


def _dotted(path: FieldPath) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


def _follow(written: Any, step: str | int, merged: Any, strategy: Strategy | None) -> str | int | None:
    """The step in a patch that wrote `merged[step]`, or None. Items of merged lists are matched
    by the list's merge keys (by `name` without a schema, as merge.py does); other lists are
    replaced whole, so the n-th item is the patch's n-th item after any `$patch` items."""
    if isinstance(step, str):
        return step if isinstance(written, dict) and step in written and isinstance(merged, dict) and step in merged else None
    if not isinstance(written, list) or not isinstance(merged, list) or step >= len(merged):
        return None
    keys = strategy.keys if strategy is not None else ("name",)
    item = merged[step]
    if keys and isinstance(item, dict) and keys[0] in item:
        want = key_of(item, keys)
        return next((i for i, w in enumerate(written) if key_of(w, keys) == want), None)
    values = [i for i, w in enumerate(written) if not (isinstance(w, dict) and DIRECTIVE in w)]
    return values[step] if step < len(values) else None


def _patch_path(patch: Patch, resource: Resource, path: FieldPath) -> FieldPath | None:
    """Where `path` of the patched object is written in `patch`, when that patch wrote it."""
    meta = patch.obj.get("metadata")
    if patch.obj.get("kind") != resource.kind or not isinstance(meta, dict) or meta.get("name") != resource.name:
        return None
    written: Any = patch.obj
    merged: Any = resource.obj
    strategy = schemas().strategy(str(resource.obj.get("apiVersion", "")), resource.kind)
    found: list[str | int] = []
    for step in path:
        in_patch = _follow(written, step, merged, strategy)
        if in_patch is None:
            return None
        found.append(in_patch)
        written, merged = written[in_patch], merged[step]
        if strategy is not None:
            strategy = strategy.child(step) if isinstance(step, str) else strategy.items
    return tuple(found)


def origin_of(resource: Resource, path: FieldPath, patches: Sequence[Patch]) -> tuple[str, int | None]:
    """The file and line that wrote `path`: the last patch that sets it, else the object's source."""
    for patch in reversed(patches):
        in_patch = _patch_path(patch, resource, path) if path else None
        if in_patch is not None:
            return patch.origin.file, patch.origin.at(*in_patch).line
    return resource.origin.file, resource.origin.at(*path).line


def schema_step(resources: list[Resource], patches: Sequence[Patch] = ()) -> None:
    """Raise for the first object (in the given order) that the Kubernetes API would refuse."""
    api = schemas()
    for r in resources:
        # A SOPS-encrypted manifest keeps its key material under a top-level `sops:` that the
        # decrypting consumer (Flux's kustomize-controller) strips before the API server sees it.
        obj = {k: v for k, v in r.obj.items() if k != "sops"} if "sops" in r.obj else r.obj
        problem = api.check(obj)
        if problem is not None:
            file, line = origin_of(r, problem.path, patches)
            raise ValidationError(
                f"{r.describe()} does not fit the Kubernetes {api.version} API: "
                f"`{_dotted(problem.path)}`: {problem.message}",
                file=file,
                line=line,
                hint=problem.hint,
            )
    api.compiler.forget()
