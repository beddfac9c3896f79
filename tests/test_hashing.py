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
