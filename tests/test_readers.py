"""What the real readers make of our output: unit tests of readers.py, and the oracle, a real
kubectl: strings rendered as ConfigMap keys and values, labels, annotations and env values go
through `kubectl kustomize out/<env>` and kubectl's decoder and must arrive unchanged."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generator.io.readers import KUSTOMIZE_UNSAFE, go_types, kustomize_unsafe
from generator.io.yaml_io import dump_document
from tests.helpers import run, write_repo
from tests.kubectl import find_kubectl

# Spellings some reader types (YAML 1.1 words and numbers, go-yaml's Go number syntax, dates),
# YAML indicators, and characters that need escapes or survive only some styles.
ADVERSARIAL = [
    "08544", "09", "1e3", "-.5", "+.5", ".5", "0o17", "0O17", "0X1F", "0x_1F", "0b101", "-0b1", "1_000", "+1", "-0",
    "1.", "1e-3", "0.5e+3", "1E5", "99999999999999999999", "y", "Y", "n", "N", "yes", "No", "on", "OFF", "true",
    "False", "TRUE", "~", "null", "NULL", "", ".inf", "-.Inf", ".NaN", "1:30", "12:30:45", "2024-3-5",
    "2024-03-05", "2024-03-05T10:00:00Z", "2024-3-5 1:2:3", "<<", "=", " ", "- x", "? x", ": x", "#x", "a #b",
    "a: b", "'q'", '"q"', "|", "> x", "%x", "@x", "`x", "!x", "&x", "*x", "[x]", "{x}", "---", "...", "-", "?",
    ":", " lead", "trail ", "\ttab", "a\nb", "a\n", "\n", "\n\nx", " \nx", "x \ny", "a\r\nb", "\r", "é", "\u2028",
    "x\u2029y", "\ufeffx", "\xa0", "a\u200bb", "\x00", "\x1b[0m", "\U0001F600", "\\", "\\n",
]
_ALPHABET = st.sampled_from(
    list("a0Z9 -_.:#'\"?,[]{}&*!|>%@`~=<+\\\t\n\r") + ["\u2028", "\u2029", "\ufeff", "\xa0", "é", "\x00", "\x1b",
                                                       "\U0001F600", "\u3000"]
)
texts = st.sampled_from(ADVERSARIAL) | st.text(_ALPHABET, max_size=10) | st.lists(
    st.sampled_from(ADVERSARIAL), min_size=2, max_size=3
).map("".join)
# A ConfigMap literal containing Jinja2 syntax is a template; leave those out.
values = texts.filter(lambda s: "{{" not in s and "{%" not in s and "{#" not in s)
# ConfigMap keys: IsConfigMapKey's alphabet, numeric-looking ones above all.
keys = st.sampled_from(
    ["09", "08544", "1e3", "-.5", "0o17", "0X1F", "y", "n", "N", "1_000", "2024-3-5", "true", "null", "NO", "on",
     ".inf", "-1", "1.0", "0b1", "12", "x.09", "-", "_", ".a"]
) | st.from_regex(r"[-._a-zA-Z0-9]{1,8}", fullmatch=True).filter(lambda k: k not in (".", "..") and not k.startswith(".."))
# Label values: Kubernetes' syntax, with the spellings readers type.
label_values = st.sampled_from(["09", "08544", "1e3", "0o17", "0X1F", "y", "n", "1_000", "2024-3-5", "true", "1", "a"])


def quoted(s: str) -> str:
    """`s` as a YAML double-quoted scalar with every non-printable-ASCII character escaped."""
    out = []
    for c in s:
        o = ord(c)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= o < 0x7F:
            out.append(c)
        elif o <= 0xFF:
            out.append(f"\\x{o:02x}")
        elif o <= 0xFFFF:
            out.append(f"\\u{o:04x}")
        else:
            out.append(f"\\U{o:08x}")
    return '"' + "".join(out) + '"'


def _repo(root: Path, data: dict[str, str], labels: list[str], annotations: list[str], env: list[str]) -> Path:
    literals = "".join(f"      {quoted(k)}: {quoted(v)}\n" for k, v in data.items())
    meta_labels = "".join(f"    l{i}: {quoted(v)}\n" for i, v in enumerate(labels))
    meta_annotations = "".join(f"    test.example.com/a{i}: {quoted(v)}\n" for i, v in enumerate(annotations))
    env_vars = "".join(f"            - {{name: E{i}, value: {quoted(v)}}}\n" for i, v in enumerate(env))
    return write_repo(root, {
        "base/web/app.yaml": "configMaps:\n  - name: web-config\n    literals:\n" + (literals or "      {}\n"),
        "base/web/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
            + ("  labels:\n" + meta_labels if labels else "")
            + ("  annotations:\n" + meta_annotations if annotations else "")
            + "spec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
            "    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n"
            + ("          env:\n" + env_vars if env else "")
            + "          envFrom: [{configMapRef: {name: web-config}}]\n"
        ),
        "environments/dev/env.yaml": "namespace: dev\n",
    })


def _kubectl(*args: str) -> str:
    proc = subprocess.run([str(find_kubectl()), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _decoded(files: list[Path]) -> dict[str, dict[str, Any]]:
    """The objects of `files` as kubectl decodes them, by kind."""
    args = [a for f in files for a in ("-f", str(f))]
    text = _kubectl("label", "--local", *args, "fidelity=1", "-o", "json")
    items: list[dict[str, Any]] = []
    decoder, at = json.JSONDecoder(), 0
    while text[at:].strip():  # one JSON object per file or a List, one after the other
        obj, end = decoder.raw_decode(text, at + len(text[at:]) - len(text[at:].lstrip()))
        items += obj["items"] if obj.get("kind") == "List" else [obj]
        at = end
    return {item["kind"]: item for item in items}


def _through_kubectl(data: dict[str, str], labels: list[str], annotations: list[str], env: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = _repo(Path(tmp) / "repo", data, labels, annotations, env)
        result = run("render", "--repo", repo, "-j", "1")
        assert result.exit_code == 0, result.output
        out = repo / "out" / "dev"
        built = Path(tmp) / "built.yaml"
        built.write_text(_kubectl("kustomize", str(out)), encoding="utf-8")
        direct = sorted(p for p in out.rglob("*.yaml") if p.name != "kustomization.yaml")
        for objects in (_decoded([built]), _decoded(direct)):  # through kustomize, and as Argo CD reads
            assert objects["ConfigMap"].get("data", {}) == data
            deployment = objects["Deployment"]
            meta = deployment["metadata"]
            assert [meta["labels"][f"l{i}"] for i in range(len(labels))] == labels
            annotations_back = meta.get("annotations", {})
            assert [annotations_back[f"test.example.com/a{i}"] for i in range(len(annotations))] == annotations
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            assert [e.get("value", "") for e in container.get("env", [])] == env


def _no_credential(data: dict[str, str]) -> bool:
    """What the credential scan refuses to write (a key `PW` with a value, say) is not this
    test's business: tests/test_scan.py has it."""
    from generator.secrets.scan import scan_fields

    return not scan_fields({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data})


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(keys, values, max_size=12).filter(_no_credential),
    st.lists(label_values, max_size=4),
    st.lists(texts, max_size=10),
    st.lists(texts, max_size=10),
)
@example(  # every adversarial string at once, in every position that takes it
    {f"k{i}": s for i, s in enumerate(ADVERSARIAL)} | {k: "v" for k in ("09", "1e3", "y", "0X1F", "1_000", "null")},
    ["09", "1e3", "0o17", "y", "n", "1_000", "2024-3-5"],
    ADVERSARIAL,
    ADVERSARIAL,
)
def test_kubectl_reads_back_every_string(
    data: dict[str, str], labels: list[str], annotations: list[str], env: list[str]
) -> None:
    _through_kubectl(data, labels, annotations, env)


@pytest.mark.parametrize("s", ADVERSARIAL)
def test_a_plain_scalar_is_a_string_to_every_reader(s: str) -> None:
    """Whatever the emitter writes plain, PyYAML reads as the same string and go-yaml would too."""
    text = dump_document({"k": s})
    plain = text[len("k: "):-1]
    if not plain.startswith(("'", '"', "|")):
        assert yaml.safe_load(text) == {"k": s}
        assert not go_types(plain)


@pytest.mark.parametrize(
    "s",
    ["08544", "09", "1e3", "-.5", "0o17", "0X1F", "y", "N", "yes", "on", "2024-3-5", "1_000", "+1", ".inf", "-.5e3",
     "0b11", "0x_1", "99999999999999999999", "~", "", "<<", "2024-01-01T00:00:00Z", "-0b1", "1."],
)
def test_go_types_what_go_yaml_types(s: str) -> None:
    assert go_types(s)


@pytest.mark.parametrize("s", ["a", "1a", "0x", "0xG", "1e", "e3", ".", "-", "1.2.3", "2024-1", "12:30", "v1", "yes!",
                               "On.", "._5", "--1", "0b2", "2024-03-05x"])
def test_go_types_leaves_strings_alone(s: str) -> None:
    assert not go_types(s)


def test_kustomize_unsafe_characters() -> None:
    for c in "\x7f\x80\x85\x9f\ufffe\uffff":
        assert KUSTOMIZE_UNSAFE.search(f"a{c}b")
    for c in "\x00\t\x1b\xa0\u2028\ufeff\ufffd\U0001F600é":
        assert not KUSTOMIZE_UNSAFE.search(f"a{c}b")


@given(st.text(st.sampled_from("ab \n\x00\x7e\x7f\x80\x85\x9f\xa0é\ufffe\uffff\ud800\U0001F600"), max_size=10))
def test_kustomize_unsafe_is_the_regex_search(text: str) -> None:
    fast, regex = kustomize_unsafe(text), KUSTOMIZE_UNSAFE.search(text)
    assert (fast and (fast.start(), fast.group())) == (regex and (regex.start(), regex.group()))


def test_a_plain_equals_sign_is_the_string_kubectl_reads(tmp_path: Path) -> None:
    """YAML 1.1's "value key" `=`: PyYAML resolves a plain `=` to a type it cannot construct;
    kubectl (go-yaml) reads the string "=". A manifest and a ConfigMap with it render, and what
    reaches kubectl from out/ is what kubectl reads in the source."""
    source = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: eq\ndata:\n  a: =\n  b: x\n---\n"
              "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
              "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
              "    spec:\n      containers:\n        - name: c\n          image: nginx:1.25\n"
              "          args: [=, &arg =]\n          env: [{name: E, value: =}, {name: F, value: *arg}]\n")
    ours, theirs = _source_and_output(tmp_path, source)
    assert theirs["ConfigMap"]["data"] == {"a": "=", "b": "x"} == ours["ConfigMap"]["data"]
    for objects in (ours, theirs):
        container = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["=", "="]
        assert container["env"] == [{"name": "E", "value": "="}, {"name": "F", "value": "="}]


def _source_and_output(tmp_path: Path, source: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """`source` as one app's manifests, rendered: (the output's objects, the source's objects),
    both as kubectl decodes them, by kind."""
    repo = write_repo(tmp_path / "repo", {"base/web/manifests.yaml": source,
                                          "environments/dev/env.yaml": "namespace: dev\n"})
    result = run("render", "--repo", repo, "-j", "1")
    assert result.exit_code == 0, result.output
    ours = _decoded(sorted(p for p in (repo / "out" / "dev").rglob("*.yaml") if p.name != "kustomization.yaml"))
    return ours, _decoded([repo / "base" / "web" / "manifests.yaml"])


def test_base60_and_timestamps_in_a_manifest_reach_kubectl_as_written(tmp_path: Path) -> None:
    """`1:30` and `2024-01-05` unquoted are text to kubectl (go-yaml has no base 60, and keeps a
    timestamp's text): the render reads them so and commits them quoted, so kubectl decodes the
    output exactly as it decodes the source (they were numbers and dates to PyYAML)."""
    source = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
              "  selector: {matchLabels: {app: web}}\n  template:\n"
              "    metadata: {labels: {app: web}, annotations: {window: 1:30, build: 2024-01-05}}\n"
              "    spec:\n      containers:\n        - name: c\n          image: nginx:1.25\n"
              "          args: [1:30, 2024-01-05, 2001-12-14t21:59:43.10-05:00, 1:30.5, -12:00]\n"
              "          env: [{name: A, value: 190:20:30}]\n")
    decoded = _source_and_output(tmp_path, source)
    ours, theirs = decoded[0]["Deployment"], decoded[1]["Deployment"]
    for part in (("metadata", "annotations"), ("spec", "containers")):
        assert ours["spec"]["template"][part[0]][part[1]] == theirs["spec"]["template"][part[0]][part[1]]
    assert theirs["spec"]["template"]["metadata"]["annotations"] == {"window": "1:30", "build": "2024-01-05"}
