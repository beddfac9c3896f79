import hashlib
import json
import subprocess

from hypothesis import given
from hypothesis import strategies as st

from generator.steps.hashing import canonical, content_hash, hashed_name

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._", min_size=1, max_size=20)
data_st = st.dictionaries(keys, st.text(max_size=50), max_size=8)


def test_hand_computed_value() -> None:
    # printf '%s' '{"binaryData":{},"data":{"a":"1","b":"two"}}' | sha256sum | cut -c1-10
    blob = b'{"binaryData":{},"data":{"a":"1","b":"two"}}'
    assert canonical({"b": "two", "a": "1"}, {}) == blob
    assert content_hash({"b": "two", "a": "1"}, {}) == hashlib.sha256(blob).hexdigest()[:10]
    assert content_hash({"b": "two", "a": "1"}, {}) == "dcb291787d"  # computed with the command above


def test_matches_sha256sum_tool() -> None:
    data = {"redis_url": "redis://r.prod.svc.cluster.local:6379", "LOG": "warn\nmore\n", "é": "ü"}
    out = subprocess.run(["sha256sum"], input=canonical(data, {"bin": "AAE="}), capture_output=True, check=True)
    assert out.stdout.decode()[:12] == content_hash(data, {"bin": "AAE="}, 12)


def test_matches_jq_canonical_form() -> None:
    doc = {"data": {"z": "1", "a": "x y", "m": "multi\nline\n"}, "binaryData": {}}
    jq = subprocess.run(["jq", "-cjS", "."], input=json.dumps(doc).encode(), capture_output=True)
    if jq.returncode == 0:  # jq is optional on a machine; the python form above is normative
        assert jq.stdout == canonical(doc["data"], doc["binaryData"])


def test_length_and_name() -> None:
    assert len(content_hash({}, {}, 6)) == 6
    assert len(content_hash({}, {}, 64)) == 64
    assert hashed_name("exchange-engine-config", "3f2a9c1b07") == "exchange-engine-config-3f2a9c1b07"


@given(data_st, data_st)
def test_independent_of_key_order(data: dict[str, str], binary: dict[str, str]) -> None:
    reversed_data = dict(reversed(list(data.items())))
    reversed_binary = dict(reversed(list(binary.items())))
    assert content_hash(data, binary) == content_hash(reversed_data, reversed_binary)


@given(data_st, keys, st.text(max_size=20))
def test_changes_when_any_value_changes(data: dict[str, str], key: str, value: str) -> None:
    changed = {**data, key: value}
    if changed != data:
        assert content_hash(changed, {}) != content_hash(data, {})


@given(data_st, keys)
def test_changes_when_a_key_is_removed_or_moved_to_binary(data: dict[str, str], key: str) -> None:
    if key in data:
        rest = {k: v for k, v in data.items() if k != key}
        assert content_hash(rest, {}) != content_hash(data, {})
        assert content_hash(rest, {key: data[key]}) != content_hash(data, {})


# --- hashStyle: kustomize, checked against the real kustomize --------------------------------

from pathlib import Path  # noqa: E402

import base64  # noqa: E402
import os  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402

from generator.steps.hashing import kustomize_base64_lines, kustomize_hash, suffix_for, suffix_matches  # noqa: E402
from tests.kubectl import find_kubectl, kustomize_build  # noqa: E402

# (file name, bytes): text, unicode, characters Go's JSON escapes, controls, binary of every
# base64 length around kyaml's 70-column break (68, 72 characters), empty files.
_FILES: dict[str, bytes] = {
    "plain.txt": b"hello\n",
    "unicode.txt": "h\u00e9llo \u00fcn\u00ef \u4e2d\u6587 \U0001f600\n".encode(),
    "html.txt": b"<a href='x'>&amp;</a> > <\n",
    "seps.txt": "line\u2028sep\u2029para\n".encode(),
    "ctl.txt": b"tab\there\rcr \x01\x1f \x08\x0c end",
    "quotes.txt": b'say "hi" \\ back\\slash',
    "empty.txt": b"",
    "bin51.dat": bytes(range(200, 251)),
    "bin52.dat": bytes(range(200, 252)),
    "bin_big.dat": bytes(range(256)) * 9,
    "bin_small.dat": b"\xff\xfe\x00",
    "latin1.txt": "caf\u00e9".encode("latin-1"),
}
_ENV = b"# comment\n\nA=1\nB=two words\nC=x=y\nD=\nE=\xc3\xa9\n"
_GENERATORS: list[dict[str, object]] = [
    {"name": "lit", "literals": ["a=1", "b=two"]},
    {"name": "lit-same-data", "literals": ["a=1", "b=two"]},  # the name is not hashed
    {"name": "lit-unicode", "literals": ["k=\u00e9\u00e8 \u2603", "url=http://x?a=1&b=<2>"]},
    {"name": "lit-empty", "literals": ["empty="]},
    {"name": "lit-multiline", "literals": ["m=one\ntwo\n"]},
    {"name": "env", "envs": ["vars.env"]},
    {"name": "files-renamed", "files": ["conf=plain.txt", "other=unicode.txt"]},
    {"name": "with-options", "literals": ["a=1"],
     "options": {"labels": {"team": "x"}, "annotations": {"note": "reviewed"}, "immutable": True}},
    *({"name": f"file-{n.split('.')[0].replace('_', '-')}", "files": [n]} for n in sorted(_FILES)),
    {"name": "mixed", "files": ["bin_big.dat", "plain.txt", "bin52.dat"], "literals": ["z=last"]},
]


def _kustomize_repo(root: Path) -> None:
    for name, blob in _FILES.items():
        (root / name).write_bytes(blob)
    (root / "vars.env").write_bytes(_ENV)
    kustomization = {"generatorOptions": {"labels": {"from": "options"}, "annotations": {"a": "b"}},
                     "configMapGenerator": _GENERATORS}
    (root / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, allow_unicode=True))


def _kubectls() -> list[Path]:
    """Every kubectl at hand: the one on PATH (kustomize v5.5 here) and the pinned v1.35 (v5.7)."""
    found = {find_kubectl()}
    cached = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gitops-gen/kubectl-v35/kubectl"
    if cached.is_file():
        found.add(cached.resolve())
    return sorted(found)


@pytest.mark.parametrize("kubectl", _kubectls(), ids=lambda p: p.parent.name)
def test_kustomize_hash_names_as_kustomize_does(tmp_path: Path, kubectl: Path) -> None:
    _kustomize_repo(tmp_path)
    objects = kustomize_build(kubectl, tmp_path)
    assert len(objects) == len(_GENERATORS)
    for obj in objects:
        data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
        assert isinstance(data, dict) and isinstance(binary, dict)
        declared, _, suffix = obj["metadata"]["name"].rpartition("-")
        # kustomize writes binaryData wrapped at 70 columns; ours is flat: the hash must not care.
        flat = {k: "".join(v.split()) for k, v in binary.items()}
        assert kustomize_hash(data, flat) == suffix, declared
        assert kustomize_hash(data, binary) == suffix, declared
        assert suffix_matches(suffix, data, flat)
        assert suffix_for("kustomize", data, flat, 12) == suffix
    names = {o["metadata"]["name"].rpartition("-")[0]: o["metadata"]["name"].rpartition("-")[2] for o in objects}
    assert names["lit"] == names["lit-same-data"]


def test_kustomize_base64_lines() -> None:
    short = base64.b64encode(bytes(51)).decode()
    assert kustomize_base64_lines(short) == short and len(short) == 68
    long = base64.b64encode(bytes(52)).decode()
    assert kustomize_base64_lines(long) == long[:70] + "\n" + long[70:] + "\n"
    assert kustomize_base64_lines(kustomize_base64_lines(long)) == kustomize_base64_lines(long)


@given(data_st)
def test_kustomize_hash_alphabet_and_length(data: dict[str, str]) -> None:
    suffix = kustomize_hash(data, {})
    assert len(suffix) == 10 and set(suffix) <= set("2456789bcdfghkmt")
    assert suffix_matches(suffix, data, {})
    assert suffix_matches(content_hash(data, {}, 8), data, {})
