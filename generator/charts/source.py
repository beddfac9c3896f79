"""Reading a chart's own files (a folder or a packaged .tgz, subcharts included), contained and
bounded, before Helm ever sees them: its digest, its templates (for the determinism scan) and
its default values (for hints).

Helm follows symlinks in a chart folder and would read whatever they point at, so every file
and folder of a chart is checked here first, the way generator/io/inputs.py checks every other
input: a symlink leaving the repo, a dangling symlink, a symlink loop, a FIFO, device or socket
is an error naming the file. Inside a packaged chart (and a packaged subchart) only regular
files and folders with relative paths are accepted: a symbolic or hard link member, a member
whose path is absolute or climbs out with `..`, or a device/FIFO member is refused, since the
archive is third-party data and Helm has no business seeing such a member.

Sizes are bounded before anything is read: one file of a chart (in a folder or an archive) at
most `MAX_CHART_FILE_BYTES`; a packaged chart, and a chart's files together (unpacked, every
archive member counted with its 512-byte header, so a gzip bomb of empty members is bounded
too) at most `MAX_CHART_BYTES`.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
import stat
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from generator.errors import ChartError
from generator.io.inputs import MAX_INPUT_BYTES, Refused, TooBig, probe, read_input

TEMPLATE_SUFFIXES = (".yaml", ".yml", ".tpl", ".txt", ".json")
MAX_CHART_FILE_BYTES = MAX_INPUT_BYTES  # 16 MiB: one file of a chart, as for any input file
MAX_CHART_BYTES = 32 * 1024 * 1024  # a .tgz, and a chart's files together, unpacked
_TAR_HEADER = 512
_MiB = 1024 * 1024


@dataclass
class _Budget:
    """What is left of MAX_CHART_BYTES for the chart being read."""

    left: int = field(default_factory=lambda: MAX_CHART_BYTES)

    def take(self, size: int, shown: str) -> None:
        if size > self.left:
            raise ChartError(
                f"the chart is over the limit of {MAX_CHART_BYTES:,} bytes (its files together, unpacked) "
                f"at {shown}",
                file=shown, hint="charts are read whole before Helm renders them; vendor a smaller chart",
            )
        self.left -= size


@dataclass
class Chart:
    """A chart read from the repo: a packaged chart's bytes (`archive`) or a folder's files."""

    path: Path  # what Helm renders
    shown: str  # `path` relative to the repo
    digest: str
    archive: bytes | None = None
    folder: list[tuple[str, bytes]] = field(default_factory=list)

    @functools.cached_property
    def files(self) -> list[tuple[str, bytes]]:
        """Every file of the chart as (path inside the chart, bytes), packaged subcharts opened
        too, each checked. Paths keep the chart's top folder (`redis/templates/x.yaml`), as
        Helm names them."""
        budget = _Budget()
        if self.archive is not None:
            return list(_archive_files(self.archive, "", self.shown, budget))
        out: list[tuple[str, bytes]] = []
        for rel, data in self.folder:
            budget.take(len(data), f"{self.shown}/{rel}")
            out += _with_subcharts(f"{self.path.name}/{rel}", data, f"{self.shown}/{rel}", budget)
        return out

    def check(self) -> None:
        """Read and check every file now (a packaged chart's members are otherwise read on first use)."""
        _ = self.files

    def templates(self) -> Iterator[tuple[str, str]]:
        """(name, text) of every template of the chart and its subcharts."""
        for name, data in self.files:
            parts = name.split("/")
            if "templates" in parts[:-1] and name.endswith(TEMPLATE_SUFFIXES):
                yield name, data.decode("utf-8", "replace")

    def name(self) -> str | None:
        """The `name` in the chart's own Chart.yaml."""
        for path, data in self.files:
            if path.count("/") == 1 and path.endswith("/Chart.yaml"):
                m = re.search(r"^name:\s*['\"]?([^'\"\s#]+)", data.decode("utf-8", "replace"), re.M)
                return m.group(1) if m else None
        return None

    def default_values(self) -> str:
        """The text of the chart's own values.yaml ('' when it has none)."""
        for path, data in self.files:
            if path.count("/") == 1 and path.endswith("/values.yaml"):
                return data.decode("utf-8", "replace")
        return ""


def load(root: Path, path: Path, shown: str) -> Chart:
    """The chart at `path` (a folder or a .tgz in the repo), every file read through the
    containment checks; a folder is read whole (its digest needs every byte), an archive's
    members are opened only when `files` is asked for."""
    st = probe_chart(root, path, shown)
    if st is None:
        raise ChartError(f"{shown} does not exist", file=shown)
    if stat.S_ISDIR(st.st_mode):
        files = sorted(_folder_files(root, path, "", shown, frozenset(), _Budget()))
        h = hashlib.sha256()
        for rel, data in files:
            h.update(rel.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        return Chart(path, shown, "sha256:" + h.hexdigest(), folder=files)
    blob = _read(root, path, shown, MAX_CHART_BYTES, "a packaged chart")
    return Chart(path, shown, "sha256:" + hashlib.sha256(blob).hexdigest(), archive=blob)


def probe_chart(root: Path, path: Path, shown: str) -> os.stat_result | None:
    try:
        return probe(root, path)
    except Refused as exc:
        raise ChartError(f"{shown} {exc.reason}", file=shown, hint=_hint(exc)) from None


def _hint(exc: Refused) -> str:
    return f"{exc.hint} (Helm would follow it: charts are checked before Helm runs)"


def _read(root: Path, path: Path, shown: str, limit: int, what: str) -> bytes:
    try:
        return read_input(root, path, limit)
    except TooBig as exc:
        raise ChartError(f"{what} {exc.reason}", file=shown,
                         hint=f"a chart file may hold {MAX_CHART_FILE_BYTES // _MiB} MiB, a chart "
                         f"{MAX_CHART_BYTES // _MiB} MiB in all (unpacked)") from None
    except Refused as exc:
        raise ChartError(f"{shown} {exc.reason}", file=shown, hint=_hint(exc)) from None
    except OSError as exc:  # vanished or became a folder since it was listed
        raise ChartError(f"{shown} cannot be read: {exc.strerror}", file=shown) from None


def _folder_files(root: Path, folder: Path, rel: str, shown: str, above: frozenset[str],
                  budget: _Budget) -> Iterator[tuple[str, bytes]]:
    """A folder's files (path relative to the chart, bytes). Symlinked folders inside the repo
    are followed, as Helm follows them; one leading back to a folder being listed is a loop."""
    real = os.path.realpath(folder)
    if real in above:
        where = f"{shown}/{rel.rstrip('/')}"
        raise ChartError(f"{where} is a symlink loop (it leads back to a folder that contains it)",
                         file=where, hint="fix or remove the symlink")
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        where = f"{shown}/{rel}".rstrip("/")
        raise ChartError(f"{where} cannot be listed: {exc.strerror}", file=where) from None
    folders: list[str] = []
    for name in names:
        path, shown_file = folder / name, f"{shown}/{rel}{name}"
        st = probe_chart(root, path, shown_file)
        if st is None:
            continue  # removed while listing
        if stat.S_ISDIR(st.st_mode):
            folders.append(name)
            continue
        if st.st_size > MAX_CHART_FILE_BYTES:
            raise ChartError(f"file is {st.st_size:,} bytes, over the limit of {MAX_CHART_FILE_BYTES:,} bytes "
                             "for a chart file", file=shown_file, hint="charts are read whole; split or remove it")
        budget.take(st.st_size, shown_file)
        yield f"{rel}{name}", _read(root, path, shown_file, MAX_CHART_FILE_BYTES, "file")
    for name in folders:
        yield from _folder_files(root, folder / name, f"{rel}{name}/", shown, above | {real}, budget)


def _archive_files(blob: bytes, prefix: str, shown: str, budget: _Budget) -> Iterator[tuple[str, bytes]]:
    """The regular files of a packaged chart; any other member is refused (see the module doc)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as tar:
            for member in tar:
                _check_member(member, shown)
                budget.take(_TAR_HEADER + max(member.size, 0), shown)
                if member.isdir():
                    continue
                source = tar.extractfile(member)
                if source is None:  # pragma: no cover - a regular member always has a file object
                    continue
                data = source.read()
                yield from _with_subcharts(prefix + member.name, data, f"{shown} (member {member.name})", budget)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        raise ChartError(f"{shown} is not a readable chart archive ({exc})", file=shown,
                         hint="a packaged chart is a .tgz made by `helm package`; fetch or package it again") from None


def _check_member(member: tarfile.TarInfo, shown: str) -> None:
    name = member.name
    problem = None
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", name):
        problem = "has an absolute path"
    elif ".." in name.replace("\\", "/").split("/"):
        problem = "climbs out of the chart with '..'"
    elif member.issym():
        problem = f"is a symbolic link (to {member.linkname!r})"
    elif member.islnk():
        problem = f"is a hard link (to {member.linkname!r})"
    elif not (member.isfile() or member.isdir()):
        problem = "is a device, FIFO or other special file"
    elif member.isfile() and member.size > MAX_CHART_FILE_BYTES:
        problem = f"is {member.size:,} bytes, over the limit of {MAX_CHART_FILE_BYTES:,} bytes for a chart file"
    if problem is not None:
        raise ChartError(f"member {name!r} of {shown} {problem}", file=shown,
                         hint="a chart archive holds regular files and folders with relative paths only; "
                         "package the chart again with `helm package` (links resolved)")


def _with_subcharts(name: str, data: bytes, shown: str, budget: _Budget) -> list[tuple[str, bytes]]:
    parts = name.split("/")
    if len(parts) >= 3 and parts[-2] == "charts" and name.endswith(".tgz"):
        # A packaged subchart: its members are named as Helm names them (parent/charts/sub/...).
        return list(_archive_files(data, "/".join(parts[:-1]) + "/", shown, budget))
    return [(name, data)]
