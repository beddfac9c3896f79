"""The `diff` report in three formats: text (a terminal; colour only on a TTY), markdown (a
pull-request comment: a summary table plus collapsible details) and JSON (schema
`gitops-gen.diff/v1`, documented in the README). Pure functions of a `DiffReport`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from generator.review.diff import (
    HIDDEN,
    RETENTION,
    SCHEMA,
    ChartChange,
    ConfigMapChange,
    ConfigReason,
    DiffReport,
    EnvDiff,
    ImageReason,
    KeyChange,
    ObjectChange,
    Reason,
    RefusedChange,
    Rollout,
    TemplateReason,
    Value,
)
from generator.review.fielddiff import ADDED, CHANGED, REMOVED, FieldChange
from generator.review.immutable import Refusal
from generator.steps.mutable import LIVE, NEVER, RESTART

MAX_VALUE_CHARS = 100  # a value longer than this is cut, with its length shown
MAX_BLOCK_LINES = 60  # detail lines per ConfigMap, rollout or object
MAX_MARKDOWN_CHARS = 60_000  # GitHub refuses comments over 65,536 characters
MARKER = "<!-- gitops-gen diff -->"  # lets CI find and update its previous comment
SIGN = {ADDED: "+", REMOVED: "-", CHANGED: "~"}

Style = Callable[[str, str], str]  # (text, role) -> text; roles: add, remove, change, head, dim


def plain(text: str, role: str) -> str:
    return text


# ---------------------------------------------------------------- words shared by text and markdown


def _plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


REMOVED_ENV = "ENVIRONMENT REMOVED"


def removed_note(env: str) -> str:
    return (f"environments/{env}/env.yaml is gone, so every object of out/{env}/ leaves the cluster when the "
            f"GitOps engine prunes; `render` deletes out/{env}/ only with --prune-env {env}")


def summary(env: EnvDiff) -> str:
    if not env.changed:
        return "no changes"
    parts: list[str] = [f"{_plural(len(env.charts), 'chart')} updated"] if env.charts else []
    for status in (CHANGED, ADDED, REMOVED):
        n = sum(1 for c in env.configmaps if c.status == status)
        if n:
            parts.append(f"{_plural(n, 'ConfigMap')} {status}")
    kept = sum(1 for c in env.configmaps if c.status == RETENTION)
    if kept:
        parts.append(f"{_plural(kept, 'ConfigMap')} with retention changes")
    if env.rollouts:
        parts.append(f"{len(env.rollouts)} {'workload rolls' if len(env.rollouts) == 1 else 'workloads roll'}")
    for status in (CHANGED, ADDED, REMOVED):
        n = sum(1 for o in env.objects if o.status == status)
        if n:
            parts.append(f"{_plural(n, 'other object')} {status}")
    if env.refused:
        parts.append(f"{_plural(len(env.refused), 'change')} the API server will refuse")
    kept = sum(1 for o in env.objects if o.status == RETENTION)
    if kept:
        parts.append(f"{_plural(kept, 'other object')} with retention changes")
    return ", ".join(parts)


def show(value: Any) -> str:
    """A field value on one line: JSON spelling, cut when long."""
    if value == HIDDEN:
        return HIDDEN
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "), default=str)
    if len(text) > MAX_VALUE_CHARS:
        return f"{text[:MAX_VALUE_CHARS]}... ({len(text):,} chars)"
    return text


def show_value(value: Value) -> str:
    if value.binary:
        return f"binary, {value.size:,} bytes, sha256 {value.sha256[:16]}"
    assert value.text is not None
    if value.multiline:
        return f"{value.text.count(chr(10)) + (not value.text.endswith(chr(10))):,} lines, {value.size:,} bytes"
    return show(value.text)


def hash_change(c: ConfigMapChange) -> str:
    old, new = c.suffix(c.old_name), c.suffix(c.new_name)
    if c.status == ADDED:
        return f"added as {c.new_name}"
    if c.status == REMOVED:
        return f"removed (was {c.old_name})"
    if c.status == RETENTION:
        return "content unchanged" if c.new_name else "no current version"
    if old == new:
        return "not hashed, same name" if not c.hashed else f"{new} (content unchanged)"
    return f"{old} -> {new}"


def reason_text(r: Reason) -> str:
    if isinstance(r, ConfigReason):
        return f"{r.name} changed" if r.kind == "ConfigMap" else f"{r.kind} {r.name} changed"
    if isinstance(r, ImageReason):
        tags = r.tags
        why = f"{r.container}; images: {r.entry}" if r.entry else r.container
        if tags is not None:
            return f"image tag {tags[0]} -> {tags[1]} ({why})"
        return f"image {r.old} -> {r.new} ({why})"
    paths = [f.path for f in r.fields]
    more = f" (+{len(paths) - 3} more)" if len(paths) > 3 else ""
    return f"pod template {', '.join(paths[:3])}{more}"


def rollout_title(r: Rollout) -> str:
    return f"{r.name} ({r.kind}) rolls: {'; '.join(reason_text(x) for x in r.reasons)}"


# ---------------------------------------------------------------- detail lines (sign first)


def _cut(lines: list[tuple[str, str]], limit: int = MAX_BLOCK_LINES) -> list[tuple[str, str]]:
    if len(lines) <= limit:
        return lines
    return lines[:limit] + [(f"... {len(lines) - limit} more lines cut", "dim")]


def key_lines(k: KeyChange, indent: str = "    ") -> list[tuple[str, str]]:
    """(line, role) pairs for one key change; multi-line values get a line diff below it
    (indented for a terminal; not in markdown, where a `diff` block colours its lines)."""
    if k.change == REMOVED:
        return [(f"- {k.key}", "remove")]
    if k.change == ADDED:
        assert k.new is not None
        return [(f"+ {k.key}: {show_value(k.new)}", "add")]
    assert k.old is not None and k.new is not None
    hunks = k.lines
    if not hunks:
        return [(f"~ {k.key}: {show_value(k.old)} -> {show_value(k.new)}", "change")]
    out = [(f"~ {k.key}:", "change")]
    for line in hunks:
        role = "add" if line.startswith("+") else "remove" if line.startswith("-") else "dim" if line.startswith("@@") else "plain"
        out.append((f"{indent}{line}", role))
    return out


def field_lines(fields: tuple[FieldChange, ...]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for f in fields:
        if f.change == ADDED:
            out.append((f"+ {f.path}: {show(f.new)}", "add"))
        elif f.change == REMOVED:
            out.append((f"- {f.path}", "remove"))
        else:
            out.append((f"~ {f.path}: {show(f.old)} -> {show(f.new)}", "change"))
    return out


def retention_lines(retained: Sequence[str], dropped: Sequence[str]) -> list[tuple[str, str]]:
    """The versions a change keeps for rollbacks and those that leave out/ (ConfigMaps and Secret producers alike)."""
    return ([(f"retained: {name} (superseded, kept for rollbacks)", "dim") for name in retained]
            + [(f"dropped: {name} (leaves out/: past the retention count)", "dim") for name in dropped])


def object_lines(o: ObjectChange) -> list[tuple[str, str]]:
    return _cut(field_lines(o.fields) + retention_lines(o.retained, o.dropped))


def configmap_lines(c: ConfigMapChange, indent: str = "    ") -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for k in c.keys:
        lines += key_lines(k, indent)
    lines += field_lines(c.fields)
    lines += retention_lines(c.retained, c.dropped)
    if c.status == CHANGED and not c.hashed:
        lines += [(f"not hashed, nothing rolls: {who} {sees_text(how)}", "dim") for who, how in c.sees]
    return _cut(lines)


_SEES = {LIVE: "sees it live (mounted volume)", RESTART: "sees it at the next restart (env/envFrom)",
         NEVER: "never sees it (subPath mount)"}


def sees_text(how: tuple[str, ...]) -> str:
    """How one workload sees a change of a ConfigMap that is not hashed, in words."""
    return ", ".join(_SEES[m] for m in how) if how else "does not mount or read it"


def refusal_line(r: RefusedChange) -> str:
    return f"{r.kind} {r.name}: {r.refusal.path}: {r.refusal.reason}"


def rollout_lines(r: Rollout) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    for reason in r.reasons:
        if isinstance(reason, TemplateReason):
            lines += field_lines(reason.fields)
    return _cut(lines)


def renamed(o: ObjectChange) -> str:
    """`c1afd7a74d -> 9dffaf011b` for a hashed object whose name changed ('' otherwise)."""
    if o.old_name is None or o.new_name is None:
        return ""
    prefix = o.name + "-"
    if o.old_name.startswith(prefix) and o.new_name.startswith(prefix):
        return f"{o.old_name[len(prefix):]} -> {o.new_name[len(prefix):]}"
    return f"{o.old_name} -> {o.new_name}"


def object_title(o: ObjectChange) -> str:
    hashes = renamed(o)
    return f"{SIGN[o.status]} {o.kind} {o.name}" + (f": {hashes}" if hashes else "")


# ---------------------------------------------------------------- text


def text(report: DiffReport, style: Style = plain) -> str:
    out = [style(f"gitops-gen diff: a fresh render compared with {report.against}", "head")]
    for env in report.envs:
        out.append(style(f"{env.name}: {summary(env)}", "head"))
        if env.removed:
            out.append(style(f"  {REMOVED_ENV}: {removed_note(env.name)}", "remove"))
        out += _text_env(env, style)
    return "\n".join(out) + "\n"


def chart_text(c: ChartChange) -> str:
    return f"{c.app}: {', '.join(c.old) or '(none)'} -> {', '.join(c.new) or '(none)'}"


def _text_env(env: EnvDiff, style: Style) -> Iterator[str]:
    role_of = {ADDED: "add", REMOVED: "remove", CHANGED: "change", RETENTION: "dim"}
    if env.charts:
        yield style("  Helm charts", "head")
        yield from ("    " + style(chart_text(c), "change") for c in env.charts)
    if env.refused:
        yield style("  Refused by the API server (the sync will fail)", "head")
        yield from ("    " + style("! " + refusal_line(r), "remove") for r in env.refused)
    if env.configmaps:
        yield style("  ConfigMaps", "head")
        for c in env.configmaps:
            yield "    " + style(f"{c.name}: {hash_change(c)}", role_of[c.status])
            yield from ("      " + style(line, role) for line, role in configmap_lines(c))
    if env.rollouts:
        yield style("  Rollouts", "head")
        for r in env.rollouts:
            yield "    " + style(rollout_title(r), "change")
            yield from ("      " + style(line, role) for line, role in rollout_lines(r))
    if env.objects:
        yield style("  Other changes", "head")
        for o in env.objects:
            yield "    " + style(object_title(o), role_of[o.status])
            yield from ("      " + style(line, role) for line, role in object_lines(o))


# ---------------------------------------------------------------- markdown


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ")


def _code(value: str) -> str:
    return f"`{value}`" if "`" not in value else value


def _rows(env: EnvDiff) -> Iterator[tuple[str, str, str]]:
    for ch in env.charts:
        yield "chart updated", _code(ch.app), " → ".join(", ".join(map(_code, v)) or "(none)" for v in (ch.old, ch.new))
    for x in env.refused:
        yield "**refused**", f"{x.kind} {_code(x.name)}", f"{_code(x.refusal.path)}: {x.refusal.reason}"
    for c in env.configmaps:
        old, new = c.suffix(c.old_name), c.suffix(c.new_name)
        detail = f"{_code(old or '')} → {_code(new or '')}" if c.status == CHANGED and old != new else hash_change(c)
        counts = [f"{n} key{'s' if n > 1 else ''} {s}" for s in (CHANGED, ADDED, REMOVED)
                  if (n := sum(1 for k in c.keys if k.change == s))]
        if counts and c.status == CHANGED:
            detail += ": " + ", ".join(counts)
        if c.retained:
            detail += f"; keeps {', '.join(map(_code, c.retained))} for rollbacks"
        yield f"ConfigMap {c.status}", _code(c.name), detail
    for r in env.rollouts:
        yield "**rolls**", f"{r.kind} {_code(r.name)}", "; ".join(reason_text(x) for x in r.reasons).replace(" -> ", " → ")
    for o in env.objects:
        paths = ", ".join(_code(f.path) for f in o.fields[:3]) + (f" (+{len(o.fields) - 3} more)" if len(o.fields) > 3 else "")
        hashes = " → ".join(map(_code, renamed(o).split(" -> "))) if renamed(o) else ""
        kept = f"keeps {', '.join(map(_code, o.retained))} for rollbacks" if o.retained else ""
        yield f"{o.kind} {o.status}", _code(o.name), "; ".join(x for x in (hashes, paths, kept) if x)


def _details(env: EnvDiff) -> Iterator[tuple[str, list[str]]]:
    for c in env.configmaps:
        lines = configmap_lines(c, indent="")
        if lines:
            yield f"{env.name}: ConfigMap {c.name}: {hash_change(c).replace(' -> ', ' → ')}", [line for line, _ in lines]
    for r in env.rollouts:
        lines = rollout_lines(r)
        if lines:
            yield f"{env.name}: {r.kind} {r.name} pod template", [line for line, _ in lines]
    for o in env.objects:
        lines = object_lines(o)
        if lines:
            yield f"{env.name}: {o.kind} {o.name}", [line for line, _ in lines]


def _fence(lines: list[str]) -> str:
    ticks = "```"
    while any(ticks in line for line in lines):
        ticks += "`"
    return "\n".join([f"{ticks}diff", *lines, ticks])


def _escape_html(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markdown(report: DiffReport) -> str:
    out = [MARKER, "### gitops-gen diff", "", f"A fresh render compared with `{report.against}`.", ""]
    if not report.changed:
        out.append(f"No changes in {', '.join(e.name for e in report.envs) or 'any environment'}: "
                   "the rendered output is identical.")
        return "\n".join(out) + "\n"
    out += ["| Environment | Change | Object | Details |", "|---|---|---|---|"]
    for env in report.envs:
        rows = list(_rows(env)) or [("no changes", "", "")]
        if env.removed:
            rows.insert(0, (f"**{REMOVED_ENV}**", f"`out/{env.name}/`", removed_note(env.name)))
        out += [f"| {env.name} | {_cell(a)} | {_cell(b)} | {_cell(c)} |" for a, b, c in rows]
    blocks = [block for env in report.envs for block in _details(env)]
    used = sum(len(line) + 1 for line in out)
    for i, (title, lines) in enumerate(blocks):
        chunk = ["", f"<details><summary>{_escape_html(title)}</summary>", "", _fence(lines), "", "</details>"]
        size = sum(len(line) + 1 for line in chunk)
        if used + size > MAX_MARKDOWN_CHARS:
            out += ["", f"{len(blocks) - i} more detail blocks cut to fit a comment: run `gitops-gen diff` to see them."]
            break
        out += chunk
        used += size
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------- json


def _field_json(f: FieldChange) -> dict[str, Any]:
    item: dict[str, Any] = {"path": f.path, "change": f.change}
    if f.change != ADDED:
        item["old"] = f.old
    if f.change != REMOVED:
        item["new"] = f.new
    return item


def _value_json(v: Value | None) -> dict[str, Any] | None:
    if v is None:
        return None
    item: dict[str, Any] = {"binary": v.binary, "size": v.size, "sha256": v.sha256}
    if v.text is not None:
        item["text"] = v.text
    return item


def _key_json(k: KeyChange) -> dict[str, Any]:
    return {"key": k.key, "change": k.change, "old": _value_json(k.old), "new": _value_json(k.new), "lines": list(k.lines)}


def _reason_json(r: Reason) -> dict[str, Any]:
    if isinstance(r, ConfigReason):
        return {"type": "config", "kind": r.kind, "name": r.name, "old": r.old_name, "new": r.new_name}
    if isinstance(r, ImageReason):
        tags = r.tags
        return {"type": "image", "container": r.container, "old": r.old, "new": r.new,
                "oldTag": tags[0] if tags else None, "newTag": tags[1] if tags else None, "entry": r.entry}
    return {"type": "podTemplate", "fields": [_field_json(f) for f in r.fields]}


def _refused_json(found: tuple[Refusal, ...]) -> dict[str, Any]:
    return {"refused": bool(found), "refusedBecause": [{"path": r.path, "reason": r.reason} for r in found]}


def _env_json(env: EnvDiff) -> dict[str, Any]:
    return {
        "name": env.name,
        "changed": env.changed,
        "removed": env.removed,
        "summary": summary(env),
        **({"charts": [{"app": c.app, "old": list(c.old), "new": list(c.new)} for c in env.charts]}
           if env.charts else {}),  # only when a chart changed: older reports stay as they were
        "refusals": [
            {"kind": r.kind, "name": r.name, "namespace": r.namespace, "app": r.app, "path": r.refusal.path,
             "reason": r.refusal.reason}
            for r in env.refused
        ],
        "configMaps": [
            {
                "name": c.name, "namespace": c.namespace, "app": c.app, "status": c.status, "hashed": c.hashed,
                "old": c.old_name, "new": c.new_name, "oldHash": c.suffix(c.old_name) if c.hashed else None,
                "newHash": c.suffix(c.new_name) if c.hashed else None,
                "keys": [_key_json(k) for k in c.keys], "fields": [_field_json(f) for f in c.fields],
                "retained": list(c.retained), "dropped": list(c.dropped), "consumers": list(c.consumers),
                "consumerUpdates": [{"consumer": who, "sees": list(how)} for who, how in c.sees] if not c.hashed else [],
                **_refused_json(env.refused_for("ConfigMap", c.namespace, c.name)),
            }
            for c in env.configmaps
        ],
        "rollouts": [
            {"kind": r.kind, "name": r.name, "namespace": r.namespace, "app": r.app,
             "reasons": [_reason_json(x) for x in r.reasons], **_refused_json(env.refused_for(r.kind, r.namespace, r.name))}
            for r in env.rollouts
        ],
        "objects": [
            {"kind": o.kind, "name": o.name, "namespace": o.namespace, "app": o.app, "status": o.status,
             "old": o.old_name, "new": o.new_name, "fields": [_field_json(f) for f in o.fields],
             "retained": list(o.retained), "dropped": list(o.dropped),
             **_refused_json(env.refused_for(o.kind, o.namespace, o.name))}
            for o in env.objects
        ],
    }


def to_json(report: DiffReport) -> str:
    doc = {
        "schema": SCHEMA,
        "against": report.against,
        "changed": report.changed,
        "environments": [_env_json(e) for e in report.envs],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n"
