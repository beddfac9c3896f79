"""Jinja2 rendering for `*.j2` files and templated literals.

Templates arrive in pull requests, so they run in a sandbox (no access to Python internals)
with StrictUndefined (an undefined variable is an error naming file, line and variable).
Nothing about time, randomness or the machine is exposed: the context is only the variables,
plus the globals, filters and tests listed in `generator/steps/sandbox.py` (and the README).
Work is bounded (steps, time, output, recursion, integer and string size: sandbox.py).
Includes and imports resolve relative to the repo root and cannot leave it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Generator, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import TemplateError

if TYPE_CHECKING:
    import jinja2

    from generator.steps.sandbox import Sandbox

from generator.io.inputs import decode_text

_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined")


class _Unreadable(Exception):
    """An included template that exists but may not be read (a symlink leaving the repo, a
    dangling one, a FIFO, too big): reported like a missing include, with the reason."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(name)
        self.name = name
        self.reason = reason


def _environment(root: Path) -> Sandbox:
    """The sandboxed environment. Jinja2 is imported here, on the first template a render meets:
    a repo without templates never pays its import time or memory."""
    import jinja2

    from generator.steps.sandbox import Sandbox

    class RepoLoader(jinja2.BaseLoader):
        """Loads included templates from inside the repo only: no '..', no absolute paths, no
        symlink leaving it, no FIFO; the same size limit as every input file."""

        def get_source(
            self, environment: jinja2.Environment, template: str
        ) -> tuple[str, str, Callable[[], bool]]:
            from jinja2.loaders import split_template_path

            from generator.io.inputs import Refused, read_input

            path = root.joinpath(*split_template_path(template))
            try:
                source = decode_text(read_input(root, path))
            except Refused as exc:
                raise _Unreadable(template, exc.reason) from None
            except (OSError, UnicodeDecodeError):
                raise jinja2.TemplateNotFound(template) from None
            return source, str(path), lambda: True

    return Sandbox(
        loader=RepoLoader(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )


class Templates:
    """One sandboxed Jinja2 environment per repo, made when first needed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def env(self) -> Sandbox:
        return _environment(self.root)

    def render(self, text: str, context: Mapping[str, Any], shown: str) -> str:
        import jinja2
        from jinja2.exceptions import SecurityError

        from generator.steps.sandbox import Budget, Limit

        self.env.budget = Budget()
        try:
            return _bounded_render(self.env.from_string(text), dict(context))
        except Limit as exc:
            raise TemplateError(exc.message, file=shown, line=_template_line(exc, shown), hint=exc.hint) from None
        except _Unreadable as exc:
            raise TemplateError(
                f"included template {exc.name!r} not found inside the repo: {exc.name} {exc.reason}",
                file=shown,
                line=_template_line(exc, shown),
                hint="include paths are relative to the repo root; included files must be regular files inside it",
            ) from None
        except MemoryError:
            raise TemplateError("template ran out of memory", file=shown, hint="make the template simpler") from None
        except jinja2.TemplateSyntaxError as exc:
            where = shown if exc.name is None or exc.filename is None else exc.name
            raise TemplateError(
                f"template syntax error: {exc.message}",
                file=where,
                line=exc.lineno,
                hint="check the {{ }} / {% %} tags at that line",
            ) from None
        except jinja2.UndefinedError as exc:
            m = _UNDEFINED_NAME.search(str(exc.message))
            if m is None:
                raise TemplateError(
                    f"undefined value in template: {exc.message}",
                    file=shown,
                    line=_template_line(exc, shown),
                    hint="check the attribute or key exists in the variable, or use `| default(...)`",
                ) from None
            var = m.group(1)
            raise TemplateError(
                f"undefined template variable {var!r}{_why_undefined(var, context)}",
                file=shown,
                line=_template_line(exc, shown),
                hint=f"define {var!r} under `vars:` in the app's app.yaml, the environment's "
                f"env.yaml or gitops-gen.yaml, or guard it with `{{% if {var} is defined %}}`",
            ) from None
        except SecurityError as exc:
            raise TemplateError(
                f"template tried an operation the sandbox forbids: {exc}",
                file=shown,
                line=_template_line(exc, shown),
                hint="templates may only use variables, filters and tests, not Python internals",
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"included template {exc.name!r} not found inside the repo",
                file=shown,
                line=_template_line(exc, shown),
                hint="include paths are relative to the repo root and cannot leave it",
            ) from None
        except (TypeError, ValueError, ZeroDivisionError, AttributeError, OverflowError) as exc:
            raise TemplateError(
                f"template failed: {exc}", file=shown, line=_template_line(exc, shown)
            ) from None
        except RecursionError:
            raise TemplateError("template recursed too deeply", file=shown) from None


def _bounded_render(template: jinja2.Template, context: dict[str, Any]) -> str:
    """`template.render(context)`, stopping once the text is over the output limit."""
    from generator.steps.sandbox import MAX_OUTPUT, Limit

    parts: list[str] = []
    size = 0
    chunks: Generator[str, None, None] = template.generate(context)  # type: ignore[assignment]
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_OUTPUT:
            line = _generator_line(template, chunks)
            chunks.close()
            exc = Limit(f"template output is over {MAX_OUTPUT:,} characters", "make the template simpler")
            exc.line = line  # type: ignore[attr-defined]
            raise exc
        parts.append(chunk)
    return "".join(parts)


def _generator_line(template: jinja2.Template, chunks: Any) -> int | None:
    """The template line a paused render is at (the innermost generator of the render)."""
    frame = None
    while chunks is not None:
        frame = getattr(chunks, "gi_frame", None) or frame
        chunks = getattr(chunks, "gi_yieldfrom", None)
    return None if frame is None else template.get_corresponding_lineno(frame.f_lineno)


def _why_undefined(var: str, context: Mapping[str, Any]) -> str:
    """For `namespace` (the template variable that exists only when env.yaml sets one), say so."""
    if var == "namespace" and "namespace" not in context:
        return f" (environment {context.get('env')!r} sets no `namespace:` in its env.yaml)"
    return ""


def _template_line(exc: BaseException, shown: str) -> int | None:
    """The line of the template frame in the traceback (Jinja2 maps it to the template source)."""
    known = getattr(exc, "line", None)
    if isinstance(known, int):
        return known
    tb = exc.__traceback__
    line = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename in ("<template>", shown):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def has_template_syntax(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text
