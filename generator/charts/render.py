"""Rendering an app's Helm chart into Resources (a part of the load step).

For each app with a `chart:` the step layers the values, runs the real `helm template` (all of
an environment's charts at once, in threads: Helm runs as separate processes), refuses output
that is not byte-stable, and turns every document into a Resource, so chart objects go through
the same pipeline as written manifests: ConfigMaps become declarations (hashed, immutable,
retained, overlays apply), env.yaml patches, references, validation and the secret rules apply.

Helm output is memoized by a digest of everything that decides it (the helm binary, the chart's
digest, release, namespace, Kubernetes version and merged values), one file per digest next to
the parse memo. Each file is authenticated like the parse memo's (generator/io/memo.py:
`store_entry`/`load_entry`, a MAC (keyed BLAKE2b) under the key kept outside the cache, with the digest inside
it), so a planted, corrupt, truncated or copied entry is a miss: a shared CI cache cannot inject
objects into out/.

Every chart file is read through the containment checks of generator/charts/source.py before
Helm runs (Helm itself follows symlinks in a chart folder).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator import __version__
from generator.charts import determinism, hooks, lock, source
from generator.charts import values as chart_values
from generator.charts.decl import ChartDecl, Values
from generator.charts.helm import Helm, find_helm
from generator.errors import ChartError, GeneratorError, SecretError
from generator.io.memo import cache_root, load_entry, store_entry
from generator.io.parallel import cores
from generator.io.yaml_io import load_documents, locate
from generator.model import ConfigMapDecl, Origin, Resource
from generator.steps.k8s_schema import KUBERNETES_VERSION
from generator.steps.templating import Templates

KUBE_VERSION = f"v{KUBERNETES_VERSION}.0"  # Capabilities.KubeVersion: the version we validate against
DEFAULT_NAMESPACE = "default"  # what Helm uses when the environment sets none
MEMO_FORMAT = 2
_SOURCE = re.compile(r"^# Source: (.+)$", re.M)
_SCHEMA_LINE = re.compile(r"^- at '([^']*)': (.*)$")
_SECRET_WAYS = (
    "list it under `external.secrets` (managed outside the repo), declare it under `externalSecrets:` in "
    "app.yaml, or commit it encrypted (SealedSecret or SOPS)"
)


@dataclass
class Job:
    app: str
    decl: ChartDecl
    source: source.Chart  # the folder or archive Helm renders, read and checked
    namespace: str
    layers: list[chart_values.Layer]
    values_text: str

    @property
    def chart(self) -> Path:
        return self.source.path

    @property
    def digest(self) -> str:
        return self.source.digest

    @property
    def shown(self) -> str:
        return lock.vendored_file(self.decl.name or "", self.decl.version or "") if self.decl.remote else self.decl.shown

    def memo_key(self, helm: Helm) -> str:
        parts = [str(MEMO_FORMAT), helm.identity, self.digest, self.decl.release, self.namespace, KUBE_VERSION,
                 self.values_text]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def where(self, template: str) -> str:
        """A template named by Helm (`chart/templates/x.yaml`) as a path the user can open."""
        inside = template.split("/", 1)[1] if "/" in template else template
        return f"{self.shown}/{inside}" if self.source.archive is None else f"{self.shown}/{template}"

    def decl_line(self, *path: str | int) -> int | None:
        return locate(self.decl.doc.text, 0, ("chart", *path))


class ChartStep:
    """Collects the charts of one environment's apps, renders them concurrently, returns Resources."""

    def __init__(self, root: Path, templates: Templates, namespace: str | None,
                 env_values: Mapping[str, Values], cache: bool = True) -> None:
        self.root = root
        self.templates = templates
        self.namespace = namespace or DEFAULT_NAMESPACE
        self.env_values = env_values
        self.cache = cache
        self._lock: dict[lock.Key, lock.Entry] | None = None
        self._jobs: list[tuple[Job, Mapping[str, Any], Future[str]]] = []
        self._pool: ThreadPoolExecutor | None = None
        self._helm: Helm | None = None

    def add(self, app: str, decl: ChartDecl, ctx: Mapping[str, Any]) -> None:
        if decl.remote:
            if self._lock is None:
                self._lock = lock.read_lock(self.root)
            chart = lock.verified_archive(self.root, decl, self._lock)
        else:
            assert decl.path is not None
            chart = source.load(self.root, decl.path, decl.shown)
        layers = chart_values.layers(self.root, decl.values, self.templates, ctx)
        env_layer = self.env_values.get(app)
        if env_layer is not None:
            layers += chart_values.layers(self.root, env_layer, self.templates, ctx)
        text = json.dumps(chart_values.merged(layers), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        job = Job(app, decl, chart, self.namespace, layers, text)
        if self._helm is None:
            self._helm = find_helm()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=cores())
        self._jobs.append((job, ctx, self._pool.submit(_render, self._helm, job, self._memo_dir())))

    def _memo_dir(self) -> Path | None:
        top = cache_root() if self.cache else None
        return None if top is None else top / "helm"

    def collect(self) -> list[tuple[list[Resource], list[ConfigMapDecl], Mapping[str, Any]]]:
        """Per chart: its objects, its ConfigMaps (as declarations) and the app's template context."""
        out = []
        try:
            for job, ctx, future in self._jobs:  # in submission order: the first app's error wins
                out.append((*to_resources(job, future.result()), ctx))
        finally:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
        return out


_STAMP = ("helm", MEMO_FORMAT, __version__)


def _render(helm: Helm, job: Job, memo_dir: Path | None) -> str:
    key = job.memo_key(helm)
    memo_file = None if memo_dir is None else memo_dir / key[:2] / key
    if memo_file is not None:
        found = _load(memo_file, key)
        if found is not None:
            return found
    job.source.check()  # every member of a packaged chart checked before Helm opens it
    first = _helm_template(helm, job)
    hits = determinism.scan(job.source.templates())
    if hits:
        determinism.refuse_lookup(hits, job.decl.describe(), job.where, job.decl.doc.shown, job.decl_line())
        differ = determinism.differing_sources(first, _helm_template(helm, job))
        if differ:
            raise _unstable(job, differ, hits)
    if memo_file is not None:
        store_entry(memo_file, _STAMP, key.encode(), first.encode("utf-8", "surrogatepass"))
    return first


def _load(memo_file: Path, key: str) -> str | None:
    """Helm's output for `key` from its memo file, or None (a miss) unless the file verifies."""
    blob = load_entry(memo_file, _STAMP, key.encode())
    if blob is None:
        return None
    try:
        return blob.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:  # not written by us, whatever the MAC says: a miss
        return None


def _unstable(job: Job, differ: list[str], hits: list[determinism.Hit]) -> ChartError:
    """Name the templates whose output differs, with the calls in them (or, when the call is
    in a helper they include, every call the scan found)."""
    inside = {t.split("/", 1)[-1] for t in differ}
    own = [h for h in hits if h.template.split("/", 1)[-1] in inside] or hits
    calls = "; ".join(f"{job.where(h.template)}:{h.line} calls `{h.function}`" for h in own[:5])
    return ChartError(
        f"{job.decl.describe()} renders differently each time ({', '.join(job.where(t) for t in differ)}): {calls}",
        file=job.decl.doc.shown, line=job.decl_line(),
        hint="committed output must be byte-stable: set the values that make the chart stop generating "
        "(passwords, certificates: supply them as Secrets), or use another chart",
    )


def _helm_template(helm: Helm, job: Job) -> str:
    proc = helm.run(
        ["template", job.decl.release, str(job.chart), "--namespace", job.namespace, "--kube-version", KUBE_VERSION,
         "--include-crds", "--skip-tests", "--values", "-"],
        stdin=job.values_text,
    )
    if proc.returncode != 0:
        raise _template_error(job, proc.stderr)
    return proc.stdout


def _template_error(job: Job, stderr: str) -> GeneratorError:
    text = stderr.strip().removeprefix("Error: ")
    if "don't meet the specifications of the schema" in text:
        return _schema_error(job, text)
    return ChartError(f"`helm template` failed for {job.decl.describe()}: {text}",
                      file=job.decl.doc.shown, line=job.decl_line(),
                      hint="the message is Helm's; check the chart's values")


def _schema_error(job: Job, text: str) -> GeneratorError:
    """Helm's values.schema.json message, pointed at the values file and line that set the value."""
    chart = None
    top = job.source.name()
    for raw in text.splitlines()[1:]:  # the first line is Helm's preamble
        line = raw.strip()
        if line.endswith(":") and not line.startswith("-"):
            chart = line[:-1]
            continue
        m = _SCHEMA_LINE.match(line)
        if m is None:
            continue
        pointer, problem = m.groups()
        path: tuple[str | int, ...] = tuple(_pointer_part(p) for p in pointer.split("/")[1:] if p != "")
        if chart is not None and chart != top:
            path = (chart, *path)  # a subchart's values sit under its name
        shown = ".".join(str(p) for p in path) or "(top)"
        found = chart_values.where(job.layers, path)
        file, line_no = found if found is not None else (job.decl.doc.shown, job.decl_line())
        origin = "" if found is not None else " (a default of the chart: no values of ours set it)"
        return ChartError(
            f"value `{shown}` does not fit the values schema of {job.decl.describe()}: {problem}{origin}",
            file=file, line=line_no, hint="see the chart's values.schema.json for what the value may be",
        )
    return ChartError(f"values do not fit the schema of {job.decl.describe()}: {text}",
                      file=job.decl.doc.shown, line=job.decl_line())


def _pointer_part(part: str) -> str | int:
    part = part.replace("~1", "/").replace("~0", "~")
    return int(part) if part.isdigit() else part


def _chunks(stdout: str) -> list[tuple[str, str]]:
    """(template, document text) for every non-empty document of Helm's output."""
    out: list[tuple[str, str]] = []
    for chunk in re.split(r"^---[ \t]*$", stdout, flags=re.M):
        m = _SOURCE.search(chunk)
        if m is None and not chunk.strip():
            continue
        out.append((m.group(1).strip() if m else "", chunk))
    return out


def to_resources(job: Job, stdout: str) -> tuple[list[Resource], list[ConfigMapDecl]]:
    from generator.steps.load import check_manifest, configmap_from_manifest

    resources: list[Resource] = []
    configmaps: list[ConfigMapDecl] = []
    for template, text in _chunks(stdout):
        where = job.where(template) if template else job.shown
        # read as kubectl would read helm's output (`1:30` is text), without the input rules
        for index, (obj, _line) in enumerate(load_documents(text, where, go_text=True)):
            origin = Origin(where, None, index)
            check_manifest(obj, origin)
            if hooks.is_hook(obj):
                if job.decl.hooks == "drop":
                    continue
                hooks.to_argocd(obj, where)
            _drop_checksums(obj)
            if obj["kind"] == "Secret" and (obj.get("data") or obj.get("stringData")):
                raise _plaintext_secret(job, obj, where)
            if obj["kind"] == "ConfigMap" and obj.get("apiVersion") == "v1":
                decl = configmap_from_manifest(obj, job.app, Origin(where, None, index, text), text)
                decl.hashed = decl.hashed and decl.name not in job.decl.unhashed
                configmaps.append(decl)
            else:
                resources.append(Resource(obj, origin, job.app))
    _check_unhashed(job, {c.name for c in configmaps})
    return resources, configmaps


def _check_unhashed(job: Job, rendered: set[str]) -> None:
    for i, name in enumerate(job.decl.unhashed):
        if name not in rendered:
            raise ChartError(
                f"`unhashedConfigMaps` names {name!r}, which {job.decl.describe()} does not render",
                file=job.decl.doc.shown, line=job.decl_line("unhashedConfigMaps", i),
                hint=f"ConfigMaps it renders: {', '.join(sorted(rendered)) or '(none)'}",
            )


_TEMPLATE_PATHS = (("spec", "template"), ("spec", "jobTemplate", "spec", "template"), ("template",))


def _drop_checksums(obj: dict[str, Any]) -> None:
    """A chart's `checksum/*` pod annotations: our hashed ConfigMap names already roll the pods
    when their content changes, and a checksum over a whole rendered object also rolls them on
    every chart version bump (labels change); so they go."""
    for path in _TEMPLATE_PATHS:
        node: Any = obj
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        meta = node.get("metadata") if isinstance(node, dict) else None
        annotations = meta.get("annotations") if isinstance(meta, dict) else None
        if isinstance(meta, dict) and isinstance(annotations, dict):
            for key in [k for k in annotations if str(k).startswith("checksum/")]:
                del annotations[key]
            if not annotations:
                del meta["annotations"]


_EXISTING = re.compile(r"exist\w*secret", re.I)


def _plaintext_secret(job: Job, obj: dict[str, Any], where: str) -> SecretError:
    names = _existing_secret_values(job)
    value = f"the chart's existing-secret value ({', '.join(names)})" if names else (
        "the chart's existing-secret value (charts usually call it `existingSecret`)")
    return SecretError(
        f"{job.decl.describe()} renders a plaintext Secret {obj['metadata']['name']!r}: it would be committed to git",
        file=where,
        hint=f"set {value} in the app's chart values to a Secret the chart does not create, and provide that "
        f"Secret one of our three ways: {_SECRET_WAYS}",
    )


def _existing_secret_values(job: Job) -> list[str]:
    try:
        docs = load_documents(job.source.default_values(), "values.yaml")
    except GeneratorError:
        return []
    found: list[str] = []

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                path = f"{prefix}.{k}" if prefix else str(k)
                if _EXISTING.search(str(k)):
                    found.append(f"`{path}`")
                walk(v, path)

    walk(docs[0][0] if docs else None, "")
    return found[:4]
