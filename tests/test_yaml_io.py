from typing import Any

import pytest
import yaml
from hypothesis import example, given
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


def _exact_json_copy(docs: Any) -> bool:
    """Whether JSON gives `docs` back with every value and type (keys included) unchanged."""
    import json

    def same(a: Any, b: Any) -> bool:
        if type(a) is not type(b):
            return False
        if isinstance(a, dict):
            return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
        if isinstance(a, list):
            return len(a) == len(b) and all(map(same, a, b))
        return bool(a == b)

    try:
        back = json.loads(json.dumps(docs, allow_nan=False))
    except (TypeError, ValueError):
        return False
    return same([list(d) for d in docs], back)


@given(plain_texts, st.sampled_from(["", "- [a, {1: x}]\n", "when: 2001-12-14\n", "f: 1.5\n", "n: .nan\n", "s: !!set {a}\n"]))
def test_json_exact_is_told_only_when_json_gives_the_documents_back(pairs: list[tuple[str, str]], more: str) -> None:
    text = "".join(f"{k}: {v}\n" for k, v in pairs) or "{}\n"
    try:
        docs = load_documents(text + "---\n" + more if more else text, "x.yaml")
    except LoadError:
        return
    if docs.json_exact:
        assert _exact_json_copy(docs)


def test_json_exact_examples() -> None:
    assert load_documents("a: {b: [1, true, null, x]}\n", "x.yaml").json_exact
    for text in ("1: x\n", "a: 1.5\n", "a: 2001-12-14\n", "a: !!binary aGk=\n", "a: &x [1]\nb: *x\n", "a: {null: 1}\n"):
        assert not load_documents(text, "x.yaml").json_exact, text


# --- nesting depth: refused in block, flow and mixed styles, whatever libyaml's own limit -----

from generator.io.yaml_io import MAX_DEPTH, _needs_bounds_check  # noqa: E402


def _nest(kinds: list[str], leaf: Any) -> Any:
    for kind in reversed(kinds):
        leaf = {"k": leaf} if kind == "map" else [leaf]
    return leaf


def _depth(node: yaml.Node) -> int:
    deepest, stack = 0, [(node, 1)]
    while stack:
        n, d = stack.pop()
        deepest = max(deepest, d)
        if isinstance(n, yaml.MappingNode):
            stack += [(c, d + 1) for pair in n.value for c in pair]
        elif isinstance(n, yaml.SequenceNode):
            stack += [(c, d + 1) for c in n.value]
    return deepest


def _kinds(low: int) -> st.SearchStrategy[list[str]]:
    return st.integers(low, 260).flatmap(lambda n: st.lists(st.sampled_from(["map", "seq"]), min_size=n, max_size=n))


@given(_kinds(1), _kinds(0), st.booleans())
@example(["map"] * 90, ["seq"] * 150, True)  # 90 block levels over 150 flow levels: 241 deep
@example(["seq"] * 60, ["map"] * 150, False)
def test_documents_deeper_than_the_limit_are_always_checked(block: list[str], flow: list[str], tight: bool) -> None:
    inner = yaml.dump(_nest(flow, "x"), default_flow_style=True, width=1_000_000).strip() if flow else "x"
    if tight:  # mappings one column deeper each: the least indentation block style allows
        text = "".join(" " * i + "k:\n" for i in range(len(block))) + " " * len(block) + inner + "\n"
    else:
        text = yaml.dump(_nest(block, "LEAF"), default_flow_style=False, width=1_000_000).replace("LEAF", inner)
    depth = _depth(yaml.compose(text, Loader=yaml.CSafeLoader))
    if depth > MAX_DEPTH:
        assert _needs_bounds_check(text)
        with pytest.raises(LoadError, match=f"nests deeper than {MAX_DEPTH} levels"):
            load_documents(text, "x.yaml")
    else:
        load_documents(text, "x.yaml")


@given(_kinds(1), _kinds(0), st.integers(0, 3))
@example(["map"] * 190, ["seq"] * 20, 2)
def test_depth_walk_reports_what_the_full_walk_reports(block: list[str], flow: list[str], siblings: int) -> None:
    """Documents without aliases get the depth-only walk: the same verdict, at the same line."""
    from generator.io.yaml_io import _check_bounds, _check_depth

    inner = yaml.dump(_nest(flow, "x"), default_flow_style=True, width=1_000_000).strip() if flow else "x"
    docs = [_nest(block, "LEAF") for _ in range(siblings + 1)]  # separate objects: no anchors
    text = yaml.dump(docs if siblings else docs[0], default_flow_style=False, width=1_000_000)
    assert "&" not in text
    node = yaml.compose(text.replace("LEAF", inner), Loader=yaml.CSafeLoader)
    verdicts = []
    for walk in (_check_bounds, _check_depth):
        try:
            walk(node)
            verdicts.append(None)
        except LoadError as exc:
            verdicts.append((exc.message, exc.line))
    assert verdicts[0] == verdicts[1]


def test_libyaml_own_depth_limit_gives_our_message() -> None:
    # libyaml >= 0.2.6 stops at 1,000 levels by itself; older ones and PyYAML's pure-Python
    # parser do not: the message is ours either way.
    with pytest.raises(LoadError, match=f"nests deeper than {MAX_DEPTH} levels"):
        load_documents("a: " + "[" * 1500 + "]" * 1500 + "\n", "x.yaml")


# --- input rules: typed as written, no characters kustomize refuses -------------------------

@pytest.mark.parametrize(
    "text",
    ["a: NO\n", "NO: a\n", "a: 0022\n", "a: 1:30\n", "a: y\n", "a: [On]\n", "a: 0x1F\n", "a: 1_000\n",
     "a: 2024-01-01\n", "a: True\n", "a: -0\n", "a: 1_0.5\n", "a: +1\n"],
)
def test_config_rules_refuse_spellings_yaml_types(text: str) -> None:
    with pytest.raises(LoadError, match="unquoted"):
        load_documents(text, "x.yaml", "config")
    load_documents(text, "x.yaml")  # no rules: as PyYAML reads it


@pytest.mark.parametrize("text", ['a: "NO"\n', "a: 'y'\n", "a: 5\n", "a: -3\n", "a: true\n", "a: null\n", "a: ~\n",
                                  "a: 0.5\n", "a: |\n  NO\n", "a: x\n", "a: 1e3\n", "a: 08544\n"])
def test_config_rules_take_what_every_reader_agrees_on(text: str) -> None:
    load_documents(text, "x.yaml", "config")


def test_manifest_rules_type_only_configmap_data() -> None:
    configmap = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, labels: {a: 'b'}}\ndata: {k: %s}\n"
    with pytest.raises(LoadError, match="`Off` is read as the boolean false"):
        load_documents(configmap % "Off", "x.yaml", "manifest")
    load_documents(configmap % '"Off"', "x.yaml", "manifest")
    load_documents("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {paused: Off}\n", "x.yaml", "manifest")


@pytest.mark.parametrize("text,value", [("1:30", "1:30"), ("-1:30:00", "-1:30:00"), ("1:30.5", "1:30.5"),
                                        ("2024-01-05", "2024-01-05"), ("2001-12-14t21:59:43.10-05:00",
                                                                         "2001-12-14t21:59:43.10-05:00"),
                                        ("=", "=")])
def test_manifests_read_base60_timestamps_and_equals_as_go_yaml_does(text: str, value: str) -> None:
    """The text, as kubectl reads it (tests/test_readers.py checks kubectl itself); with an
    anchor in the file too (PyYAML's generic constructor then builds it)."""
    doc = f"apiVersion: v1\nkind: Pod\nmetadata: {{name: x, annotations: {{a: {text}}}}}\n"
    for source in (doc, doc + "spec: {x: &y 1}\n"):
        got = load_documents(source, "x.yaml", "manifest")[0][0]
        assert got["metadata"]["annotations"]["a"] == value
    assert load_documents(f"a: {text}\n", "x.yaml")[0][0]["a"] != value or text == "="  # out/ read back: PyYAML's
    assert load_documents(f"a: {text}\n", "x.yaml", go_text=True)[0][0]["a"] == value  # helm's output


@pytest.mark.parametrize("escape", ["\\x7f", "\\x80", "\\N", "\\u0085", "\\x9f", "\\uFFFE", "\\uffff"])
def test_input_rules_refuse_escaped_characters_kustomize_refuses(escape: str) -> None:
    text = f'a: "x{escape}y"\n'
    for rules in ("config", "manifest"):
        with pytest.raises(LoadError, match="kubectl kustomize` refuses or rewrites it"):
            load_documents(text, "x.yaml", rules)  # type: ignore[arg-type]
    load_documents(text, "x.yaml")  # our own output read back: no rules


# --- aliases need anchors: a text without one skips the alias walk -------------------------------

from generator.io.yaml_io import _may_alias  # noqa: E402


def _has_alias(text: str) -> bool:
    """Whether libyaml composes the text with a node used twice (an alias)."""
    seen: set[int] = set()
    for root in yaml.compose_all(text, Loader=yaml.CSafeLoader):
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if id(node) in seen:
                return True
            seen.add(id(node))
            if isinstance(node, yaml.MappingNode):
                stack += [c for pair in node.value for c in pair]
            elif isinstance(node, yaml.SequenceNode):
                stack += node.value
    return False


_leaf = st.one_of(st.text(alphabet="ab &*-:[]{}#'\"", max_size=6), st.integers())
_trees = st.recursive(_leaf, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text("kq", min_size=1, max_size=2), c, max_size=3)), max_leaves=12)


@given(_trees, st.booleans(), st.sampled_from([None, True, False]), st.integers(0, 2))
def test_every_text_with_an_alias_is_seen(shared: Any, twice: bool, flow: bool | None, where: int) -> None:
    # yaml.dump writes an object used twice as an anchor and an alias, in block or flow style
    doc: Any = [shared, shared] if twice else {"a": shared, "b": [shared]} if where == 1 else [{"x": shared}, shared]
    text = yaml.dump(doc, default_flow_style=flow, width=1_000_000)
    if _has_alias(text):
        assert _may_alias(text)


@pytest.mark.parametrize("text", [
    "&a x\n", "--- &a x\n", "- &a x\n- *a\n", "a: &b x\nc: *b\n", "[&a x, *a]\n", "{k: &a x, j: *a}\n",
    "{? &a x : 1, j: *a}\n", "a:\t&b x\nc: *b\n", "\ufeff&a x\n", "a: [1,&b x, *b]\n",
    "a: !!str &b x\nc: *b\n", "a: &b-c_9 x\nc: *b-c_9\n",
])
def test_anchors_anywhere_are_seen(text: str) -> None:
    assert _has_alias(text) or text.startswith(("&a x", "--- &a", "\ufeff&a"))
    assert _may_alias(text)


@given(st.lists(st.sampled_from(["&", "&&", "a", "-", " ", "\n", "\t", "[", "]", "{", "}", ",", ":", "?", "*",
                                  "\ufeff", "\u2003", "\u00a0", "x1", "."]), max_size=12).map("".join))
def test_anchor_search_is_the_rule_as_written(text: str) -> None:
    """`_ANCHOR` (the `&` first, for speed) finds what the rule says: `&` and an anchor character,
    at the start or after white space, a flow indicator, `:`, `?` or the byte-order mark."""
    import re

    from generator.io.yaml_io import _ANCHOR

    rule = re.compile(r"(?<![^\s\[\]{},:?\ufeff])&[0-9A-Za-z_-]")
    assert [m.span() for m in _ANCHOR.finditer(text)] == [m.span() for m in rule.finditer(text)]


@pytest.mark.parametrize("text", [
    'schedule: "17 3 * * *"\n', "args: [sh, -c, 'a && b']\n", "url: http://x/?a=1&b=2\n", "k: a&b\n",
])
def test_texts_without_anchors_are_not_walked(text: str) -> None:
    assert not _may_alias(text)
    assert load_documents(text, "x.yaml") == [(yaml.load(text, Loader=yaml.CSafeLoader), 1)]


def test_an_undefined_alias_is_an_error_without_the_walk() -> None:
    # why the gate may look for anchors only: libyaml refuses an alias to no anchor
    with pytest.raises(LoadError, match="undefined alias"):
        load_documents("a: *nothing\n", "x.yaml")


def test_alias_bomb_behind_a_cron_schedule_is_still_refused() -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)]
    text = 'schedule: "* * * * *"\n' + "\n".join(levels) + "\n"
    with pytest.raises(LoadError, match="alias bomb"):
        load_documents(text, "x.yaml")


def _key_order(value: Any) -> Any:
    """The structure with every mapping as its list of (key, value) pairs: equal when the
    values and the key order are equal."""
    if isinstance(value, dict):
        return [(k, _key_order(v)) for k, v in value.items()]
    if isinstance(value, list):
        return [_key_order(v) for v in value]
    return (type(value).__name__, value)


@given(documents)
def test_dump_exact_reads_back_as_the_object_itself(value: Any) -> None:
    from generator.io.yaml_io import dump_exact

    text = dump_exact(value)
    if text is None:  # left to libyaml
        return
    assert text == dump_document(value)
    [(doc, line)] = load_documents(text, "x.yaml")
    assert line == 1
    assert _key_order(doc) == _key_order(value)  # same types (no 1 for True), same key order


def test_dump_exact_declines_what_the_fast_emitter_leaves_to_libyaml() -> None:
    from generator.io.yaml_io import dump_exact

    for value in ({"f": 1.5}, {"k": "é"}, {1: "int key"}, {"t": ("a",)}, {"s": "tab\there"}):
        assert dump_exact(value) is None
    assert dump_exact({"a": [1, True, None, "x\ny\n"]}) == "a:\n- 1\n- true\n- null\n- |\n  x\n  y\n"
