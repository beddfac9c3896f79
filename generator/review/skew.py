"""`skew`: what differs between environments, app by app: container images, Helm chart versions
and ConfigMap keys.

Every environment is rendered in memory (nothing is written). ConfigMaps are compared by
lineage (their declared name, never the hashed one), key by key. A value that an environment
sets itself (an `images:` entry of its env.yaml; an overlay literal or file of its ConfigMap)
is marked as declared there, with the file: such values differ on purpose.

A chart version is read from the `helm.sh/chart` label (`<chart>-<version>`) that charts
following Helm's conventions put on their objects, as `diff` reads it; it is changed with
`charts update`, not promoted.

Image differences are promotable (`promote --images` copies them); ConfigMap keys differ only
through an environment's own sources (overlays, template variables, the namespace), so they
are promoted only when named (`promote --config KEY`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.config import load_env_config, rel
from generator.model import Resource
from generator.pipeline import RenderedEnv, Repo, render_env
from generator.review.diff import HELM_CHART_LABEL

SCHEMA = "gitops-gen.skew/v1"
MAX_SHOWN = 100  # longer values are shown by their start, length and digest


@dataclass(frozen=True)
class Cell:
    """One environment's value of one item; `declared`: the env's own file that sets it."""

    value: str | None  # None: the item does not exist there
    declared: str | None = None


@dataclass
class Row:
    app: str
    kind: str  # "image", "chart" or "config"
    obj: str  # "Deployment/exchange-engine", "Helm chart" or "ConfigMap/exchange-engine-config"
    item: str  # container name, "version" or key
    cells: dict[str, Cell] = field(default_factory=dict)

    @property
    def differs(self) -> bool:
        return len({c.value for c in self.cells.values()}) > 1

    @property
    def promotable(self) -> bool:
        """Images that exist in every compared environment and differ."""
        return self.kind == "image" and self.differs and all(c.value is not None for c in self.cells.values())


@dataclass(frozen=True)
class Skew:
    envs: tuple[str, ...]
    rows: tuple[Row, ...]  # only rows that differ, sorted
    by_namespace: tuple[Row, ...] = ()  # rows that differ only by each environment's namespace

    @property
    def promotable(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.promotable)


def _image_rows(rendered: RenderedEnv, env_prefix: str, rows: dict[tuple[str, ...], Row]) -> None:
    for use in rendered.images:
        key = ("image", use.app, f"{use.kind}/{use.name}", use.container)
        row = rows.setdefault(key, Row(use.app, "image", f"{use.kind}/{use.name}", use.container))
        declared = str(use.entry.origin) if use.entry is not None and use.entry.origin.file.startswith(env_prefix) else None
        row.cells[rendered.name] = Cell(use.final, declared)


def _chart_rows(rendered: RenderedEnv, rows: dict[tuple[str, ...], Row]) -> None:
    charts: dict[str, set[str]] = {}
    for r in rendered.resources:
        labels = r.metadata.get("labels")
        if isinstance(labels, dict) and isinstance(labels.get(HELM_CHART_LABEL), str):
            charts.setdefault(r.app, set()).add(labels[HELM_CHART_LABEL])
    for app, versions in charts.items():  # a chart and its subcharts: every label, sorted
        row = rows.setdefault(("chart", app), Row(app, "chart", "Helm chart", "version"))
        row.cells[rendered.name] = Cell(", ".join(sorted(versions)))


def _config_value(cm: Resource, key: str) -> str:
    data = cm.obj.get("data")
    if isinstance(data, dict) and key in data:
        return str(data[key])
    binary = str(cm.obj["binaryData"][key])
    return f"(binary, sha256 {hashlib.sha256(binary.encode()).hexdigest()[:12]})"


def _config_rows(rendered: RenderedEnv, env_prefix: str, rows: dict[tuple[str, ...], Row]) -> None:
    for cm in rendered.resources:
        if cm.kind != "ConfigMap":
            continue
        keys = [k for f in ("data", "binaryData") if isinstance(cm.obj.get(f), dict) for k in cm.obj[f]]
        for k in keys:
            row = rows.setdefault(("config", cm.app, cm.declared_name, k),
                                  Row(cm.app, "config", f"ConfigMap/{cm.declared_name}", k))
            origin = cm.key_origins.get(k)
            declared = str(origin) if origin is not None and origin.file.startswith(env_prefix) else None
            row.cells[rendered.name] = Cell(_config_value(cm, k), declared)


NAMESPACE = "{namespace}"


def _namespace_only(row: Row, namespaces: Mapping[str, str | None]) -> bool:
    """Whether the values are equal once each environment's namespace is written as a placeholder
    (`postgres://...exchange-prod.svc` and `...exchange-staging.svc`): that skew is by design."""
    seen = set()
    for env, cell in row.cells.items():
        ns = namespaces.get(env)
        if cell.value is None or not ns or ns not in cell.value:
            return False
        seen.add(cell.value.replace(ns, NAMESPACE))
    return len(seen) == 1


def skew_of(rendered: Mapping[str, RenderedEnv], root_prefix: Mapping[str, str], apps: Sequence[str] = (),
            namespaces: Mapping[str, str | None] | None = None) -> Skew:
    rows: dict[tuple[str, ...], Row] = {}
    for env, r in rendered.items():
        _image_rows(r, root_prefix[env], rows)
        _chart_rows(r, rows)
        _config_rows(r, root_prefix[env], rows)
    envs = tuple(rendered)
    for row in rows.values():
        for env in envs:
            row.cells.setdefault(env, Cell(None))
    chosen = [r for key, r in sorted(rows.items()) if r.differs and (not apps or r.app in apps)]
    templated = [r for r in chosen if _namespace_only(r, namespaces or {})]
    return Skew(envs, tuple(r for r in chosen if r not in templated), tuple(templated))


def skew_repo(repo: Repo, envs: Sequence[str], apps: Sequence[str] = ()) -> Skew:
    rendered = {env: render_env(repo, env) for env in sorted(envs)}
    prefixes = {env: rel(repo.root, repo.root / "environments" / env) + "/" for env in envs}
    namespaces = {env: load_env_config(repo.root, repo.root / "environments" / env).namespace for env in envs}
    return skew_of(rendered, prefixes, apps, namespaces)


# ---------------------------------------------------------------- formats


def shown(value: str | None) -> str:
    if value is None:
        return "(absent)"
    if len(value) <= MAX_SHOWN and "\n" not in value:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    if "\n" not in value:
        return f"{value[:60]}... ({len(value)} characters, sha256 {digest})"
    lines = value.count("\n") + (0 if value.endswith("\n") else 1)
    return f"{value.split(chr(10), 1)[0][:60]}... ({lines} lines, sha256 {digest})"


def _counts(skew: Skew) -> str:
    images = sum(1 for r in skew.rows if r.kind == "image")
    charts = sum(1 for r in skew.rows if r.kind == "chart")
    config = sum(1 for r in skew.rows if r.kind == "config")
    text = (f"{images} image difference{'s' if images != 1 else ''} ({len(skew.promotable)} promotable), "
            + (f"{charts} chart version difference{'s' if charts != 1 else ''}, " if charts else "")
            + f"{config} ConfigMap key difference{'s' if config != 1 else ''}")
    if skew.by_namespace:
        text += f" (and {len(skew.by_namespace)} that differ only by namespace, not listed)"
    return text


ITEM_WORDS = {"image": "container", "chart": "", "config": "key"}  # what `item` names, in reports
JSON_ITEMS = {"image": "container", "chart": "item", "config": "key"}  # its field in JSON


def text(skew: Skew) -> str:
    out = [f"gitops-gen skew: {', '.join(skew.envs)}: {_counts(skew)}"]
    width = max((len(e) for e in skew.envs), default=0)
    for kind, title in (("image", "Images"), ("chart", "Helm charts"), ("config", "ConfigMap keys")):
        rows = [r for r in skew.rows if r.kind == kind]
        if rows:
            out.append(title)
        for r in rows:
            out.append(" ".join(filter(None, (f"  {r.app}: {r.obj}", ITEM_WORDS[kind], r.item)))
                       + (" (not in every environment)" if kind == "image" and not r.promotable else ""))
            for env in skew.envs:
                cell = r.cells[env]
                mark = f"  (declared in {cell.declared})" if cell.declared else ""
                out.append(f"    {env.ljust(width)}  {shown(cell.value)}{mark}")
    if not skew.rows:
        out.append("no differences")
    return "\n".join(out) + "\n"


def _md(value: str) -> str:
    return "`" + shown(value).replace("|", "\\|").replace("`", "'") + "`"


def markdown(skew: Skew) -> str:
    out = [f"**gitops-gen skew** ({', '.join(skew.envs)}): {_counts(skew)}", ""]
    if not skew.rows:
        return "\n".join(out + ["No differences."]) + "\n"
    out.append("| App | Object | Item | " + " | ".join(skew.envs) + " |")
    out.append("|---|---|---|" + "---|" * len(skew.envs))
    for r in skew.rows:
        cells = []
        for env in skew.envs:
            c = r.cells[env]
            cells.append("—" if c.value is None else _md(c.value) + (" *(declared)*" if c.declared else ""))
        item = " ".join(filter(None, (ITEM_WORDS[r.kind], f"`{r.item}`")))
        out.append(f"| {r.app} | {r.obj} | {item} | " + " | ".join(cells) + " |")
    out += ["", "*(declared)*: the environment sets this value in its own files; it differs on purpose."]
    return "\n".join(out) + "\n"


def to_json(skew: Skew) -> str:
    doc: dict[str, Any] = {
        "schema": SCHEMA,
        "environments": list(skew.envs),
        "differences": [
            {"type": r.kind, "app": r.app, "object": r.obj, JSON_ITEMS[r.kind]: r.item,
             "promotable": r.promotable,
             "values": {env: {"value": c.value, "declared": c.declared} for env, c in r.cells.items()}}
            for r in skew.rows
        ],
        "namespaceOnly": [{"app": r.app, "object": r.obj, "key": r.item} for r in skew.by_namespace],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
