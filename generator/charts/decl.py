"""`chart:` in app.yaml and `charts:` in env.yaml, checked into frozen values.

    chart:
      path: chart                        # a chart folder or a packaged .tgz, relative to the app folder
      # or a chart from a repository (vendored by `gitops-gen charts pull`):
      repository: https://charts.example.com     # or oci://registry.example.com/charts
      name: redis
      version: 1.2.3                     # exact: no ranges, so a render never changes by itself
      release: exchange-cache            # default: the app's name
      valuesFiles: [values/common.yaml]  # relative to the app folder; `.j2` files rendered first
      values: {replicaCount: 2}          # string values may be Jinja2 templates
      hooks: argocd                      # or `drop` (see generator/charts/hooks.py)
      unhashedConfigMaps: [controller]   # rendered ConfigMaps that keep their name (read by name)

    charts:                              # in env.yaml, by app name
      cache:
        valuesFiles: [cache-values.yaml] # relative to the environment folder
        values: {replicaCount: 3}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.schema import Doc, Path_, expect, mapping, str_list

CHART_KEYS = ("path", "repository", "name", "version", "release", "values", "valuesFiles", "hooks",
              "unhashedConfigMaps")
ENV_KEYS = ("values", "valuesFiles")
HOOK_POLICIES = ("argocd", "drop")
# A Helm release name: DNS-1123 label, at most 53 characters (Helm's own limit).
_RELEASE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class ValuesFile:
    path: Path
    shown: str


@dataclass(frozen=True)
class Values:
    """One layer of values: files (in order) then inline values, from one declaring file."""

    doc: Doc
    path: Path_  # where `values` sits in doc
    inline: dict[str, Any] = field(default_factory=dict)
    files: tuple[ValuesFile, ...] = ()


@dataclass(frozen=True)
class ChartDecl:
    app: str
    doc: Doc  # the app.yaml that declares it
    release: str
    values: Values
    hooks: str = "argocd"
    unhashed: tuple[str, ...] = ()  # ConfigMaps the chart's software reads by name: not renamed
    path: Path | None = None  # a chart folder or .tgz in the repo
    shown: str = ""  # `path` relative to the repo
    repository: str | None = None
    name: str | None = None
    version: str | None = None

    @property
    def remote(self) -> bool:
        return self.repository is not None

    def describe(self) -> str:
        if self.remote:
            return f"chart {self.name} {self.version} from {self.repository}"
        return f"chart {self.shown}"


def _values_files(root: Path, folder: Path, doc: Doc, path: Path_, value: Any) -> tuple[ValuesFile, ...]:
    from generator.config import resolve_source  # the same confinement as ConfigMap data files

    entries = expect(doc, path, value, list)
    return tuple(
        ValuesFile(s.path, s.shown)
        for s in (resolve_source(root, folder, doc, path + (i,), "values", e) for i, e in enumerate(entries))
    )


def _check_repository(doc: Doc, path: Path_, url: str) -> None:
    from urllib.parse import urlsplit  # here: a repo without remote charts never imports it

    parts = urlsplit(url)
    ok = parts.scheme in ("https", "oci") or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if not ok or not parts.netloc:
        raise doc.error(path, f"{url!r} is not a chart repository address",
                        hint="write an https:// chart repository (the folder holding index.yaml) or an "
                        "oci:// registry path; plain http:// only to this machine (127.0.0.1)")


def parse_chart(root: Path, app_dir: Path, app: str, doc: Doc, value: Any) -> ChartDecl:
    p: Path_ = ("chart",)
    m = mapping(doc, p, value, CHART_KEYS)
    release = expect(doc, p + ("release",), m.get("release", app), str)
    if len(release) > 53 or not _RELEASE.fullmatch(release):
        raise doc.error(p + ("release",), f"release name {release!r} is not valid",
                        hint="lower-case letters, digits and '-', at most 53 characters (Helm's rule)")
    hooks = expect(doc, p + ("hooks",), m.get("hooks", "argocd"), str)
    if hooks not in HOOK_POLICIES:
        raise doc.error(p + ("hooks",), f"unknown hook policy {hooks!r}; one of: {', '.join(HOOK_POLICIES)}")
    values = Values(
        doc, p + ("values",),
        dict(expect(doc, p + ("values",), m.get("values", {}), dict)),
        _values_files(root, app_dir, doc, p + ("valuesFiles",), m.get("valuesFiles", [])),
    )
    unhashed = tuple(str_list(doc, p + ("unhashedConfigMaps",), m.get("unhashedConfigMaps", [])))
    common = {"app": app, "doc": doc, "release": release, "values": values, "hooks": hooks, "unhashed": unhashed}
    if "path" in m:
        for key in ("repository", "name", "version"):
            if key in m:
                raise doc.error(p + (key,), f"`{key}` belongs to a chart from a repository, not to `path`",
                                hint="use either `path` (a chart in this repo) or `repository`, `name` and `version`")
        from generator.config import resolve_source

        source = resolve_source(root, app_dir, doc, p + ("path",), "chart", m["path"])
        return ChartDecl(path=source.path, shown=source.shown, **common)
    for key in ("repository", "name", "version"):
        if key not in m:
            raise doc.error(p, f"missing `{key}`",
                            hint="a chart is either `path: <folder or .tgz>` or `repository`, `name` and `version`")
    repository = expect(doc, p + ("repository",), m["repository"], str).rstrip("/")
    _check_repository(doc, p + ("repository",), repository)
    name = expect(doc, p + ("name",), m["name"], str)
    if not re.fullmatch(r"[A-Za-z0-9][-A-Za-z0-9_.]*", name):
        raise doc.error(p + ("name",), f"chart name {name!r} is not valid")
    version = m["version"]
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise doc.error(p + ("version",), f"version {version!r} is not an exact version",
                        hint='write the exact version, quoted: version: "1.2.3" (no ranges: renders must not change by themselves)')
    return ChartDecl(repository=repository, name=name, version=version, **common)


def parse_env_values(root: Path, env_dir: Path, doc: Doc, value: Any) -> dict[str, Values]:
    out: dict[str, Values] = {}
    for app, item in expect(doc, ("charts",), value, dict).items():
        p: Path_ = ("charts", app)
        m = mapping(doc, p, item if item is not None else {}, ENV_KEYS)
        out[str(app)] = Values(
            doc, p + ("values",),
            dict(expect(doc, p + ("values",), m.get("values", {}), dict)),
            _values_files(root, env_dir, doc, p + ("valuesFiles",), m.get("valuesFiles", [])),
        )
    return out
