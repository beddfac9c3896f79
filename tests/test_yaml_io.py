from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.errors import LoadError
from generator.io.yaml_io import _Loader, dump_document, load_documents

reference = yaml.resolver.Resolver()
fast = _Loader("")

scalars = st.text(max_size=12) | st.sampled_from(
    ["", "~", "null", "Null", "true", "False", "yes", "on", "0", "-1", "0x1F", "0o17", "1e3", ".5", "-.inf",
     ".NaN", "2001-12-14", "2001-12-14t21:59:43.10-05:00", "<<", "=", "1_000", "12:30:45", "+12"]
)


@given(scalars, st.booleans(), st.booleans())
def test_fast_resolver_agrees_with_pyyaml(value: str, plain: bool, quoted_ok: bool) -> None:
    implicit = (plain, quoted_ok)
    assert fast.resolve(yaml.ScalarNode, value, implicit) == reference.resolve(yaml.ScalarNode, value, implicit)


def test_collection_tags() -> None:
    for kind in (yaml.SequenceNode, yaml.MappingNode):
        assert fast.resolve(kind, None, (True, False)) == reference.resolve(kind, None, (True, False))


def documents_of(text: st.SearchStrategy[str], max_leaves: int) -> st.SearchStrategy[Any]:
    """JSON-like documents whose strings (values and keys) come from `text`."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(text, children, max_size=4),
        max_leaves=max_leaves,
    )


json_like = documents_of(scalars, max_leaves=20)


@given(json_like)
def test_round_trip_matches_pyyaml(value: Any) -> None:
    text = dump_document(value)
    docs = load_documents(text, "x.yaml")
    loaded = docs[0][0] if docs else None  # a null document is dropped
    assert loaded == yaml.safe_load(text) == value


def test_merge_keys_still_work() -> None:
    [(doc, _)] = load_documents("base: &b {a: 1, b: 2}\nchild:\n  <<: *b\n  b: 3\n", "x.yaml")
    assert doc["child"] == {"a": 1, "b": 3}


def test_duplicate_keys_are_errors() -> None:
    with pytest.raises(LoadError, match="duplicate key 'a'"):
        load_documents("a: 1\nb: 2\na: 3\n", "x.yaml")
    # the same text under different tags is not a duplicate
    [(doc, _)] = load_documents("1: int\n'1': str\n", "x.yaml")
    assert doc == {1: "int", "1": "str"}


def test_dumper_uses_literal_blocks_for_multiline() -> None:
    assert dump_document({"k": "a\nb\n"}) == "k: |\n  a\n  b\n"


def test_duplicate_written_key_next_to_a_merge_is_still_an_error() -> None:
    with pytest.raises(LoadError, match="duplicate key 'b'"):
        load_documents("base: &b {a: 1}\nchild:\n  <<: *b\n  b: 3\n  b: 4\n", "x.yaml")


# --- the fast paths must agree with PyYAML/libyaml byte for byte ---------------------------

from generator.io.yaml_io import _libyaml_dump  # noqa: E402

tricky_text = st.text(
    alphabet=st.sampled_from(list("a0 \n:#-'\"?,[]{}&*!|>%@`~.=<\t\ré") + ["\u2028", "\x85", "\ufeff"]),
    max_size=10,
)
documents = documents_of(scalars | tricky_text, max_leaves=25)


@given(documents)
def test_fast_emitter_writes_what_libyaml_writes(value: Any) -> None:
    assert dump_document(value) == _libyaml_dump(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": "x\n\ny", "b": " lead\nx", "c": "\nx", "d": "a\n", "e": "a\n\n", "f": "trailing \nx", "g": "\n"},
        [{"a": "x\ny"}, "p\nq\n", ["r\ns"], [[{"k": "v\nw"}]]],
        {"k": [{"a": {"b": "m\nn", "c": [], "d": {}}}], "": "empty key", "long" * 40: 1},
        {"ports": [8080, "8080", "-1", "- x", "-x", "a: b", "a:b", "a #b", "a#b", "? x", "?x", ":", "x:"]},
        {"s": ["---", "--- x", "...", "yes", "No", "~", "null", "<<", "=", "1.5", "2001-12-14", "0x1F", "1_000"]},
    ],
)
def test_fast_emitter_examples(value: Any) -> None:
    assert dump_document(value) == _libyaml_dump(value)


plain_texts = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c", "1", "0x1F", "yes", "~", "<<"]),
        st.sampled_from(["1", "-0", "012", "0x1F", "+3", "1_0", "1.5", "true", "No", "~", "null", "", "x", "'q'",
                         "2001-12-14", "[1, 2]", "{a: 1}", "!!str 5", "!!binary aGk=", "|\n  lit"]),
    ),
    max_size=6,
)


@given(plain_texts)
def test_fast_loader_builds_what_pyyaml_builds(pairs: list[tuple[str, str]]) -> None:
    text = "".join(f"{k}: {v}\n" for k, v in pairs) or "{}\n"
    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError:
        with pytest.raises(LoadError):
            load_documents(text, "x.yaml")
        return
    keys = [k for k, _ in pairs if k != "<<"]
    if len(set(keys)) < len(keys):  # a key written twice: ours refuses it, PyYAML keeps the last
        with pytest.raises(LoadError):
            load_documents(text, "x.yaml")
        return
    [(doc, _)] = load_documents(text, "x.yaml")
    assert doc == expected
    assert [type(v) for v in doc.values()] == [type(v) for v in expected.values()]
