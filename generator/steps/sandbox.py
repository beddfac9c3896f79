"""The Jinja2 sandbox templates run in: only the documented names, and bounded work.

Templates arrive in pull requests and render in CI, so besides Jinja2's own sandbox (no Python
internals, no mutation of lists and dicts) a render is bounded in steps, time, recursion,
integer size and string size. Each bound is a `Limit` error naming the template; the numbers
are in the README ("Errors"). How each is kept:

- **steps**: every loop iteration (each `for` iterable is wrapped when the template is
  parsed) and every guarded operator counts one step, every call ten; the wall clock is read every
  1,024 steps and at every output, so a template that loops, recurses or computes for too long
  stops within a fraction of a second of its budget.
- **integers**: `**` and `*` on integers are refused before Python computes a result over
  `MAX_INT_BITS` (`10**10**8` would otherwise run for minutes inside one C call).
- **strings and lists**: `*`, `+`, `~`, `%`, `str.format`, the padding and joining filters and
  str methods refuse a result over `MAX_STRING` characters before building it; what a value
  would print as is estimated without building it (`weight`).
- **output**: every `{{ }}` value counts toward `MAX_PRODUCED` (all expression output, also
  inside macros whose result is thrown away), static text inside loops counts once per
  iteration, and the rendered text is cut at `MAX_OUTPUT`.
- **recursion**: at most `MAX_DEPTH` nested calls (macros calling macros).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.visitor import NodeTransformer

MAX_STEPS = 1_000_000  # loop iterations + guarded operators + 10 per call, per template render
CALL_STEPS = 10  # a call (macro, method) costs about ten loop iterations
MAX_SECONDS = 10.0  # wall clock per template render (includes count toward their includer)
MAX_RANGE = 100_000  # items of one `range(...)`
MAX_DEPTH = 100  # nested calls (macro recursion)
MAX_INT_BITS = 4096  # integers computed by `*` and `**` (about 1,233 decimal digits)
MAX_STRING = 4 * 1024 * 1024  # characters (or items) of one string or list built by an operator or filter
MAX_OUTPUT = 16 * 1024 * 1024  # characters of one template's rendered text
MAX_PRODUCED = 64 * 1024 * 1024  # characters of all `{{ }}` output of one render, macros included

_LOOP = "gitops-gen loop"  # filter names a template cannot spell (a space): only our AST uses them
_CONCAT = "gitops-gen concat"

# The documented context (README, "Templates"): exactly these resolve, nothing else.
GLOBALS = ("range", "dict")
FILTERS = (
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby", "indent",
    "int", "items", "join", "last", "length", "list", "lower", "map", "max", "min", "pprint",
    "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr",
    "slice", "sort", "string", "striptags", "sum", "title", "to_yaml", "tojson", "trim",
    "truncate", "unique", "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
)
TESTS = (
    "!=", "<", "<=", "==", ">", ">=", "boolean", "callable", "defined", "divisibleby", "eq",
    "equalto", "escaped", "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in",
    "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne", "none", "number",
    "odd", "sameas", "sequence", "string", "test", "true", "undefined", "upper",
)


class Limit(Exception):
    """A template went over one of the bounds above."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


_SIMPLER = "make the template simpler; it runs on every render, in CI too"


class Budget:
    """What one template render has used so far."""

    def __init__(self) -> None:
        self.deadline = time.monotonic() + MAX_SECONDS
        self.steps = 0
        self.depth = 0
        self.produced = 0

    def step(self, n: int = 1) -> None:
        before = self.steps
        self.steps += n
        if self.steps > MAX_STEPS:
            raise Limit(f"template took more than {MAX_STEPS:,} steps (loop iterations, calls and operations)",
                        _SIMPLER)
        if before >> 10 != self.steps >> 10:
            self.check_time()

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise Limit(f"template rendered for more than {MAX_SECONDS:g} seconds", _SIMPLER)

    def produce(self, n: int) -> None:
        self.produced += n
        if self.produced > MAX_PRODUCED:
            raise Limit(f"template produced more than {MAX_PRODUCED:,} characters of output "
                        "(macro results and loop bodies included)", _SIMPLER)


def _too_long(what: str, size: int) -> Limit:
    return Limit(f"template would build {what} of {size:,} characters or items, over the limit "
                 f"of {MAX_STRING:,}", _SIMPLER)


def weight(value: Any, limit: int = MAX_STRING, nested: bool = False) -> int:
    """About how many characters `str(value)` has, without building it; stops counting soon
    after `limit` (a list holding one string many times weighs what it would print as). Within
    a container a string prints as its repr: a printable one at most twice its length (escaped
    backslashes), others escaped per character (`\U0001f600`), so those are measured."""
    if isinstance(value, str):
        if not nested:
            return len(value)
        return len(value) + 2 if value.isprintable() else len(repr(value))
    if isinstance(value, (int, float, bool)) or value is None:
        return 24 if not isinstance(value, int) else value.bit_length() // 3 + 2
    total = 2
    items: Iterable[Any]
    if isinstance(value, Mapping):
        items = (x for pair in value.items() for x in pair)
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = value
    else:
        return 64  # other objects (undefined, macros, loop helpers) print as something short
    for item in items:
        total += weight(item, limit - total, nested=True) + 2
        if total > limit:
            break
    return total


def _check_size(what: str, size: int) -> None:
    if size > MAX_STRING:
        raise _too_long(what, size)


def _is_seq(value: Any) -> bool:
    return isinstance(value, (str, list, tuple))


def _guard_mul(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise Limit(f"template would compute an integer over {MAX_INT_BITS:,} bits", _SIMPLER)
        return
    for seq, times in ((left, right), (right, left)):
        if _is_seq(seq) and isinstance(times, int):
            _check_size("a repeated string or list", weight(seq) * max(times, 0))


def _guard_pow(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
            raise Limit(f"template would compute an integer over {MAX_INT_BITS:,} bits "
                        f"({left} ** {right})", _SIMPLER)


_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _guard_percent(fmt: str, args: Any) -> None:
    """`fmt % args`: widths and precisions are added up (a `*` width takes its number from
    the arguments) before formatting."""
    size = len(fmt) + weight(args)
    values = args if isinstance(args, tuple) else (args,)
    star = sum(abs(v) for v in values if isinstance(v, int))
    for m in _PERCENT.finditer(fmt):
        for part in m.groups():
            if part == "*":
                size += star
            elif part:
                size += int(part)
        if size > MAX_STRING:
            break
    _check_size("a %-formatted string", size)


class _BoundedFormatter(SandboxedFormatter):
    """`str.format` in the sandbox, adding up field widths before formatting each field."""

    def __init__(self, env: jinja2.Environment, size: int) -> None:
        super().__init__(env)
        self.size = size

    def format_field(self, value: Any, format_spec: str) -> Any:
        self.size += weight(value) + sum(int(n) for n in re.findall(r"\d+", format_spec))
        _check_size("a formatted string", self.size)
        return super().format_field(value, format_spec)


class _Bound(NodeTransformer):
    """Wraps every `for` iterable (counted steps, and the loop body's static text counted as
    output once per iteration) and every `~` (sized before joining)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        static = sum(len(d.data) for d in node.find_all(nodes.TemplateData))
        node.iter = nodes.Filter(node.iter, _LOOP, [nodes.Const(static)], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return nodes.Filter(nodes.List(node.nodes, lineno=node.lineno), _CONCAT, [], [], None, None,
                            lineno=node.lineno)


_STR_WIDTH = {"center", "ljust", "rjust", "zfill"}


class Sandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the bounds above; `budget` is set by each render."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.budget = Budget()
        self.finalize = self._finalize
        self.globals = {"range": self._range, "dict": dict}
        builtin = jinja2.filters.FILTERS
        self.filters = {name: builtin[name] for name in FILTERS if name in builtin}
        self.filters.update(self._guarded_filters())
        self.tests = {name: self.tests[name] for name in TESTS if name in self.tests}

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        bounded = _Bound().visit(tree)
        bounded.set_environment(self)
        return bounded  # type: ignore[no-any-return]

    # -- hooks Jinja2 calls from compiled templates --------------------------------------

    def _finalize(self, value: Any) -> Any:
        self.budget.produce(weight(value, MAX_STRING + 1))
        self.budget.check_time()
        if isinstance(value, (list, tuple, dict, set)):
            _check_size("printed value", weight(value))
        return value

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.budget.step()
        if operator == "*":
            _guard_mul(left, right)
        elif operator == "**":
            _guard_pow(left, right)
        elif operator == "+" and _is_seq(left) and _is_seq(right):
            _check_size("a concatenation", weight(left) + weight(right))
        elif operator == "%" and isinstance(left, str):
            _guard_percent(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = __self.budget
        budget.step(CALL_STEPS)
        args = _guard_str_method(__obj, args)
        if budget.depth >= MAX_DEPTH:
            raise Limit(f"template calls nest more than {MAX_DEPTH} deep (a macro recursing without end?)",
                        "give the recursion an end, or flatten it")
        budget.depth += 1
        try:
            result = super().call(__context, __obj, *args, **kwargs)
        finally:
            budget.depth -= 1
        if isinstance(result, str):
            _check_size("a call result", len(result))
        return result

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None
        fmt: str = value.__self__
        mapping = value.__name__ == "format_map"

        def bounded(*args: Any, **kwargs: Any) -> str:
            if mapping:
                if len(args) != 1 or kwargs:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs = args[0]
                args = ()
            return str(_BoundedFormatter(self, len(fmt)).vformat(fmt, args, kwargs))

        return bounded

    # -- globals and filters ---------------------------------------------------------------

    def _range(self, *args: int) -> range:
        numbers = range(*args)
        if len(numbers) > MAX_RANGE:
            raise Limit(f"range of {len(numbers):,} items, over the limit of {MAX_RANGE:,}", _SIMPLER)
        return numbers

    def _guarded_filters(self) -> dict[str, Callable[..., Any]]:
        f = jinja2.filters
        env = self

        def loop(value: Any, static: int) -> Iterator[Any]:
            items = iter(value)  # now, so an undefined iterable fails at the `for` line
            return env._counted(items, static)

        def concat(values: list[Any]) -> str:
            _check_size("a ~ concatenation", sum(weight(v) for v in values))
            return "".join(str(v) for v in values)

        def center(value: Any, width: int = 80) -> str:
            _check_size("a centered string", max(len(str(value)), width))
            return f.do_center(value, width)

        def indent(value: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
            text = str(value)
            pad = width if isinstance(width, int) else len(width)
            _check_size("an indented string", len(text) + (text.count("\n") + 1) * pad)
            return f.do_indent(value, width, first, blank)

        def wordwrap(value: str, width: int = 79, break_long_words: bool = True,
                     wrapstring: str | None = None, break_on_hyphens: bool = True) -> str:
            _check_size("a wrapped string", len(value) * (1 + len(wrapstring or "\n")))
            return f.do_wordwrap(env, value, width, break_long_words, wrapstring, break_on_hyphens)

        def replace(value: Any, old: Any, new: Any, count: int | None = None) -> str:
            text, before, after = str(value), str(old), str(new)
            hits = text.count(before) if before else len(text) + 1
            if count is not None and count >= 0:
                hits = min(hits, count)
            _check_size("a replaced string", len(text) + hits * max(len(after) - len(before), 0))
            return text.replace(before, after, -1 if count is None else count)

        def join(value: Any, d: str = "", attribute: str | int | None = None) -> str:
            items = list(value)
            if attribute is not None:
                items = list(map(f.make_attrgetter(env, attribute), items))
            _check_size("a joined string", sum(weight(i) for i in items) + len(d) * len(items))
            return str(d).join(str(i) for i in items)

        def fmt(value: Any, *args: Any, **kwargs: Any) -> str:
            _guard_percent(str(value), kwargs or args)
            return f.do_format(value, *args, **kwargs)

        def batch(value: Any, linecount: int, fill_with: Any = None) -> Any:
            _check_size("a batch", linecount)
            return f.do_batch(value, linecount, fill_with)

        def slice_(value: Any, slices: int, fill_with: Any = None) -> Any:
            _check_size("a slice", slices)
            return f.sync_do_slice(value, slices, fill_with)

        def printed(name: str, original: Callable[..., str]) -> Callable[..., str]:
            def guarded(value: Any, *args: Any, **kwargs: Any) -> str:
                indent_ = kwargs.get("indent", args[0] if args else None)
                factor = 1 + (indent_ if isinstance(indent_, int) else 0)
                _check_size(f"the {name} of a value", weight(value) * factor)
                return original(value, *args, **kwargs)
            return guarded

        @jinja2.pass_eval_context
        def to_json(eval_ctx: jinja2.nodes.EvalContext, value: Any, indent: int | None = None) -> Any:
            _check_size("the JSON of a value", weight(value) * (1 + (indent if isinstance(indent, int) else 0)))
            return f.do_tojson(eval_ctx, value, indent)

        from generator.io.yaml_io import dump_document

        def to_yaml(value: Any) -> str:
            _check_size("the YAML of a value", weight(value) * 2)
            return dump_document(value).rstrip("\n")

        return {
            _LOOP: loop, _CONCAT: concat, "center": center, "indent": indent, "wordwrap": wordwrap,
            "replace": replace, "join": join, "format": fmt, "batch": batch, "slice": slice_,
            "string": printed("text", str), "pprint": printed("text", f.do_pprint), "to_yaml": to_yaml,
            "tojson": to_json,
        }

    def _counted(self, items: Iterator[Any], static: int) -> Iterator[Any]:
        budget = self.budget
        for item in items:
            budget.step()
            if static:
                budget.produce(static)
            yield item


def _guard_str_method(obj: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """str methods that can build a long string from a short one: sized before they run.
    Returns the arguments to call with (an iterable given to `join` becomes a list)."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str) or not args:
        return args
    name = getattr(obj, "__name__", "")
    if name in _STR_WIDTH and isinstance(args[0], int):
        _check_size(f"a str.{name} result", args[0])
    elif name == "expandtabs" and isinstance(args[0], int):
        _check_size("a str.expandtabs result", len(owner) + owner.count("\t") * args[0])
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        hits = owner.count(args[0]) if args[0] else len(owner) + 1
        _check_size("a str.replace result", len(owner) + hits * max(len(args[1]) - len(args[0]), 0))
    elif name == "join":
        items = list(args[0])
        _check_size("a str.join result", sum(weight(i) for i in items) + len(owner) * len(items))
        return (items, *args[1:])
    return args
