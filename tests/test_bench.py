"""The benchmark (bench/) at a tiny size, so it cannot rot. Nothing here asserts a speed."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import synth, synth_realistic
from tests.kubectl import KubectlNotFound, find_kubectl, kustomize_build

ROOT = Path(__file__).resolve().parent.parent
RATIO_LINE = re.compile(r"^ratio_vs_kustomize=(\S+) ratio_vs_floor=(\S+) scaling=(\S+)$")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _kubectl_or_skip() -> Path:
    try:
        return find_kubectl()
    except KubectlNotFound as exc:
        pytest.skip(f"no kubectl: {exc}")


def _bench(*args: str, work: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), *args, "--work", str(work)],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )


def _ratios(stdout: str) -> tuple[float, float, float]:
    lines = stdout.rstrip("\n").splitlines()
    assert lines, "the benchmark printed nothing"
    assert sum(1 for line in lines if line.startswith("ratio_vs_kustomize=")) == 1
    match = RATIO_LINE.match(lines[-1])
    assert match, f"last line is not the ratio line: {lines[-1]!r}"
    x, y, z = (float(g) for g in match.groups())
    return x, y, z


def test_bench_smoke_without_kustomize(tmp_path: Path) -> None:
    proc = _bench("--apps", "3", "--envs", "2", "--repeat", "1", "--no-kustomize", work=tmp_path / "work")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vs_kustomize, vs_floor, scaling = _ratios(proc.stdout)
    assert math.isnan(vs_kustomize)
    assert vs_floor > 0 and math.isfinite(vs_floor)
    assert scaling > 0 and math.isfinite(scaling)
    for name in ("render", "render-0", "check-0", "floor", "check", "diff", "render-1", "watch-1"):
        assert f"| 3 | {name} |" in proc.stdout and f"| 6 | {name} |" in proc.stdout
    assert not (tmp_path / "work").exists()  # scratch removed without --keep


def test_bench_smoke_with_kustomize(tmp_path: Path) -> None:
    kubectl = _kubectl_or_skip()
    proc = _bench(
        "--apps", "2", "--envs", "1", "--repeat", "1", "--kubectl", str(kubectl),
        "--commands", "render,kustomize,floor", work=tmp_path / "work",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    vs_kustomize, vs_floor, scaling = _ratios(proc.stdout)
    for value in (vs_kustomize, vs_floor, scaling):
        assert value > 0 and math.isfinite(value)


def test_bench_reports_a_failing_command(tmp_path: Path) -> None:
    fake = tmp_path / "kubectl"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = version ]; then echo \'{"clientVersion": {"gitVersion": "v0.0.0-fake"}}\'; exit 0; fi\n'
        "echo 'fake kubectl: kustomize is broken' >&2\nexit 7\n"
    )
    fake.chmod(0o755)
    proc = _bench(
        "--apps", "1", "--envs", "1", "--repeat", "1", "--kubectl", str(fake),
        "--commands", "render,kustomize", work=tmp_path / "work",
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "bench: FAILED" in proc.stderr and "exited 7, expected 0" in proc.stderr
    assert "fake kubectl: kustomize is broken" in proc.stderr
    assert "ratio_vs_kustomize=" not in proc.stdout
    assert "Traceback" not in proc.stderr


def test_bench_without_usable_kubectl_says_so(tmp_path: Path) -> None:
    proc = _bench("--apps", "1", "--kubectl", str(tmp_path / "missing"), "--commands", "render,kustomize",
                  work=tmp_path / "work")
    assert proc.returncode == 1
    assert "no usable kubectl" in proc.stderr and "--no-kustomize" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bench_refuses_a_foreign_work_folder(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("keep me")
    proc = _bench("--apps", "1", "--no-kustomize", work=tmp_path)
    assert proc.returncode == 1 and "not made by bench/run.py" in proc.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_synth_is_deterministic(tmp_path: Path) -> None:
    def snapshot(root: Path) -> dict[str, bytes]:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}

    synth.write_repos(tmp_path / "a", 3, 2)
    synth.write_repos(tmp_path / "b", 3, 2)
    first = snapshot(tmp_path / "a")
    assert first == snapshot(tmp_path / "b")
    assert len([p for p in first if p.startswith("ours/base/")]) == 3 * 4
    assert len([p for p in first if p.startswith("kustomize/base/")]) == 3 * 4


def _rendered_objects(env_dir: Path) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for path in sorted(env_dir.rglob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        objects.extend(d for d in yaml.load_all(path.read_text(), Loader=yaml.CSafeLoader) if d is not None)
    return objects


def test_kustomize_layout_matches_our_render(tmp_path: Path) -> None:
    """Per environment, real kubectl on the Kustomize layout yields the objects of our render."""
    kubectl = _kubectl_or_skip()
    repo = synth.write_repos(tmp_path, 4, 2)
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "render", "--repo", str(repo.ours)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout
    declared = {synth.config_name(app) for app in repo.apps}
    for env in repo.envs:
        theirs = kustomize_build(kubectl, repo.overlay(env))
        ours = _rendered_objects(repo.ours / "out" / env)
        expected = Counter(synth.expected_counts(repo))
        assert Counter(o["kind"] for o in theirs) == expected
        assert Counter(o["kind"] for o in ours) == expected
        their_view = synth.semantic_view(theirs, declared)
        assert their_view == synth.semantic_view(ours, declared)
        # the overlay really changed something: replicas and the two overridden keys
        sample = synth.app_name(1)
        assert their_view[("Deployment", env, sample)]["replicas"] == synth.env_replicas(repo.envs.index(env))
        data = their_view[("ConfigMap", env, synth.config_name(sample))]["data"]
        assert data["key00"] == synth.env_literals(sample, env)["key00"]
        assert data["key02"] == synth.base_literals(sample)["key02"]
        assert data["app.properties"] == synth.properties_text(sample)


def test_chart_row_smoke(tmp_path: Path) -> None:
    """The Helm chart row (bench/charts.py) at 2 charts x 1 environment; no speed asserted."""
    from tests.helm import helm_path

    helm_path()
    _kubectl_or_skip()
    proc = _bench("--charts", "2", "--envs", "1", "--repeat", "1", work=tmp_path / "w")
    assert proc.returncode == 0, proc.stderr + proc.stdout
    last = proc.stdout.rstrip("\n").splitlines()[-1]
    match = re.fullmatch(r"ratio_vs_helm=(\S+) ratio_vs_helm_kustomize=(\S+)", last)
    assert match, last
    assert all(float(g) > 0 for g in match.groups())
    assert not (tmp_path / "w").exists()  # the scratch folder is removed


def test_realistic_shape_smoke(tmp_path: Path) -> None:
    proc = _bench("--shape", "realistic", "--apps", "2", "--envs", "2", "--repeat", "1", "--no-kustomize",
                  "--commands", "render,floor,diff,render-1", work=tmp_path / "work")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "realistic shape" in proc.stdout
    _, vs_floor, _ = _ratios(proc.stdout)
    assert vs_floor > 0 and math.isfinite(vs_floor)
    # 9 objects per app and environment, plus one kustomization.yaml per environment
    assert "output at 2 apps: ours 38 files" in proc.stdout


def test_realistic_synth_is_deterministic_and_shares_files(tmp_path: Path) -> None:
    a = synth.write_repos(tmp_path / "a", 2, 2, "realistic")
    synth.write_repos(tmp_path / "b", 2, 2, "realistic")
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)
    app = a.ours / "base" / "app-0001"
    assert len((app / "app.toml").read_text().splitlines()) == synth_realistic.TOML_LINES
    # the files both layouts read are byte-identical
    for path in app.rglob("*"):
        if path.is_file() and path.name != "app.yaml":
            assert path.read_bytes() == (a.kustomize / "base" / "app-0001" / path.relative_to(app)).read_bytes()
    env_file = Path("environments/env-1") / synth_realistic.env_file_path("app-0001")
    assert (a.ours / env_file).read_bytes() == (a.kustomize / "overlays/env-1" / env_file.relative_to("environments/env-1")).read_bytes()


def test_realistic_kustomize_layout_matches_our_render(tmp_path: Path) -> None:
    """Real kubectl on the realistic Kustomize layout yields our render's objects, whole: every
    container, probe, list order and ConfigMap byte (only hash suffixes and our annotations differ)."""
    kubectl = _kubectl_or_skip()
    repo = synth.write_repos(tmp_path, 3, 2, "realistic")
    proc = subprocess.run(
        [sys.executable, "-m", "generator", "render", "--repo", str(repo.ours)],
        cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stdout
    declared = synth.declared_configmaps(repo)
    for k, env in enumerate(repo.envs):
        theirs = kustomize_build(kubectl, repo.overlay(env))
        ours = _rendered_objects(repo.ours / "out" / env)
        expected = Counter(synth.expected_counts(repo))
        assert Counter(o["kind"] for o in theirs) == expected
        assert Counter(o["kind"] for o in ours) == expected
        their_view = synth.full_view(theirs, declared)
        assert their_view == synth.full_view(ours, declared)
        # the overlay really changed things: a patched container, the env file, the literals
        sample = synth.app_name(1)
        deployment = their_view[("Deployment", env, sample)]
        app_container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert app_container["image"] == synth_realistic.env_image(sample, k)
        assert [e["name"] for e in app_container["env"]] == ["ENVIRONMENT", "KEY00", "KEY01", "POD_NAME"]
        assert deployment["spec"]["replicas"] == synth.env_replicas(k)
        env_data = their_view[("ConfigMap", env, synth_realistic.env_config_name(sample))]["data"]
        assert env_data["ENV_SETTING_0"] == f"{env} setting 0 of {sample}"
        assert env_data["FEATURE_0"] == synth_realistic.env_cm_literals(sample)["FEATURE_0"]
        config = their_view[("ConfigMap", env, synth.config_name(sample))]["data"]
        assert config["app.toml"] == synth_realistic.toml_text(sample)
        assert config["key00"] == synth.env_literals(sample, env)["key00"]
        nginx = their_view[("ConfigMap", env, synth_realistic.nginx_name(sample))]["data"]
        assert set(nginx) == {"nginx.conf", *synth_realistic.CONFD_FILES}


def test_write_cost_smoke(tmp_path: Path) -> None:
    """bench/write_cost.py at 20 files: every variant writes the same bytes and reports a row."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "write_cost.py"), "--files", "20", "--per-folder", "3", "--size", "100",
         "--repeat", "1", "--dest", str(tmp_path / "w"), "--keep"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    variants = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| tmp") or line.startswith("| plain")]
    assert variants == ["plain", "tmp+rename", "tmp+fsync+rename", "tmp+rename+dirsync", "tmp+fsync+rename+dirsync", "tmp+rename+syncfs"]
    for folder in (tmp_path / "w").iterdir():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        assert len(files) == 20 and not any(p.name.startswith(".tmp.") for p in files)
        assert {p.read_bytes() for p in files} == {files[0].read_bytes()} and len(files[0].read_bytes()) == 100
