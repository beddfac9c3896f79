"""`gitops-gen charts pull` and `charts update`: the only commands that touch the network.

`pull` makes `charts/` hold exactly the remote charts the repo's app.yaml files declare: an
archive already vendored whose digest matches the lock is kept; a missing one is fetched with
`helm pull` and its digest recorded; archives and lock entries nothing declares any more are
removed. An archive the repository serves with a digest other than the locked one (a version
published twice) is refused: the lock is what reviewers approved.

`update APP [--version V]` changes the version in the app's app.yaml (the newest version of the
repository's index.yaml when none is given) and pulls, so the new lock, archive and app.yaml
arrive in one commit and `gitops-gen diff` shows what the new version does to the objects.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from generator.charts import lock, source
from generator.charts.decl import ChartDecl
from generator.charts.helm import Helm, find_helm
from generator.config import APP_FILE, load_app_config
from generator.errors import ChartError
from generator.io.yaml_io import load_documents, locate
from generator.steps.load import list_apps, list_envs


@dataclass
class PullReport:
    kept: list[str] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def declared_charts(root: Path) -> list[ChartDecl]:
    """Every remote chart declared in base/<app>/app.yaml and environments/*/apps/<app>/app.yaml."""
    folders = [(root / "base" / app, app) for app in list_apps(root, root / "base")]
    for env in list_envs(root, root / "environments"):
        apps_dir = root / "environments" / env / "apps"
        folders += [(apps_dir / app, app) for app in list_apps(root, apps_dir)]
    out: list[ChartDecl] = []
    for folder, app in folders:
        chart = load_app_config(root, folder, app).chart
        if chart is not None and chart.remote:
            out.append(chart)
    return out


def pull(root: Path, refetch: frozenset[lock.Key] = frozenset()) -> PullReport:
    _check_vendor_folder(root)
    helm = find_helm(download=True)
    old = lock.read_lock(root)
    new: dict[lock.Key, lock.Entry] = {}
    report = PullReport()
    for decl in declared_charts(root):
        key = lock.key_of(decl)
        if key in new:
            continue
        entry = old.get(key)
        if entry and key not in refetch and lock.vendored_digest(root, entry.file) == entry.digest:
            new[key] = entry
            report.kept.append(entry.file)
            continue
        new[key] = _fetch(root, helm, decl, None if key in refetch else entry)
        report.fetched.append(new[key].file)
    files = {e.file for e in new.values()}
    if len(files) < len(new):
        raise ChartError("two repositories serve charts of the same name and version",
                         file=lock.LOCK_FILE, hint="vendor one of them as a .tgz in the app folder (`chart.path`)")
    for entry in old.values():
        if entry.file not in files and entry.file.startswith(lock.VENDOR_DIR + "/") and (root / entry.file).is_file():
            (root / entry.file).unlink()
            report.removed.append(entry.file)
    if new or old:
        _write(root / lock.LOCK_FILE, lock.lock_text(new).encode())
    return report


def _check_vendor_folder(root: Path) -> None:
    """`charts/` must be a folder inside the repo (or not exist yet): pull writes into it."""
    folder = root / lock.VENDOR_DIR
    st = source.probe_chart(root, folder, lock.VENDOR_DIR)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise ChartError(f"{lock.VENDOR_DIR} is not a folder", file=lock.VENDOR_DIR,
                         hint=f"`gitops-gen charts pull` keeps vendored charts in {lock.VENDOR_DIR}/: move the file away")


def _fetch(root: Path, helm: Helm, decl: ChartDecl, locked: lock.Entry | None) -> lock.Entry:
    assert decl.repository and decl.name and decl.version
    with tempfile.TemporaryDirectory(prefix="gitops-gen-pull-") as tmp:
        env = {**os.environ, "HELM_CACHE_HOME": str(Path(tmp) / "cache")}
        dest = Path(tmp) / "dest"
        dest.mkdir()
        if decl.repository.startswith("oci://"):
            args = ["pull", f"{decl.repository}/{decl.name}", "--version", decl.version, "--destination", str(dest)]
        else:
            args = ["pull", decl.name, "--repo", decl.repository, "--version", decl.version, "--destination", str(dest)]
        proc = helm.run(args, env=env)
        archives = sorted(dest.glob("*.tgz"))
        if proc.returncode != 0 or len(archives) != 1:
            raise ChartError(f"cannot fetch {decl.describe()}: {proc.stderr.strip().removeprefix('Error: ')}",
                             file=decl.doc.shown, line=locate(decl.doc.text, 0, ("chart",)),
                             hint="check the repository address, the chart name and the version")
        digest = lock.file_digest(archives[0])
        target = lock.vendored_file(decl.name, decl.version)
        if locked is not None and locked.digest != digest:
            raise ChartError(
                f"{decl.repository} now serves {decl.name} {decl.version} with digest {digest}, but "
                f"{lock.LOCK_FILE} records {locked.digest}: the version was published again",
                file=lock.LOCK_FILE,
                hint=f"review the new archive, then accept it with `gitops-gen charts update {decl.app} "
                f"--version {decl.version}`",
            )
        (root / lock.VENDOR_DIR).mkdir(exist_ok=True)
        _write(root / target, archives[0].read_bytes())
    return lock.Entry(decl.repository, decl.name, decl.version, digest, target)


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def update(root: Path, app: str, version: str | None) -> tuple[str, str, PullReport]:
    """Set the app's chart version in its app.yaml (newest when `version` is None) and pull."""
    decl = next((d for d in declared_charts(root) if d.app == app), None)
    if decl is None:
        raise ChartError(f"app {app!r} has no chart from a repository",
                         hint="`charts update` changes the version of a `chart:` with `repository`, `name`, `version`")
    assert decl.version is not None
    new_version = version or newest_version(decl)
    path = root / decl.doc.shown
    if new_version != decl.version:
        _set_version(path, decl, new_version)
    report = pull(root, refetch=frozenset({(decl.repository or "", decl.name or "", new_version)}))
    return decl.version, new_version, report


def _set_version(path: Path, decl: ChartDecl, version: str) -> None:
    line = locate(decl.doc.text, 0, ("chart", "version"))
    lines = decl.doc.text.splitlines(keepends=True)
    if line is None or not path.name == APP_FILE:
        raise ChartError("cannot find `chart.version` to change", file=decl.doc.shown)
    old = lines[line - 1]
    changed = re.sub(r"(version:\s*)(['\"]?)[^'\"\s#]+\2", lambda m: f'{m.group(1)}"{version}"', old, count=1)
    if changed == old:
        raise ChartError("cannot change `chart.version` on this line: write it as `version: \"x.y.z\"`",
                         file=decl.doc.shown, line=line)
    lines[line - 1] = changed
    _write(path, "".join(lines).encode())


def newest_version(decl: ChartDecl) -> str:
    """The highest release version (no pre-release) of the chart in an https repository's index."""
    assert decl.repository and decl.name
    if decl.repository.startswith("oci://"):
        raise ChartError(f"{decl.describe()}: an OCI registry has no index to read the newest version from",
                         hint="give the version: `gitops-gen charts update APP --version X.Y.Z`")
    url = decl.repository + "/index.yaml"
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 - https or loopback http only
            text = response.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ChartError(f"cannot read {url}: {exc}", file=decl.doc.shown) from None
    docs = load_documents(text, url)
    entries = (docs[0][0] or {}).get("entries", {}) if docs and isinstance(docs[0][0], dict) else {}
    versions = [str(e.get("version")) for e in entries.get(decl.name, []) if isinstance(e, dict)]
    releases = [v for v in versions if re.fullmatch(r"v?\d+\.\d+\.\d+", v)]
    if not releases:
        raise ChartError(f"{url} lists no release of chart {decl.name!r}", file=decl.doc.shown)
    return max(releases, key=lambda v: tuple(int(p) for p in v.lstrip("v").split(".")))
