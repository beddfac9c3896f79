"""Reading a chart's own files (a folder or a packaged .tgz, subcharts included) without Helm:
its digest, its templates (for the determinism scan) and its default values (for hints)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".tpl", ".txt", ".json")


def digest(path: Path) -> str:
    """SHA-256 of an archive's bytes, or of a folder's files (relative path and content, sorted)."""
    h = hashlib.sha256()
    if path.is_file():
        h.update(path.read_bytes())
        return "sha256:" + h.hexdigest()
    for rel, data in sorted(_folder_files(path)):
        h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
    return "sha256:" + h.hexdigest()


def _folder_files(folder: Path) -> Iterator[tuple[str, bytes]]:
    for top, dirs, names in os.walk(folder):
        dirs.sort()
        for name in sorted(names):
            full = Path(top) / name
            yield full.relative_to(folder).as_posix(), full.read_bytes()


def files(path: Path) -> Iterator[tuple[str, bytes]]:
    """Every file of the chart as (path inside the chart, bytes), packaged subcharts opened too.
    Paths of an archive keep its top folder (`redis/templates/x.yaml`), as Helm names them."""
    if path.is_file():
        with open(path, "rb") as handle:
            yield from _archive_files(handle.read(), "")
        return
    for rel, data in _folder_files(path):
        yield from _with_subcharts(f"{path.name}/{rel}", data)


def _archive_files(blob: bytes, prefix: str) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
        for member in tar:
            if member.isfile():
                source = tar.extractfile(member)
                if source is not None:
                    yield from _with_subcharts(prefix + member.name, source.read())


def _with_subcharts(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    parts = name.split("/")
    if len(parts) >= 3 and parts[-2] == "charts" and name.endswith(".tgz"):
        # A packaged subchart: its members are named as Helm names them (parent/charts/sub/...).
        yield from _archive_files(data, "/".join(parts[:-1]) + "/")
    else:
        yield name, data


def templates(path: Path) -> Iterator[tuple[str, str]]:
    """(name, text) of every template of the chart and its subcharts."""
    for name, data in files(path):
        parts = name.split("/")
        if "templates" in parts[:-1] and name.endswith(TEMPLATE_SUFFIXES):
            yield name, data.decode("utf-8", "replace")


def chart_name(path: Path) -> str | None:
    """The `name` in the chart's own Chart.yaml."""
    import re

    for name, data in files(path):
        if name.count("/") == 1 and name.endswith("/Chart.yaml"):
            m = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", data.decode("utf-8", "replace"), re.M)
            return m.group(1) if m else None
    return None


def default_values(path: Path) -> str:
    """The text of the chart's own values.yaml ('' when it has none)."""
    for name, data in files(path):
        if name.count("/") == 1 and name.endswith("/values.yaml"):
            return data.decode("utf-8", "replace")
    return ""
