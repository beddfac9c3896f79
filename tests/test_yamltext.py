"""Minimal YAML edits (generator/edit/yamltext.py), as properties over the edit corpus: any value,
any file style, LF or CRLF: the data changes exactly as intended, only the edited line changes
(block style), and doing it again changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from generator.edit.yamltext import YamlText

CORPUS = Path(__file__).parent / "edit_corpus"
BLOCK = ["block_comments.yaml", "quoting.yaml", "indent4_no_newline.yaml"]
ALL = sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "anchors.yaml")
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"), max_size=30)
keys = st.from_regex(r"[A-Za-z_][-._a-zA-Z0-9]{0,20}", fullmatch=True)


def _text(name: str, crlf: bool) -> str:
    text = (CORPUS / name).read_text()
    return text.replace("\n", "\r\n") if crlf else text


def _changed_lines(a: str, b: str) -> int:
    return sum(1 for x, y in zip(a.splitlines(), b.splitlines()) if x != y) + abs(len(a.splitlines()) - len(b.splitlines()))


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(BLOCK), st.booleans(), values)
def test_set_a_scalar_changes_one_line(name: str, crlf: bool, value: str) -> None:
    before = _text(name, crlf)
    doc = YamlText(before, name)
    doc.set(("configMaps", "web-config", "literals", "LOG_LEVEL"), value)
    data = yaml.safe_load(doc.text)
    assert data["configMaps"]["web-config"]["literals"]["LOG_LEVEL"] == value
    assert _changed_lines(before, doc.text) == 1
    assert not crlf or doc.text.count("\n") == doc.text.count("\r\n")
    again = YamlText(doc.text, name)
    again.set(("configMaps", "web-config", "literals", "LOG_LEVEL"), value)
    assert again.text == doc.text


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.sampled_from(ALL), st.booleans(), keys, values)
def test_add_a_key_keeps_everything_else(name: str, crlf: bool, key: str, value: str) -> None:
    before = _text(name, crlf)
    old = yaml.safe_load(before)
    doc = YamlText(before, name)
    doc.set(("configMaps", "web-config", "literals", key), value)
    new = yaml.safe_load(doc.text)
    expected = old
    overlay = expected["configMaps"]["web-config"] or {}
    overlay.setdefault("literals", {})[key] = value
    expected["configMaps"]["web-config"] = overlay
    assert new == expected
    if name != "flow.yaml":  # elsewhere: insertions (and a null becoming a mapping), nothing rewritten
        kept = [line for line in before.splitlines() if line.strip() and "web-config" not in line]
        assert all(line in doc.text.splitlines() for line in kept)


@pytest.mark.parametrize("name", ALL)
def test_append_and_delete_list_items(name: str) -> None:
    doc = YamlText(_text(name, False), name)
    doc.append(("images",), {"name": "redis", "newTag": "7"})
    assert yaml.safe_load(doc.text)["images"][-1] == {"name": "redis", "newTag": "7"}
    count = len(yaml.safe_load(doc.text)["images"])
    doc.delete(("images", count - 1))
    assert yaml.safe_load(doc.text) == yaml.safe_load(_text(name, False))
