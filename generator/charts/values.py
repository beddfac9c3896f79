"""Chart values, layered: chart defaults < app values < environment values.

Each declaring file gives one layer: its `valuesFiles` (in order), then its inline `values`.
Layers merge the way Helm merges several `-f` files: mappings recursively, anything else (lists,
scalars, null) replaced by the later layer. Merging here and handing Helm one document gives the
same result as handing it every file, and one document is one memo key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.charts.decl import Values
from generator.errors import ChartError, TemplateError
from generator.io.inputs import read_text
from generator.io.yaml_io import load_documents, locate
from generator.schema import Path_
from generator.steps.templating import Templates, has_template_syntax


@dataclass(frozen=True)
class Layer:
    """Values from one file (or one `values:` block), with where to find a key's line."""

    data: dict[str, Any]
    shown: str
    text: str
    prefix: Path_ = ()  # where the values sit inside `text`

    def line(self, path: Path_) -> int | None:
        return locate(self.text, 0, self.prefix + path)

    def has(self, path: Path_) -> bool:
        node: Any = self.data
        for part in path:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]
            else:
                return False
        return True


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's merge of two values files: `top` wins; mappings merge key by key."""
    out = dict(base)
    for key, value in top.items():
        old = out.get(key)
        out[key] = merge(old, value) if isinstance(old, dict) and isinstance(value, dict) else value
    return out


def _render_strings(value: Any, templates: Templates, ctx: Mapping[str, Any], values: Values, at: Path_ = ()) -> Any:
    """Inline values with every templated string rendered; an error names the value's line."""
    if isinstance(value, str):
        if not has_template_syntax(value):
            return value
        try:
            return templates.render(value, ctx, values.doc.shown)
        except TemplateError as exc:
            exc.line = locate(values.doc.text, 0, values.path + at)
            raise
    if isinstance(value, dict):
        return {k: _render_strings(v, templates, ctx, values, at + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_strings(v, templates, ctx, values, at + (i,)) for i, v in enumerate(value)]
    return value


def _file_layer(root: Path, path: Path, shown: str, templates: Templates, ctx: Mapping[str, Any]) -> Layer:
    text = read_text(root, path, shown)
    if path.name.endswith(".j2"):
        text = templates.render(text, ctx, shown)
    docs = load_documents(text, shown)
    if len(docs) > 1:
        raise ChartError("a values file holds one YAML document, found several", file=shown, line=docs[1][1])
    data = docs[0][0] if docs else {}
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ChartError("a values file must be a mapping at the top", file=shown, line=docs[0][1] if docs else 1)
    return Layer(data, shown, text)


def layers(root: Path, values: Values, templates: Templates, ctx: Mapping[str, Any]) -> list[Layer]:
    """One declaring file's layers: its values files in order, then its inline values."""
    out = [_file_layer(root, f.path, f.shown, templates, ctx) for f in values.files]
    if values.inline:
        inline = _render_strings(values.inline, templates, ctx, values)
        out.append(Layer(inline, values.doc.shown, values.doc.text, values.path))
    return out


def merged(all_layers: list[Layer]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in all_layers:
        out = merge(out, layer.data)
    return out


def where(all_layers: list[Layer], path: Path_) -> tuple[str, int | None] | None:
    """The file and line of the layer that decides `path` (the last that sets it, or the
    deepest prefix of it), for an error about that value."""
    for cut in range(len(path), 0, -1):
        for layer in reversed(all_layers):
            if layer.has(path[:cut]):
                return layer.shown, layer.line(path[:cut])
    return None
