"""Every ConfigMap source kind, overlays, binary data, opt-out, and plain manifests."""

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.steps.hashing import content_hash
from tests.helpers import BASIC_APP, deployment, run, write_repo


def render_cm(tmp_path: Path, files: dict[str, str | bytes], name: str = "web-config", env: str = "dev") -> dict[str, Any]:
    repo = write_repo(tmp_path, {**BASIC_APP, **files})
    result = run("render", "--repo", repo, "--env", env, "--stdout")
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d["kind"] == "ConfigMap"]
    found = [d for d in docs if d["metadata"].get("annotations", {}).get("gitops-gen.io/config-name", d["metadata"]["name"]) == name]
    assert len(found) == 1, docs
    return found[0]


def test_literals_hashed_and_immutable(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {})
    data = {"LOG_LEVEL": "info", "greeting": "hello"}
    assert cm["data"] == data
    assert cm["immutable"] is True
    assert cm["metadata"]["name"] == f"web-config-{content_hash(data, {})}"
    assert cm["metadata"]["namespace"] == "dev"


def test_files_with_rename_dirs_and_envs(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": """
            configMaps:
              - name: web-config
                files: [nginx.conf, custom-key=conf/other.txt]
                dirs: [conf.d]
                envs: [app.env]
        """,
        "base/web/nginx.conf": "server {}\n",
        "base/web/conf/other.txt": "x=1\n",
        "base/web/conf.d/a.properties": "a=1\n",
        "base/web/conf.d/b.properties": "b=2\n",
        "base/web/conf.d/.hidden": "skipped\n",
        "base/web/app.env": "# comment\nLOG_LEVEL=debug\n\nURL=http://x?a=b\n",
    })
    assert cm["data"] == {
        "nginx.conf": "server {}\n",
        "custom-key": "x=1\n",
        "a.properties": "a=1\n",
        "b.properties": "b=2\n",
        "LOG_LEVEL": "debug",
        "URL": "http://x?a=b",
    }


def test_non_utf8_goes_to_binary_data(tmp_path: Path) -> None:
    blob = bytes([0, 159, 146, 150, 255])
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "configMaps: [{name: web-config, files: [logo.bin], literals: {greeting: hello, LOG_LEVEL: x}}]\n",
        "base/web/logo.bin": blob,
    })
    assert base64.b64decode(cm["binaryData"]["logo.bin"]) == blob
    assert "logo.bin" not in cm["data"]


def test_templated_literal_and_j2_file(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": """
            vars: {port: 6379}
            configMaps:
              - name: web-config
                literals: {redis_url: "redis://redis.{{ namespace }}.svc.cluster.local:{{ port }}", greeting: a, LOG_LEVEL: b}
                files: [settings.ini.j2]
        """,
        "base/web/settings.ini.j2": "[env]\nname = {{ env }}\n",
    })
    assert cm["data"]["redis_url"] == "redis://redis.dev.svc.cluster.local:6379"
    assert cm["data"]["settings.ini"] == "[env]\nname = dev\n"


def test_overlay_adds_changes_removes(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "environments/dev/env.yaml": """
            namespace: dev
            configMaps:
              web-config:
                literals: {LOG_LEVEL: debug, only_here: "yes"}
                files: [extra.txt]
                remove: [greeting]
        """,
        "environments/dev/extra.txt": "from the env\n",
    })
    assert cm["data"] == {"LOG_LEVEL": "debug", "only_here": "yes", "extra.txt": "from the env\n"}


def test_values_spelled_as_yaml(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "configMaps: [{name: web-config, literals: {replicas: 3, debug: true, greeting: x, LOG_LEVEL: 'y'}}]\n",
    })
    assert cm["data"]["replicas"] == "3" and cm["data"]["debug"] == "true"


def test_opt_out_keeps_plain_name_and_mutable(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "configMaps: [{name: web-config, hash: false, literals: {greeting: x, LOG_LEVEL: 'y'}}]\n",
    })
    assert cm["metadata"]["name"] == "web-config"
    assert "immutable" not in cm


def test_opt_out_read_through_env_warns_on_stderr(tmp_path: Path) -> None:
    # BASIC_APP reads web-config through envFrom: a mutable ConfigMap there never reaches running pods.
    repo = write_repo(tmp_path, {**BASIC_APP, "base/web/app.yaml": "configMaps: [{name: web-config, hash: false, literals: {a: b}}]\n"})
    result = run("render", "--repo", repo, "--env", "dev", "--stdout")
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: base/web/deployment.yaml:")
    assert "reads ConfigMap 'web-config', which is not hashed (hash: false), through env/envFrom" in result.stderr
    assert "warning" not in result.stdout


def test_environment_can_change_opt_out(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "environments/dev/env.yaml": "namespace: dev\nconfigMaps: {web-config: {hash: false}}\n",
    })
    assert cm["metadata"]["name"] == "web-config"


def test_plain_manifest_is_hashed_and_keeps_metadata(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "{}\n",
        "base/web/config-map.yml": """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: web-config
              labels: {team: exchange}
            data:
              LOG_LEVEL: info
              port: 8080
        """,
    })
    assert cm["metadata"]["name"] == f"web-config-{content_hash({'LOG_LEVEL': 'info', 'port': '8080'}, {})}"
    assert cm["metadata"]["labels"] == {"team": "exchange"}
    assert cm["immutable"] is True


def test_plain_manifest_data_is_not_templated(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "{}\n",
        "base/web/config-map.yml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: web-config}
            data: {LOG_LEVEL: info, tmpl: "Hello {{ user }}"}
        """,
    })
    assert cm["data"]["tmpl"] == "Hello {{ user }}"


def test_plain_manifest_opt_out_annotation(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "{}\n",
        "base/web/config-map.yml": """
            apiVersion: v1
            kind: ConfigMap
            metadata:
              name: web-config
              annotations: {gitops-gen.io/hash: "false"}
            data: {LOG_LEVEL: info}
        """,
    })
    assert cm["metadata"]["name"] == "web-config"


def test_hash_length_per_repo_and_env(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {"gitops-gen.yaml": "hashLength: 16\n"})
    assert len(cm["metadata"]["name"]) == len("web-config-") + 16
    cm = render_cm(tmp_path, {"environments/dev/env.yaml": "namespace: dev\nhashLength: 7\n"})
    assert len(cm["metadata"]["name"]) == len("web-config-") + 7


def test_hash_ignores_source_order_and_style(tmp_path: Path) -> None:
    a = render_cm(tmp_path / "a", {"base/web/app.yaml": "configMaps: [{name: web-config, literals: {greeting: hello, LOG_LEVEL: info}}]\n"})
    b = render_cm(tmp_path / "b", {"base/web/app.yaml": "configMaps:\n- name: web-config\n  literals:\n    'LOG_LEVEL': \"info\"\n    greeting: >-\n      hello\n"})
    assert a["metadata"]["name"] == b["metadata"]["name"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"base/web/app.yaml": "configMaps: [{name: web-config, literals: {a: '1'}, envs: [x.env]}]\n", "base/web/x.env": "a=2\n"}, "key 'a' is given twice"),
        ({"base/web/app.yaml": "configMaps: [{name: web-config, envs: [x.env]}]\n", "base/web/x.env": "novalue\n"}, "expected KEY=VALUE"),
        ({"environments/dev/env.yaml": "configMaps: {web-config: {remove: [nope]}}\n"}, "`remove` names key 'nope'"),
        ({"environments/dev/env.yaml": "configMaps: {other-config: {literals: {a: b}}}\n"}, "overlay targets ConfigMap 'other-config'"),
        ({"base/web/app.yaml": "configMaps: [{name: web-config, literals: {'bad key': x}}]\n"}, "invalid ConfigMap key 'bad key'"),
        ({"base/web/app.yaml": "configMaps: [{name: web-config, literals: {ratio: 0.5}}]\n"}, "must be a string"),
    ],
)
def test_bad_configmaps(tmp_path: Path, files: dict[str, str], message: str) -> None:
    repo = write_repo(tmp_path, {**BASIC_APP, "base/web/deployment.yaml": deployment("web", "containers: [{name: web, image: x}]"), **files})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert message in result.output
    assert not (repo / "out").exists()


# --- env files as `kubectl create configmap --from-env-file` reads them ---------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from generator.errors import ConfigMapError  # noqa: E402
from generator.steps.configmaps import env_entries, key_problem  # noqa: E402
from tests.kubectl import find_kubectl  # noqa: E402

ENV_LINES = [
    "A=1", "B= 2 ", "  C=x", "\tD=y", "E=a=b", "F=x\u2028y", "G=\x85z", "H=", "I= ", "# comment", "   # indented",
    "", "   ", "\x0cJ=1", "\x85K=2", "\xa0L=3", "\u3000M=4", "N='q' # not a comment", 'O="x"', "P=\x0cf", "Q=\x1cq",
    "R=\\n", "S=é", "T=1\r", "U=\r\r", "V=\ufeffv", "bad key=1", "1X=1", "W =1", "X.y-z=1", "_=1", "=v",
]
env_texts = st.tuples(
    st.lists(st.sampled_from(ENV_LINES), min_size=1, max_size=8),
    st.sampled_from(["\n", "\r\n"]),
    st.booleans(),  # a BOM
    st.booleans(),  # a final newline
).map(lambda t: ("\ufeff" if t[2] else "") + t[1].join(t[0]) + (t[1] if t[3] else ""))


def _kubectl_env(tmp_path: Path, text: str) -> dict[str, str] | None:
    import json
    import subprocess

    env_file = tmp_path / "k.env"
    env_file.write_bytes(text.encode("utf-8"))
    proc = subprocess.run(
        [str(find_kubectl()), "create", "configmap", "x", f"--from-env-file={env_file}", "--dry-run=client", "-o", "json"],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin"},
    )
    return json.loads(proc.stdout).get("data", {}) if proc.returncode == 0 else None


@settings(max_examples=25, deadline=None)
@given(env_texts)
def test_env_files_read_as_kubectl_reads_them(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    expected = _kubectl_env(tmp_path_factory.mktemp("env"), text)
    try:
        entries = env_entries(text, "k.env")
    except ConfigMapError:
        assert expected is None, text  # kubectl refuses it too
        return
    keys = [k for _, k, _ in entries]
    if len(set(keys)) < len(keys):
        assert expected is None  # kubectl: "another key by that name already exists"
        return
    assert expected == {k: v for _, k, v in entries}


def test_env_file_line_without_equals_is_an_error_not_the_environment() -> None:
    # kubectl would read JUST_A_WORD from the environment of whoever runs it.
    with pytest.raises(ConfigMapError, match="expected KEY=VALUE"):
        env_entries("A=1\nJUST_A_WORD\n", "k.env")


def test_env_file_splits_on_newlines_only(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "configMaps: [{name: web-config, envs: [app.env]}]\n",
        "base/web/app.env": "\ufeffA=x\u2028y\x0cz\nB=1\r\n",
    })
    assert cm["data"] == {"A": "x\u2028y\x0cz", "B": "1"}


# --- ConfigMap keys exactly as Kubernetes' IsConfigMapKey ----------------------------------

@pytest.mark.parametrize("key", [".", "..", "..x", "abc\n", "a b", "a/b", "", "x" * 254, "é"])
def test_keys_kubernetes_refuses(key: str) -> None:
    assert key_problem(key) is not None


@pytest.mark.parametrize("key", ["a", ".a", "a..b", "a.", "-", "_", "09", "x" * 253, "A-b_c.d"])
def test_keys_kubernetes_takes(key: str) -> None:
    assert key_problem(key) is None


# --- characters kustomize refuses or rewrites -----------------------------------------------

def test_data_file_with_kustomize_refused_characters_goes_to_binary_data(tmp_path: Path) -> None:
    content = "a\x7fb\x85c\x9f\n".encode()
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "configMaps: [{name: web-config, files: [term.cfg], literals: {a: b}}]\n",
        "base/web/term.cfg": content,
    })
    assert base64.b64decode(cm["binaryData"]["term.cfg"]) == content
    assert "term.cfg" not in cm["data"]


@pytest.mark.parametrize("source", ["literal", "env"])
def test_text_value_with_kustomize_refused_character_is_an_error(tmp_path: Path, source: str) -> None:
    files: dict[str, str | bytes] = (
        {"base/web/app.yaml": 'configMaps: [{name: web-config, literals: {a: "x\\x7fy"}}]\n'}
        if source == "literal"
        else {"base/web/app.yaml": "configMaps: [{name: web-config, envs: [a.env]}]\n", "base/web/a.env": "A=x\x85y\n"}
    )
    repo = write_repo(tmp_path, {**BASIC_APP, **files})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert "kubectl kustomize` refuses or rewrites it" in result.output


# --- keys and values typed as written --------------------------------------------------------

def test_keys_keep_their_written_spelling(tmp_path: Path) -> None:
    cm = render_cm(tmp_path, {
        "base/web/app.yaml": "configMaps: [{name: web-config, literals: {true: a, 12: b, 'False': c, n0: 7}}]\n",
    })
    assert cm["data"] == {"true": "a", "12": "b", "False": "c", "n0": "7"}


@pytest.mark.parametrize(
    ("literals", "message"),
    [
        ("{NO: norway, 'False': y}", "`NO` is read as the boolean false"),
        ("{COUNTRY: NO}", "`NO` is read as the boolean false"),
        ("{UMASK: 0022}", "`0022` is read as the number 18"),
        ("{T: 1:30}", "`1:30` is read as the number 90"),
        ("{X: 0x1F}", "`0x1F` is read as the number 31"),
        ("{NUM: 1_000}", "`1_000` is read as the number 1000"),
        ("{A: y}", "`y` is a boolean in YAML 1.1"),
        ("{D: 2024-01-05}", "`2024-01-05` is read as a date"),
        ("{1: a, '1': b}", "key '1' is given twice"),
        ("{true: a, 'true': b}", "key 'true' is given twice"),
        ("{~: a}", "a key must be a string, got nothing"),
        ("{1.5: a}", "a key must be a string, got a number with a fraction"),
    ],
)
def test_spellings_yaml_types_are_errors(tmp_path: Path, literals: str, message: str) -> None:
    repo = write_repo(tmp_path, {**BASIC_APP, "base/web/app.yaml": f"configMaps: [{{name: web-config, literals: {literals}}}]\n"})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert "base/web/app.yaml:1:" in result.output and message in result.output, result.output


def test_plain_configmap_data_typed_as_written(tmp_path: Path) -> None:
    repo = write_repo(tmp_path, {**BASIC_APP, "base/web/cm.yaml": """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: plain}
        data:
          ok: "NO"
          bad: Off
    """})
    result = run("render", "--repo", repo)
    assert result.exit_code == 1
    assert "base/web/cm.yaml:6:" in result.output and "`Off` is read as the boolean false" in result.output


# --- hashStyle: kustomize ----------------------------------------------------------------------

def _names(tmp_path: Path, files: dict[str, str | bytes], env: str = "dev") -> dict[str, str]:
    """Rendered ConfigMap name and the Deployment's reference, by declared name."""
    repo = write_repo(tmp_path, {**BASIC_APP, **files})
    result = run("render", "--repo", repo, "--env", env, "--stdout")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    names = {d["metadata"]["annotations"]["gitops-gen.io/config-name"]: d["metadata"]["name"]
             for d in docs if d["kind"] == "ConfigMap"}
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]["configMapRef"]["name"] == names["web-config"]
    return names


_DATA = {"LOG_LEVEL": "info", "greeting": "hello"}


def test_hash_style_kustomize_per_repo(tmp_path: Path) -> None:
    from generator.steps.hashing import kustomize_hash

    names = _names(tmp_path, {"gitops-gen.yaml": "hashStyle: kustomize\nhashLength: 12\n"})
    assert names["web-config"] == f"web-config-{kustomize_hash(_DATA, {})}"  # hashLength does not apply


def test_hash_style_environment_declaration_and_overlay_precedence(tmp_path: Path) -> None:
    from generator.steps.hashing import kustomize_hash

    second = {"LOG_LEVEL": "debug"}
    files: dict[str, str | bytes] = {
        "base/web/app.yaml": """
            configMaps:
              - name: web-config
                literals: {LOG_LEVEL: info, greeting: hello}
              - name: other
                literals: {LOG_LEVEL: debug}
                hashStyle: gitops-gen
        """,
        "environments/dev/env.yaml": "namespace: dev\nhashStyle: kustomize\n",
        "environments/prod/env.yaml": "namespace: prod\nhashStyle: kustomize\nconfigMaps:\n  web-config: {hashStyle: gitops-gen}\n",
    }
    dev = _names(tmp_path / "a", files)
    assert dev == {"web-config": f"web-config-{kustomize_hash(_DATA, {})}", "other": f"other-{content_hash(second, {})}"}
    prod = _names(tmp_path / "b", files, env="prod")
    assert prod == {"web-config": f"web-config-{content_hash(_DATA, {})}", "other": f"other-{content_hash(second, {})}"}


def test_hash_style_kustomize_binary_data(tmp_path: Path) -> None:
    from generator.steps.hashing import kustomize_hash

    blob = bytes(range(256))
    files: dict[str, str | bytes] = {
        "base/web/app.yaml": "configMaps:\n  - {name: web-config, files: [blob.bin], hashStyle: kustomize}\n",
        "base/web/blob.bin": blob,
    }
    names = _names(tmp_path, files)
    assert names["web-config"] == f"web-config-{kustomize_hash({}, {'blob.bin': base64.b64encode(blob).decode()})}"


def test_hash_style_kustomize_versions_are_retained(tmp_path: Path) -> None:
    """A superseded version named in kustomize's style is recognized as a valid retained version."""
    repo = write_repo(tmp_path, {**BASIC_APP, "gitops-gen.yaml": "hashStyle: kustomize\n"})
    assert run("render", "--repo", repo).exit_code == 0
    write_repo(repo, {"base/web/app.yaml": "configMaps:\n  - {name: web-config, literals: {LOG_LEVEL: warn}}\n"})
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (repo / "out/dev/web").iterdir())
    assert len([f for f in files if f.startswith("configmap-web-config-")]) == 1, files
    assert run("check", "--repo", repo).exit_code == 0


def test_switching_one_configmap_to_plain_hex_retains_the_kustomize_version(tmp_path: Path) -> None:
    """README: switch one ConfigMap at a time; the version named in Kustomize's style stays in out/."""
    from generator.steps.hashing import kustomize_hash

    repo = write_repo(tmp_path, {**BASIC_APP, "gitops-gen.yaml": "hashStyle: kustomize\n"})
    assert run("render", "--repo", repo).exit_code == 0
    write_repo(repo, {"base/web/app.yaml": """
        configMaps:
          - name: web-config
            literals: {LOG_LEVEL: info, greeting: hello}
            hashStyle: gitops-gen
    """})
    assert run("render", "--repo", repo).exit_code == 0
    current = yaml.safe_load((repo / "out/dev/web/configmap-web-config.yaml").read_text())
    assert current["metadata"]["name"] == f"web-config-{content_hash(_DATA, {})}"
    retained = yaml.safe_load((repo / f"out/dev/web/configmap-web-config-{kustomize_hash(_DATA, {})}.yaml").read_text())
    assert retained["metadata"]["annotations"]["gitops-gen.io/superseded-by"] == current["metadata"]["name"]
    assert run("check", "--repo", repo).exit_code == 0
