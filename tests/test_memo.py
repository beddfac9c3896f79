from pathlib import Path

import pytest

from generator.memo import Memo
from generator.yaml_io import load_documents
from tests.helpers import BASIC_APP, run, snapshot, write_repo


def parse(text: str) -> list[tuple[object, int]]:
    return load_documents(text, "x.yaml")


def test_parse_hit_returns_a_fresh_copy(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "m.pickle")
    first = memo.parse("a: {b: 1}\n", parse)
    first[0][0]["a"]["b"] = 99  # the pipeline mutates what it parsed
    memo.save()
    again = Memo(tmp_path / "m.pickle")
    assert again.parse("a: {b: 1}\n", parse) == [({"a": {"b": 1}}, 1)]
    assert again.hits == 1


def test_stale_or_corrupt_memo_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "m.pickle"
    path.write_bytes(b"not a pickle")
    assert Memo(path).parse("a: 1\n", parse) == [({"a": 1}, 1)]


def test_only_used_entries_are_kept(tmp_path: Path) -> None:
    memo = Memo(tmp_path / "m.pickle")
    memo.parse("a: 1\n", parse)
    memo.parse("b: 1\n", parse)
    memo.save()
    second = Memo(tmp_path / "m.pickle")
    second.parse("a: 1\n", parse)
    second.save()
    third = Memo(tmp_path / "m.pickle")
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
    assert any((tmp_path / "cache").rglob("*.pickle")) == (setting == "on")
