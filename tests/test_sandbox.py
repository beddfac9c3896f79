"""The template sandbox: only the documented names resolve, and every bound is an error."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.errors import TemplateError
from generator.steps import sandbox
from generator.steps.templating import Templates

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates(ROOT)


def render(templates: Templates, text: str, **context: object) -> str:
    return templates.render(text, {"env": "dev", "app": "web", **context}, "t.j2")


def test_exactly_the_documented_names_resolve(templates: Templates) -> None:
    env = templates.env
    assert sorted(env.globals) == sorted(sandbox.GLOBALS)
    assert {n for n in env.filters if " " not in n} == set(sandbox.FILTERS)
    assert sorted(env.tests) == sorted(sandbox.TESTS)
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("<!-- section:templates -->"): readme.index("<!-- /section:templates -->")]
    documented = set(re.findall(r"`([^`\s]+)`", section))
    for name in (*sandbox.GLOBALS, *sandbox.FILTERS, *sandbox.TESTS):
        assert name in documented, f"{name} is not in the README's template section"


@pytest.mark.parametrize("text, message", [
    ("{{ namespace }}", "undefined template variable 'namespace' (environment 'dev' sets no `namespace:`"),
    ("{% set n = namespace(a=1) %}", "undefined template variable 'namespace'"),
    ("{{ lipsum() }}", "undefined template variable 'lipsum'"),
    ("{{ cycler(1, 2).next() }}", "undefined template variable 'cycler'"),
    ("{{ [1, 2] | random }}", "No filter named 'random'"),
])
def test_undocumented_names_do_not_resolve(templates: Templates, text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(templates, text)


def test_namespace_is_the_environment_namespace_when_set(templates: Templates) -> None:
    assert render(templates, "{{ namespace }}", namespace="prod") == "prod"


@pytest.mark.parametrize("text, message", [
    ("{{ 10 ** (10 ** 8) }}", "integer over 4,096 bits"),
    ("{{ (2 ** 4000) * (2 ** 4000) }}", "integer over 4,096 bits"),
    ("{{ 'x' * 10 ** 10 }}", "repeated string or list"),
    ("{{ ['x' * 1000000] * 1000 }}", "repeated string or list"),
    ("{% set s = 'x' * 3000000 %}{{ s ~ s }}", "~ concatenation"),
    ("{% set s = 'x' * 3000000 %}{{ s + s }}", "a concatenation"),
    ("{{ '%999999999s' % 'x' }}", "%-formatted string"),
    ("{{ '%*s' % (999999999, 'x') }}", "%-formatted string"),
    ("{{ '%999999999s' | format('x') }}", "%-formatted string"),
    ("{{ '{:>999999999}'.format('x') }}", "formatted string"),
    ("{{ '{:>{w}}'.format('x', w=999999999) }}", "formatted string"),
    ("{{ 'x' | center(999999999) }}", "centered string"),
    ("{{ 'x'.ljust(999999999) }}", "str.ljust"),
    ("{{ ('a\nb' * 1000) | indent(999999) }}", "indented string"),
    ("{% set s = 'x' * 3000000 %}{{ s | replace('x', 'yy') }}", "replaced string"),
    ("{% set s = 'x' * 1000000 %}{{ [s, s, s, s, s] | join }}", "joined string"),
    ("{% set s = 'x' * 1000000 %}{{ ''.join([s, s, s, s, s] | list) }}", "str.join result"),
    ("{{ [1] | batch(999999999, 0) | list }}", "a batch"),
    ("{{ range(10 ** 9) | length }}", "range of 1,000,000,000 items"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "1,000,000 steps"),
    ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}", "1,000,000 steps"),
    ("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "nest more than 100 deep"),
    ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output is over 16,777,216"),
])
def test_bounds_are_errors(templates: Templates, text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(message)) as caught:
        render(templates, text)
    assert caught.value.file == "t.j2"


def test_time_budget(templates: Templates, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "MAX_SECONDS", 0.0)
    with pytest.raises(TemplateError, match="rendered for more than 0 seconds"):
        render(templates, "{% for i in range(5000) %}{% endfor %}")


def test_the_line_of_a_bound(templates: Templates) -> None:
    with pytest.raises(TemplateError) as caught:
        render(templates, "a\nb\n{{ 'x' * 10 ** 10 }}\n")
    assert caught.value.line == 3


def test_ordinary_templates_still_work(templates: Templates) -> None:
    text = (
        "{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}"
        "{% for x in xs %}{{ loop.index }}/{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %}"
        "{% for x in [] %}{% else %}none{% endfor %}"
        "{% for node in tree recursive %}[{{ node.n }}{{ loop(node.c) }}]{% endfor %}"
        "|{{ xs | join('-') }}|{{ '%03d' | format(7) }}|{{ '{}:{}'.format('a', 1) }}|{{ 'a' ~ 1 }}"
        "|{{ d | tojson }}|{{ d | to_yaml }}|{{ 2 ** 10 }}|{{ 'ab' * 2 }}|{{ [1] + [2] }}"
        "|{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}|{{ '+'.join(['a', 'b'] | map('upper')) }}"
    )
    tree = [{"n": 1, "c": [{"n": 2, "c": []}]}]
    out = render(templates, text, d={"b": 2, "a": 1}, xs=[1, 2, 3], tree=tree)
    assert out == ('a=1;b=2;1/3,2/3,3/3none[1[2]]|1-2-3|007|a:1|a1|{"a": 1, "b": 2}|b: 2\na: 1|1024|abab|[1, 2]|<1>|A+B')


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                    max_leaves=30))
def test_weight_is_at_least_the_printed_length(value: object) -> None:
    # The estimate guards memory: it must never be far below what printing builds.
    assert sandbox.weight(value, 10**9) * 2 + 64 >= len(str(value))
