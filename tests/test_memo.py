from pathlib import Path

import pytest

from generator.io import memo as memo_module
from generator.io.memo import Memo, load_entry, store_entry
from generator.io.yaml_io import load_documents
from generator.model import Origin, Resource
from tests.helpers import BASIC_APP, run, snapshot, write_repo


def parse(text: str) -> list[tuple[object, int]]:
    return load_documents(text, "x.yaml")


def test_parse_hit_returns_a_fresh_copy(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "m.memo")
    first = memo.parse("a: {b: 1}\n", parse)
    first[0][0]["a"]["b"] = 99  # the pipeline mutates what it parsed
    memo.save()
    again = Memo(tmp_path / "m.memo")
    assert again.parse("a: {b: 1}\n", parse) == [({"a": {"b": 1}}, 1)]
    assert again.hits == 1


def test_entries_of_another_parser_are_misses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A change to the parser or its rules (yaml_io.py, readers.py) must not hand back how the
    old code read a text (a plain `1:30` in a manifest was 90, is "1:30" now)."""
    from generator.io import memo as memo_module

    memo = Memo(tmp_path / "m.memo")
    memo.parse("a: {b: 1}\n", parse)
    memo.save()
    assert Memo(tmp_path / "m.memo").warm
    monkeypatch.setattr(memo_module, "_parser_digest", lambda: b"another parser")
    assert not Memo(tmp_path / "m.memo").warm


def test_stale_or_corrupt_memo_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.memo"
    path.write_bytes(b"not a pickle")
    assert Memo(path).parse("a: 1\n", parse) == [({"a": 1}, 1)]


def test_only_used_entries_are_kept(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "m.memo")
    memo.parse("a: 1\n", parse)
    memo.parse("b: 1\n", parse)
    memo.save()
    second = Memo(tmp_path / "m.memo")
    second.parse("a: 1\n", parse)
    second.save()
    third = Memo(tmp_path / "m.memo")
    third.parse("b: 1\n", parse)
    assert third.hits == 0


@pytest.mark.parametrize("setting", ["on", "off"])
def test_render_output_identical_with_and_without_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    cold = write_repo(tmp_path / "cold", BASIC_APP)
    assert run("render", "--repo", cold, "--no-cache").exit_code == 0
    warm = write_repo(tmp_path / "warm", BASIC_APP)
    if setting == "off":
        monkeypatch.setenv("GITOPS_GEN_CACHE", "off")
    for _ in range(2):  # the second render reads the memo the first one wrote
        assert run("render", "--repo", warm).exit_code == 0
    assert snapshot(warm / "out") == snapshot(cold / "out")
    assert any((tmp_path / "cache").rglob("*.memo")) == (setting == "on")


def _configmap(data: dict[str, str]) -> Resource:

    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}
    return Resource(obj, Origin("base/a/app.yaml", 1), "a", declared="c")


def test_clean_scan_verdicts_are_remembered_findings_never(tmp_path: Path) -> None:
    from generator.errors import SecretError
    from generator.secrets.producers import scan_step

    clean, leaky = {"LOG_LEVEL": "info"}, {"DB_PASSWORD": "hunter2"}
    memo = Memo(tmp_path / "m.memo")
    scan_step([_configmap(clean)], [], memo)
    with pytest.raises(SecretError):
        scan_step([_configmap(leaky)], [], memo)
    memo.save()
    again = Memo(tmp_path / "m.memo")
    scan_step([_configmap(clean)], [], again)
    assert again.hits == 1  # not scanned again
    with pytest.raises(SecretError):  # never remembered as clean: always scanned, always refused
        scan_step([_configmap(leaky)], [], again)


def test_scan_digest_depends_on_every_field() -> None:
    from generator.secrets.scan import object_digest

    base = object_digest({"a": "1", "b": {"c": ["2"]}})
    assert base == object_digest({"a": "1", "b": {"c": ["2"]}})  # equal objects (another key order is only a miss)
    shared = "2"
    assert object_digest({"a": shared, "b": shared}) == object_digest({"a": "2", "b": "".join(["2"])})  # sharing is not seen
    variants = [{"a": "1"}, {"a": "1", "b": {"c": ["3"]}}, {"a": "1", "b": {"d": ["2"]}}, {"a": "1", "b": {"c": ["2", "2"]}}]
    assert len({base, *(object_digest(v) for v in variants)}) == 5


def test_secret_in_a_deployment_is_refused_on_a_warm_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    deployment = repo / "base" / "web" / "deployment.yaml"
    text = deployment.read_text()
    indent = text.split("image: nginx:1.27")[0].rsplit("\n", 1)[1]
    deployment.write_text(text.replace("image: nginx:1.27", f"image: nginx:1.27\n{indent}args: [--db-password, hunter2]", 1))
    result = run("render", "--repo", repo)
    assert result.exit_code == 1 and "field `spec.template.spec.containers[web].args[1]`" in result.output
    assert "hunter2" not in result.output


def test_secret_in_a_configmap_is_refused_on_a_warm_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    app_yaml = next((repo / "base").glob("*/app.yaml"))
    app_yaml.write_text(app_yaml.read_text().replace("literals:", "literals:\n      DB_PASSWORD: hunter2", 1))
    result = run("render", "--repo", repo)
    assert result.exit_code == 1 and "DB_PASSWORD" in result.output and "hunter2" not in result.output


def test_output_memo_never_hides_a_hand_edit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files known from the last render are skipped only while untouched: an edit, even one
    that keeps the size and the modification time, is seen by check and undone by render."""
    import os

    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    assert run("render", "--repo", repo).exit_code == 0  # the memo now knows every file
    assert list((tmp_path / "cache").rglob("*.out.memo"))
    good = snapshot(repo / "out")
    target = next(p for p in (repo / "out").rglob("deployment-*.yaml"))
    before = target.stat()
    text = target.read_text()
    target.write_text(text.replace("replicas: 1", "replicas: 7") if "replicas: 1" in text else text[:-2] + "x\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # same size class, same mtime
    result = run("check", "--repo", repo)
    assert result.exit_code == 1 and "stale" in result.output
    assert run("render", "--repo", repo).exit_code == 0
    assert snapshot(repo / "out") == good


def test_output_memo_is_keyed_by_what_is_emitted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    app_yaml = repo / "base" / "web" / "app.yaml"
    app_yaml.write_text(app_yaml.read_text().replace("greeting: hello", "greeting: bonjour"))
    assert run("render", "--repo", repo).exit_code == 0
    cold = write_repo(tmp_path / "cold", BASIC_APP)
    (cold / "base" / "web" / "app.yaml").write_text(app_yaml.read_text())
    assert run("render", "--repo", cold, "--no-cache").exit_code == 0
    warm, fresh = snapshot(repo / "out"), snapshot(cold / "out")
    changed = [k for k in fresh if "configmap-web-config" in k]
    assert changed and all(warm[k] == fresh[k] for k in fresh if not k.endswith("kustomization.yaml"))
    assert b"bonjour" in warm[changed[0]]


# -- the cache is data only: whatever is found in it is a miss unless this user wrote it -------


class _Payload:
    """Unpickling this runs `open(path, "w")`: proof that a planted pickle was executed."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, ...]:
        return (open, (str(self.path), "w"))


def _warm_memo(tmp_path: Path) -> Path:
    path = tmp_path / "m.memo"
    memo = Memo(path)
    memo.parse("a: {b: 1}\n", parse)
    memo.save()
    assert Memo(path).warm
    return path


def test_a_planted_pickle_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pickle

    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    repo = write_repo(tmp_path / "repo", BASIC_APP)
    assert run("render", "--repo", repo).exit_code == 0
    proof = tmp_path / "executed"
    files = list((tmp_path / "cache").rglob("*.memo"))
    assert files
    for path in files:  # every memo file, and where the pickle memos used to be
        payload = pickle.dumps(_Payload(proof))
        path.write_bytes(payload)
        path.with_suffix(".pickle").write_bytes(payload)
        assert not Memo(path).warm
    before = snapshot(repo / "out")
    result = run("render", "--repo", repo)
    assert result.exit_code == 0, result.output
    assert not proof.exists()
    assert snapshot(repo / "out") == before


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty", "old-format", "foreign-key", "garbage"])
def test_a_damaged_or_foreign_memo_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    from generator.io import memo as memo_module

    path = _warm_memo(tmp_path)
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) - 5])
    elif damage == "flipped":
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "old-format":
        path.write_bytes(data.replace(memo_module.MAGIC + memo_module._HEAD.pack(memo_module.FORMAT),
                                      memo_module.MAGIC + memo_module._HEAD.pack(memo_module.FORMAT - 1), 1))
    elif damage == "foreign-key":  # a well-formed file written by someone without this user's key
        monkeypatch.setenv(memo_module.KEY_ENV, "someone else")
        _warm_memo(tmp_path)
        monkeypatch.delenv(memo_module.KEY_ENV)
    else:
        path.write_bytes(memo_module.MAGIC + b"\xff" * 200)
    memo = Memo(path)
    assert not memo.warm
    assert memo.parse("a: {b: 1}\n", parse) == [({"a": {"b": 1}}, 1)]
    assert memo.hits == 0


def test_an_authentic_file_with_undecodable_entries_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Even a file that passes the MAC (someone holding the key) decodes as data or misses."""
    import hashlib

    from generator.io import memo as memo_module

    monkeypatch.setenv(memo_module.KEY_ENV, "shared")
    path = tmp_path / "m.memo"
    stamp = Memo(None)._stamp
    key = hashlib.sha256(b"a: {b: 1}\n").digest()
    for blob in (b"\xff\xfe not utf-8", b"{not json", b'[[{"a": 1}, "x"]]', b"7", b"[[1, 2, 3]]"):
        memo_module._store(path, stamp, [(memo_module._PARSED, key, blob)])
        memo = Memo(path)
        assert memo.warm  # the file is authentic ...
        assert memo.parse("a: {b: 1}\n", parse) == [({"a": {"b": 1}}, 1)]  # ... its entry a miss
        assert memo.hits == 0


@pytest.mark.parametrize("text", [
    "a: &x {b: 1}\nc: *x\n",  # anchors share one object between two places
    "1: one\n",  # a non-string key
    "when: 2024-01-02\n",  # a date
    "blob: !!binary aGk=\n",
    "x: .nan\n",
])
def test_documents_json_cannot_hold_exactly_are_parsed_afresh(tmp_path: Path, text: str) -> None:
    memo = Memo(tmp_path / "m.memo")
    first = memo.parse(text, parse)
    memo.save()
    again = Memo(tmp_path / "m.memo")
    second = again.parse(text, parse)
    assert again.hits == 0
    assert repr(second) == repr(first)


def test_memo_key_is_kept_outside_the_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from generator.io.memo import cache_root, memo_key

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("GITOPS_GEN_CACHE_KEY", raising=False)
    key = memo_key()
    assert key is not None and len(key) == 32 and memo_key() == key
    made = tmp_path / "config" / "gitops-gen" / "cache.key"
    assert made.stat().st_mode & 0o077 == 0
    root = cache_root()
    assert root is not None and made.parent not in (root, *root.parents)


STAMP = ("test", 1)


def test_an_entry_is_kept_and_read_back_only_under_its_key(tmp_path: Path) -> None:
    path = tmp_path / "ab" / "entry"
    store_entry(path, STAMP, b"key-1", b"value \xe2\x9c\x93")
    assert load_entry(path, STAMP, b"key-1") == b"value \xe2\x9c\x93"
    assert load_entry(path, STAMP, b"key-2") is None  # a genuine entry copied to another key's path
    assert load_entry(path, ("test", 2), b"key-1") is None  # another format or version
    assert load_entry(tmp_path / "missing", STAMP, b"key-1") is None


def test_an_entry_given_in_pieces_is_read_back_joined(tmp_path: Path) -> None:
    path = tmp_path / "entry"
    big = bytes(range(256)) * 1000  # larger than a run: written on its own
    store_entry(path, STAMP, b"k", [b"{", big, b"", b"}"])
    assert load_entry(path, STAMP, b"k") == b"{" + big + b"}"
    store_entry(path, STAMP, b"k", [])
    assert load_entry(path, STAMP, b"k") == b""


@pytest.mark.parametrize("sizes", [[0, 1, 2], [memo_module._RUN - 40, 100, 5], [memo_module._RUN * 2, 3, memo_module._RUN]])
def test_records_written_in_runs_read_back_as_they_were(tmp_path: Path, sizes: list[int]) -> None:
    """Small records are joined in runs and a large value written on its own: the file still
    holds every record, in order, under one HMAC."""
    path = tmp_path / "m.memo"
    records = [(1, b"key-%d" % i, bytes([i]) * size) for i, size in enumerate(sizes * 20)]
    memo_module._store(path, STAMP, records)
    assert memo_module._read_records(path, STAMP) == records
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 1  # the HMAC covers every piece
    path.write_bytes(bytes(data))
    assert memo_module._read_records(path, STAMP) == []


@pytest.mark.parametrize("damage", ["plain", "truncated", "flipped", "other_key", "empty"])
def test_a_planted_or_damaged_entry_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    path = tmp_path / "entry"
    store_entry(path, STAMP, b"k", b"kind: ConfigMap\n")
    data = path.read_bytes()
    if damage == "plain":  # what the Helm memo used to hold: trusted as it was
        path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: planted}\n")
    elif damage == "truncated":
        path.write_bytes(data[:-3])
    elif damage == "flipped":
        path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # written by someone holding another key: forged as well as anyone without ours can
        with monkeypatch.context() as other:
            other.setenv("GITOPS_GEN_CACHE_KEY", "someone else's key")
            store_entry(path, STAMP, b"k", b"kind: Secret\n")
    assert load_entry(path, STAMP, b"k") is None


def test_base_manifests_parsed_once_are_shared_until_cleared(tmp_path: Path) -> None:
    from generator.io import memo as memo_module
    from generator.steps.load import share_base_parses

    app = tmp_path / "base" / "web"
    app.mkdir(parents=True)
    manifest = "apiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    (app / "service.yaml").write_text(manifest)
    (app / "broken.yaml").write_text("a: [\n")  # left to the worker, which reports it
    (app / "app.yaml").write_text("configMaps: []\n")

    def never(text: str) -> list[tuple[object, int]]:
        raise AssertionError("parsed again")

    share_base_parses(tmp_path, ["web", "missing-app"])
    try:
        for memo in (Memo(None), Memo(tmp_path / "m")):
            docs = memo.parse(manifest, never, "manifest")
            assert docs == load_documents(manifest, "x", "manifest")
            docs[0][0]["kind"] = "changed"  # a fresh copy each time
            assert memo.parse(manifest, never, "manifest")[0][0]["kind"] == "Service"
            assert memo.parse("configMaps: []\n", never, "config") == [({"configMaps": []}, 1)]
        with pytest.raises(AssertionError):  # the same text under other rules is another entry
            Memo(None).parse(manifest, never, "config")
    finally:
        memo_module.clear_shared()
    with pytest.raises(AssertionError):
        Memo(None).parse(manifest, never, "manifest")


def test_several_environments_render_as_each_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent's shared parses change nothing: a parallel render equals one env at a time."""
    import shutil

    from bench import synth

    together = synth.write_repos(tmp_path / "s", 3, 3, "realistic").ours
    alone = tmp_path / "alone"
    shutil.copytree(together, alone)
    monkeypatch.setenv("GITOPS_GEN_CACHE_DIR", str(tmp_path / "cache"))
    assert run("render", "--repo", together, "--jobs", "2").exit_code == 0
    for env in ("env-0", "env-1", "env-2"):
        assert run("render", "--repo", alone, "--env", env, "--no-cache").exit_code == 0
    assert snapshot(together / "out") == snapshot(alone / "out")
    assert len(snapshot(together / "out")) == 3 * (9 * 3 + 1)
