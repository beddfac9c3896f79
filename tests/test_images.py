"""The `images:` step: Kustomize's matching and update rules (checked against a real `kubectl
kustomize`), every container list, custom resources, scopes, and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.steps.images import apply, join, matches, split
from tests.helpers import BASIC_APP, deployment, load_out, run, write_repo
from tests.kubectl import find_kubectl, kustomize_build

DIGEST = "sha256:" + "ab" * 32
# (image as written) x (entry) -> kustomize decides; the table covers registry ports, digests,
# tag+digest, look-alike names and the update rules for tag/digest.
IMAGES = [
    "nginx", "nginx:1.27", f"nginx@{DIGEST}", f"nginx:1.27@{DIGEST}", "nginx-exporter:1", "docker.io/nginx:1",
    "localhost:5000/app", "localhost:5000/app:2.0", f"localhost:5000/app@{DIGEST}",
    "ghcr.io/org/app:1.0.0-rc.1", "ghcr.io/org/app", "ghcr.io/org/app-sidecar:1",
]
ENTRIES = [
    {"name": "nginx", "newTag": "1.28"},
    {"name": "localhost:5000/app", "newName": "registry.example:443/team/app"},
    {"name": "ghcr.io/org/app", "digest": DIGEST},
]


def test_split_matches_kustomize_examples() -> None:
    assert split("nginx") == ("nginx", "", "")
    assert split("localhost:5000/app:2") == ("localhost:5000/app", "2", "")
    assert split(f"a/b@{DIGEST}") == ("a/b", "", DIGEST)
    assert split(f"a/b:1@{DIGEST}") == ("a/b", "1", DIGEST)
    assert matches("nginx:1.27", "nginx") and matches(f"nginx@{DIGEST}", "nginx")
    assert not matches("nginx-exporter", "nginx") and not matches("docker.io/nginx", "nginx")
    assert not matches("ghcrXio/org/app", "ghcr.io/org/app")  # literal, not a regular expression


def test_update_rules() -> None:
    assert apply(f"nginx:1@{DIGEST}", None, "2", None) == "nginx:2"  # a tag alone drops the digest
    assert apply("nginx:1", None, None, DIGEST) == f"nginx@{DIGEST}"  # a digest alone drops the tag
    assert apply("nginx:1", "mirror/nginx", "2", DIGEST) == f"mirror/nginx:2@{DIGEST}"
    assert apply("nginx:1", "mirror/nginx", None, None) == "mirror/nginx:1"


@given(st.sampled_from(["a", "reg.io/a", "localhost:5000/a/b"]), st.sampled_from(["", "1", "v1.2_3"]),
       st.sampled_from(["", DIGEST]))
def test_split_join_round_trip(name: str, tag: str, digest: str) -> None:
    assert split(join(name, tag, digest)) == (name, tag, digest)


def _pod_yaml(images: list[str]) -> str:
    containers = [{"name": f"c{i}", "image": image} for i, image in enumerate(images)]
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                           "spec": {"containers": containers}})


def test_same_result_as_kubectl_kustomize(tmp_path: Path) -> None:
    folder = tmp_path / "k"
    folder.mkdir()
    (folder / "pod.yaml").write_text(_pod_yaml(IMAGES))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({"resources": ["pod.yaml"], "images": ENTRIES}))
    [pod] = kustomize_build(find_kubectl(), folder)
    theirs = [c["image"] for c in pod["spec"]["containers"]]
    ours = []
    for image in IMAGES:
        entry = next((e for e in ENTRIES if matches(image, e["name"])), None)
        ours.append(image if entry is None else apply(image, entry.get("newName"), entry.get("newTag"), entry.get("digest")))
    assert ours == theirs


APP_YAML = "configMaps: [{name: web-config, literals: {LOG_LEVEL: info}}]\n"


def _repo(tmp_path: Path, extra: dict[str, str]) -> Path:
    return write_repo(tmp_path / "repo", {**BASIC_APP, **extra})


WORKER = deployment("worker", """
    initContainers: [{name: init, image: "busybox:1.36"}]
    containers: [{name: main, image: "ghcr.io/org/worker:1.0"}, {name: side, image: "nginx:1.27"}]
    ephemeralContainers: [{name: debug, image: "busybox:1.36"}]
""")


def test_every_container_list_and_custom_resources(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {
        "gitops-gen.yaml": "podSpecPaths: [{kind: CloneSet, path: spec.template.spec}]\n",
        "base/web/worker.yaml": WORKER,
        "base/web/cloneset.yaml": deployment("clones", "containers: [{name: c, image: busybox}]",
                                             kind="CloneSet", api="apps.kruise.io/v1alpha1"),
        "environments/dev/env.yaml": """
            namespace: dev
            images:
              - name: busybox
                newName: mirror.example/busybox
                newTag: "1.37"
              - {name: ghcr.io/org/worker, digest: "%s"}
        """ % DIGEST,
    })
    assert run("render", "--repo", repo).exit_code == 0
    out = load_out(repo / "out/dev")
    pod = out["web/deployment-worker.yaml"]["spec"]["template"]["spec"]
    assert pod["initContainers"][0]["image"] == "mirror.example/busybox:1.37"
    assert pod["ephemeralContainers"][0]["image"] == "mirror.example/busybox:1.37"
    assert [c["image"] for c in pod["containers"]] == [f"ghcr.io/org/worker@{DIGEST}", "nginx:1.27"]
    clones = out["web/cloneset-clones.yaml"]["spec"]["template"]["spec"]["containers"][0]
    assert clones["image"] == "mirror.example/busybox:1.37"


def test_environment_entry_replaces_app_entry_of_same_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {
        "base/web/app.yaml": APP_YAML + "images: [{name: nginx, newTag: '1.26'}]\n",
        "environments/dev/env.yaml": "namespace: dev\n",
        "environments/prod/env.yaml": "namespace: prod\nimages: [{name: nginx, newTag: '1.28'}]\n",
    })
    assert run("render", "--repo", repo).exit_code == 0
    image = lambda env: load_out(repo / f"out/{env}")["web/deployment-web.yaml"]["spec"]["template"]["spec"]["containers"][0]["image"]  # noqa: E731
    assert (image("dev"), image("prod")) == ("nginx:1.26", "nginx:1.28")


def test_entry_applies_after_patches(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"environments/dev/env.yaml": """
        namespace: dev
        images: [{name: nginx, newTag: "1.28"}]
        patches:
          - kind: Deployment
            metadata: {name: web}
            spec: {template: {spec: {containers: [{name: web, image: "nginx:1.0"}]}}}
    """})
    assert run("render", "--repo", repo).exit_code == 0
    out = load_out(repo / "out/dev")
    assert out["web/deployment-web.yaml"]["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.28"


@pytest.mark.parametrize(("entry", "message"), [
    ("{name: nginxx, newTag: '1'}", "env.yaml:3: images entry 'nginxx' matches no container of environment 'dev'"),
    ("{name: 'nginx:1.27', newTag: '1'}", "env.yaml:3: `images.0.name`: 'nginx:1.27' carries a tag '1.27'"),
    ("{name: nginx, newTag: 1.20}", "`images.0.newTag`: expected a non-empty string, got float"),
    ("{name: nginx}", "images entry 'nginx' changes nothing"),
    ("{name: nginx, digest: abc}", "'abc' is not a digest"),
    ("{name: nginx, newTag: -x}", "'-x' is not a valid image tag"),
])
def test_bad_entries(tmp_path: Path, entry: str, message: str) -> None:
    repo = _repo(tmp_path, {"environments/dev/env.yaml": f"namespace: dev\nimages:\n  - {entry}\n"})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert message in result.output
    assert not (repo / "out").exists()


def test_app_entry_that_matches_nothing_names_the_app(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"base/web/app.yaml": "images:\n  - name: redis\n    newTag: '7'\n" + APP_YAML})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert "base/web/app.yaml:2: images entry 'redis' matches no container of app 'web'" in result.output
    assert "images of app 'web' in environment 'dev': nginx" in result.output


def test_diff_names_the_entry_only_for_what_it_changed() -> None:
    from generator.model import Origin
    from generator.review.image_causes import caused
    from generator.steps.images import ImageEntry

    tag = ImageEntry("nginx", None, "1.28", None, Origin("env.yaml"), "env")
    assert caused(tag, "nginx:1.27", "nginx:1.28")
    assert not caused(tag, "nginx:1.28", "other:1.28")
    mirror = ImageEntry("nginx", "mirror/nginx", None, None, Origin("env.yaml"), "env")
    assert caused(mirror, "nginx:1.27", "mirror/nginx:1.27")
    assert not caused(mirror, "mirror/nginx:1.27", "mirror/nginx:1.28")  # the base bumped the tag, not the entry
