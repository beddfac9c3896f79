"""The chart lock file `charts/lock.yaml` and the vendored archives beside it.

    # Written by `gitops-gen charts pull`. Do not edit.
    charts:
      - repository: https://charts.example.com
        name: redis
        version: 1.2.3
        digest: sha256:0f3c...          # of the archive as the repository served it
        file: charts/redis-1.2.3.tgz

`render`, `check` and `diff` read remote charts only from here and refuse an archive whose
SHA-256 is not the locked digest, so a render never depends on the network or on a repository
that re-published a version.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from generator.charts import source
from generator.charts.decl import ChartDecl
from generator.errors import ChartError
from generator.io.inputs import read_text
from generator.io.yaml_io import dump_document, load_documents

VENDOR_DIR = "charts"
LOCK_FILE = f"{VENDOR_DIR}/lock.yaml"
HEADER = "# Written by `gitops-gen charts pull`. Do not edit.\n"
PULL_HINT = "run `gitops-gen charts pull` (it fetches the chart into charts/ and records its digest)"

Key = tuple[str, str, str]  # repository, name, version


@dataclass(frozen=True)
class Entry:
    repository: str
    name: str
    version: str
    digest: str
    file: str

    @property
    def key(self) -> Key:
        return (self.repository, self.name, self.version)


def key_of(decl: ChartDecl) -> Key:
    assert decl.repository and decl.name and decl.version
    return (decl.repository, decl.name, decl.version)


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def vendored_digest(root: Path, file: str) -> str | None:
    """The digest of a vendored archive read through the containment checks, None when it is
    missing (a symlink leaving the repo, a FIFO or an oversize file is an error naming it)."""
    path = root / file
    if source.probe_chart(root, path, file) is None:
        return None
    return source.load(root, path, file).digest


def read_lock(root: Path) -> dict[Key, Entry]:
    text = read_text(root, root / LOCK_FILE, LOCK_FILE, missing_ok=True)
    if text is None:
        return {}
    docs = load_documents(text, LOCK_FILE)
    top = docs[0][0] if docs else {}
    items = top.get("charts") if isinstance(top, dict) else None
    if not isinstance(items, list):
        raise ChartError("expected a mapping with a `charts:` list", file=LOCK_FILE, line=1, hint=PULL_HINT)
    out: dict[Key, Entry] = {}
    for item in items:
        fields = ("repository", "name", "version", "digest", "file")
        if not isinstance(item, dict) or not all(isinstance(item.get(f), str) for f in fields):
            raise ChartError(f"every entry needs {', '.join(fields)} (strings)", file=LOCK_FILE, hint=PULL_HINT)
        entry = Entry(*(str(item[f]) for f in fields))
        if not entry.file.startswith(VENDOR_DIR + "/") or ".." in entry.file.split("/"):
            raise ChartError(f"{entry.file!r} is not a file in {VENDOR_DIR}/", file=LOCK_FILE, hint=PULL_HINT)
        out[entry.key] = entry
    return out


def lock_text(entries: dict[Key, Entry]) -> str:
    items = [
        {"repository": e.repository, "name": e.name, "version": e.version, "digest": e.digest, "file": e.file}
        for e in sorted(entries.values(), key=lambda e: (e.name, e.version, e.repository))
    ]
    return HEADER + dump_document({"charts": items})


def vendored_file(name: str, version: str) -> str:
    return f"{VENDOR_DIR}/{name}-{version}.tgz"


def verified_archive(root: Path, decl: ChartDecl, lock: dict[Key, Entry]) -> source.Chart:
    """The vendored archive of a remote chart, read and checked against the lock."""
    entry = lock.get(key_of(decl))
    if entry is None:
        raise ChartError(f"{decl.describe()} is not in {LOCK_FILE}", file=decl.doc.shown,
                         line=_line(decl), hint=PULL_HINT)
    path = root / entry.file
    if source.probe_chart(root, path, entry.file) is None:
        raise ChartError(f"{decl.describe()}: the vendored archive {entry.file} is missing",
                         file=decl.doc.shown, line=_line(decl), hint=PULL_HINT)
    chart = source.load(root, path, entry.file)
    if chart.archive is None:
        raise ChartError(f"{entry.file} is a folder, not a packaged chart", file=LOCK_FILE, hint=PULL_HINT)
    digest = chart.digest
    if digest != entry.digest:
        raise ChartError(
            f"{entry.file} does not match {LOCK_FILE}: its digest is {digest}, the lock says {entry.digest}",
            file=LOCK_FILE,
            hint="the vendored copy was changed: restore it (git checkout charts/) or fetch it again with "
            "`gitops-gen charts pull`",
        )
    return chart


def _line(decl: ChartDecl) -> int | None:
    from generator.io.yaml_io import locate

    return locate(decl.doc.text, 0, ("chart", "version"))
