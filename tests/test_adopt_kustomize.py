"""`gitops-gen import kustomize`: Kustomize trees of many shapes converted, rendered, and compared
with the real `kubectl kustomize` of the original (the command's own proof, checked here)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from generator.adopt import compare
from generator.adopt.generators import kustomize_env_pairs, literal_value, our_env_pairs, remove_quotes
from generator.adopt.patches import _operation, images
from tests.helpers import run, snapshot, write_repo

SHAPES = Path(__file__).parent / "adopt_shapes"


def _import(source: Path, out: Path) -> tuple[int, str]:
    before = snapshot(source)
    result = run("import", "kustomize", source, "--out", out)
    assert snapshot(source) == before, "the Kustomize tree must not be touched"
    return result.exit_code, result.output


def test_benchmark_layout_round_trips(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent.parent / "bench"))
    from synth import write_repos  # type: ignore[import-not-found]

    repo = write_repos(tmp_path / "synth", apps=4, envs=2)
    code, output = _import(repo.kustomize, tmp_path / "imported")
    assert code == 0, output
    assert "env-0: 12 objects" in output and "env-1: 12 objects" in output
    assert "every object matches Kustomize's build (ConfigMap names included)" in output
    assert yaml.safe_load((tmp_path / "imported/gitops-gen.yaml").read_text()) == {"hashStyle": "kustomize"}
    assert run("check", "--repo", tmp_path / "imported").exit_code == 0


def test_apps_layout_with_every_supported_feature(tmp_path: Path) -> None:
    """Bases under apps/<app>/base, overlays, a component, literals with quotes and `{{`, files,
    binary data, env files, generator options, disableNameSuffixHash, behavior merge/replace/
    create, strategic-merge patches (file, inline), JSON 6902 (list index, add), replicas,
    images (tag, name and digest), an overlay resource, a base with commonLabels (baked)."""
    code, output = _import(SHAPES / "apps_layout", tmp_path / "out")
    differences = [line for line in output.splitlines() if line.startswith("  differs:")]
    # Patches merge in Kustomize's list order and `images:` are our `images:`: nothing differs.
    assert differences == [], output
    assert code == 0
    assert "\nTODO " not in output
    assert "dev: 4 objects" in output and "prod: 8 objects" in output
    app = yaml.safe_load((tmp_path / "out/base/web/app.yaml").read_text())
    assert app["configMaps"][0]["literals"]["TEMPLATE"] == "{% raw %}{{ not jinja }}{% endraw %}"
    assert app["configMaps"][0]["literals"]["GREETING"] == "hello world"
    env = yaml.safe_load((tmp_path / "out/environments/prod/env.yaml").read_text())
    assert env["namespace"] == "web-prod" and env["configMaps"]["web-static"]["hash"] is False
    assert env["images"] == [
        {"name": "busybox", "newTag": "1.37"},
        {"name": "example/api", "newName": "registry.example.com/api",
         "digest": "sha256:0000000000000000000000000000000000000000000000000000000000000000"},
    ]


def test_unsupported_features_are_todos_with_file_and_line(tmp_path: Path) -> None:
    code, output = _import(SHAPES / "todo_layout", tmp_path / "out")
    todos = [line for line in output.splitlines() if line.startswith("TODO ")]
    assert [t.split(": ")[0] for t in todos] == [
        "TODO base/kustomization.yaml:5",  # secretGenerator
        "TODO overlays/prod/kustomization.yaml:2",  # namePrefix
        "TODO overlays/prod/kustomization.yaml:3",  # commonAnnotations
        "TODO overlays/prod/kustomization.yaml:10",  # vars
        "TODO overlays/prod/kustomization.yaml:5",  # labelSelector target
    ], output
    report = (tmp_path / "out/IMPORT.md").read_text()
    assert all(t.removeprefix("TODO ") in report for t in todos)
    # Every difference comes from a TODO: the prefix renames, the Secret is not generated.
    differences = [line for line in output.splitlines() if line.startswith("  differs:")]
    assert sorted(d.split(": ")[2] for d in differences) == [
        "ConfigMap/app-config-692fk8cc28", "ConfigMap/prod-app-config-692fk8cc28", "Deployment/app",
        "Deployment/prod-app", "Secret/prod-app-secret-cf85kd65mm"], output
    assert code == 3
    # An env file Kustomize reads differently (trailing spaces) was imported as Kustomize read it.
    app = yaml.safe_load((tmp_path / "out/base/todo_layout/app.yaml").read_text())  # a top-level base/: the tree's name
    assert app["configMaps"][0]["literals"] == {"KEY": "value with trailing space   ", "INDENTED": "yes"}
    config = yaml.safe_load((tmp_path / "out/gitops-gen.yaml").read_text())
    assert config["external"] == {"configMaps": ["shared-settings"], "secrets": ["app-secret"]}


_OVERLAY_VARIANTS = {
    "namespace-only": "namespace: team\n",
    "merge-from-env-file": "configMapGenerator:\n  - {name: cfg, behavior: merge, envs: [more.env]}\n",
    "replace": "configMapGenerator:\n  - {name: cfg, behavior: replace, literals: [only=1]}\n",
    "create-and-resource": "resources: [../../base, extra.yaml]\nconfigMapGenerator:\n  - {name: extra, literals: [a=b]}\n",
    "json6902-remove-and-add": (
        "patches:\n  - target: {kind: Deployment, name: app}\n    patch: |-\n"
        "      - {op: remove, path: /spec/template/metadata/labels/extra}\n"
        "      - {op: add, path: /spec/template/spec/containers/0/args, value: [run]}\n"
    ),
    "smp-delete-item": (
        "patches:\n  - patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: app}\n"
        "      spec:\n        template:\n          spec:\n            volumes:\n              - {name: scratch, $patch: delete}\n"
    ),
    "images-new-name": "images:\n  - {name: nginx, newName: mirror.example.com/nginx}\n",
    "binary-and-unicode-files": "configMapGenerator:\n  - {name: files, files: [blob.bin, text.txt]}\n",
}


@pytest.mark.parametrize("variant", sorted(_OVERLAY_VARIANTS))
def test_small_shapes_round_trip(tmp_path: Path, variant: str) -> None:
    source = write_repo(tmp_path / "k", {
        "base/kustomization.yaml": "resources: [app.yaml]\nconfigMapGenerator:\n  - {name: cfg, literals: [a=1, b=2]}\n",
        "base/app.yaml": """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: app}
            spec:
              selector: {matchLabels: {app: app}}
              template:
                metadata: {labels: {app: app, extra: "yes"}}
                spec:
                  containers:
                    - {name: app, image: "nginx:1.27", envFrom: [{configMapRef: {name: cfg}}]}
                  volumes:
                    - {name: scratch, emptyDir: {}}
        """,
        "overlays/one/kustomization.yaml": ("" if _OVERLAY_VARIANTS[variant].startswith("resources:")
                                            else "resources: [../../base]\n") + _OVERLAY_VARIANTS[variant],
        "overlays/one/more.env": "b=3\nc=4\n",
        "overlays/one/extra.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: extra}\nspec: {ports: [{port: 80}]}\n",
        "overlays/one/blob.bin": bytes(range(256)) * 3,
        "overlays/one/text.txt": "h\u00e9llo <&> \u2028\n",
    })
    code, output = _import(source, tmp_path / "out")
    assert code == 0, output
    assert "\nTODO " not in output


def test_out_folder_must_be_new_or_empty(tmp_path: Path) -> None:
    write_repo(tmp_path / "taken", {"x.txt": "mine"})
    code, output = _import(SHAPES / "todo_layout", tmp_path / "taken")
    assert code == 1 and "is not empty" in output


def test_not_a_kustomize_tree(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("import", "kustomize", tmp_path / "empty", "--out", tmp_path / "out")
    assert result.exit_code == 1 and "no kustomization.yaml" in result.output


def test_kustomize_literal_and_env_rules() -> None:
    assert remove_quotes('"a b"') == "a b" and remove_quotes("'x'") == "x" and remove_quotes('"half') == '"half'
    assert literal_value("{{ x }}") == "{% raw %}{{ x }}{% endraw %}" and literal_value("plain") == "plain"
    text = "# c\n\n  A=1\nB=x=y \nBARE\n"
    assert kustomize_env_pairs(text) == [("A", "1"), ("B", "x=y "), ("BARE", None)]
    assert our_env_pairs("A=1\nB=x=y \n") == [("A", "1"), ("B", "x=y")]


def test_json6902_operations() -> None:
    obj = {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "a"}]}}}}
    assert _operation({"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "b"}, obj) == \
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "b"}]}}}}
    assert _operation({"op": "remove", "path": "/metadata/labels/a~1b"}) == {"metadata": {"labels": {"a/b": {"$patch": "delete"}}}}
    assert _operation({"op": "add", "path": "/spec/x", "value": {"k": 1}}) == {"spec": {"x": {"k": 1, "$patch": "replace"}}}
    assert _operation({"op": "add", "path": "/spec/containers/-", "value": {}}) is None
    assert _operation({"op": "move", "from": "/a", "path": "/b"}) is None


def test_images_become_our_images_entries_and_unmatched_ones_todos(tmp_path: Path) -> None:
    from generator.adopt.layers import Layer

    layer = Layer(tmp_path, tmp_path / "kustomization.yaml", "k/kustomization.yaml", "", {"images": [
        {"name": "nginx", "newTag": 1.27}, {"name": "r:5000/app", "digest": "sha256:ab"}, {"name": "unused", "newTag": "2"},
    ]})
    objects = [{"kind": "Deployment", "metadata": {"name": "w"}, "spec": {"template": {"spec": {"containers": [
        {"name": "a", "image": "nginx:1.25"}, {"name": "b", "image": "r:5000/app:1"}]}}}}]
    todo: list[tuple[str, str]] = []
    assert images(layer, objects, todo) == [{"name": "nginx", "newTag": "1.27"}, {"name": "r:5000/app", "digest": "sha256:ab"}]
    assert len(todo) == 1 and "'unused' matches no container" in todo[0][1]


def test_normalize_ignores_only_what_differs_on_purpose() -> None:
    ours = {"kind": "ConfigMap", "metadata": {"name": "c-1", "annotations": {"gitops-gen.io/config-name": "c"}},
            "immutable": True, "binaryData": {"b": "AAAA"}}
    theirs = {"kind": "ConfigMap", "metadata": {"name": "c-1"}, "binaryData": {"b": "AA\nAA\n"}}
    assert compare.normalize(ours) == compare.normalize(theirs)
    assert compare.compare_objects("e", [theirs], [{**ours, "data": {"x": "1"}}])[0].text == \
        "data: Kustomize None, ours {'x': '1'}" or compare.compare_objects("e", [theirs], [{**ours, "data": {"x": "1"}}])


def test_remote_resources_are_todos(tmp_path: Path) -> None:
    source = write_repo(tmp_path / "k", {
        "base/kustomization.yaml": "resources: [cm.yaml]\n",
        "base/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain}\ndata: {a: '1'}\n",
        "overlays/x/kustomization.yaml": "resources:\n  - ../../base\n  - https://github.com/example/repo//deploy?ref=v1\n",
    })
    result = run("import", "kustomize", source, "--out", tmp_path / "out", "--no-verify")
    assert result.exit_code == 0, result.output
    assert "TODO overlays/x/kustomization.yaml:3: remote resources entry 'https://github.com/example/repo//deploy?ref=v1'" \
        in result.output


def test_a_missing_resource_is_one_clear_error(tmp_path: Path) -> None:
    source = write_repo(tmp_path / "k", {"base/kustomization.yaml": "resources:\n  - gone.yaml\n"})
    result = run("import", "kustomize", source, "--out", tmp_path / "out")
    assert result.exit_code == 1
    assert result.output.startswith("error: base/kustomization.yaml:2: resources entry 'gone.yaml' does not exist")
    assert not (tmp_path / "out").exists()


from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_.-]{0,12}", fullmatch=True)
_values = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\x7f\x85\u2028\u2029\ufeff"),
                  max_size=20).filter(lambda v: v == v.strip() and "{" not in v)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(base={"A": ""}, overlay={"A": "="}, behavior="merge")  # kubectl prints `A: =` (found by hypothesis)
@given(base=st.dictionaries(_keys, _values, min_size=1, max_size=5),
       overlay=st.dictionaries(_keys, _values, max_size=3),
       behavior=st.sampled_from(["merge", "replace"]))
def test_generated_configmaps_keep_their_names(tmp_path_factory: pytest.TempPathFactory, base: dict[str, str],
                                               overlay: dict[str, str], behavior: str) -> None:
    """Random literals (unicode, quotes, `=`), merged or replaced in an overlay: the imported
    repo renders every object as Kustomize builds it, names included."""
    tmp = tmp_path_factory.mktemp("prop")
    literals = lambda d: "".join(f"      - {yaml.safe_dump(f'{k}={v}', allow_unicode=True).splitlines()[0]}\n"  # noqa: E731
                                 for k, v in d.items())
    overlay_gen = f"configMapGenerator:\n  - name: cfg\n    behavior: {behavior}\n    literals:\n{literals(overlay)}" \
        if overlay or behavior == "replace" else ""
    if behavior == "replace" and not overlay:
        overlay_gen = "configMapGenerator:\n  - name: cfg\n    behavior: replace\n    literals: [only=1]\n"
    source = write_repo(tmp / "k", {
        "base/kustomization.yaml": f"resources: [app.yaml]\nconfigMapGenerator:\n  - name: cfg\n    literals:\n{literals(base)}",
        "base/app.yaml": "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n"
                         "    - {name: c, image: busybox, envFrom: [{configMapRef: {name: cfg}}]}\n",
        "overlays/o/kustomization.yaml": "resources: [../../base]\n" + overlay_gen,
    })
    code, output = _import(source, tmp / "out")
    assert code == 0, output
