"""Jinja2 rendering for `*.j2` files and templated literals.

Templates arrive in pull requests, so they run in a sandbox (no access to Python internals)
with StrictUndefined (an undefined variable is an error naming file, line and variable).
Nothing about time, randomness or the machine is exposed: the context is only the variables.
Includes and imports resolve relative to the repo root and cannot leave it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator.errors import TemplateError

if TYPE_CHECKING:
    import jinja2

_UNDEFINED_NAME = re.compile(r"'([^']+)' is undefined")


def _environment(root: Path) -> jinja2.Environment:
    """The sandboxed environment. Jinja2 is imported here, on the first template a render meets:
    a repo without templates never pays its import time or memory."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class RepoLoader(jinja2.FileSystemLoader):
        """Loads included templates from inside the repo only (no '..', no absolute paths)."""

        def get_source(
            self, environment: jinja2.Environment, template: str
        ) -> tuple[str, str, Callable[[], bool]]:
            source, filename, uptodate = super().get_source(environment, template)
            if not Path(filename).resolve().is_relative_to(root.resolve()):
                raise jinja2.TemplateNotFound(template)
            return source, filename, uptodate

    env = ImmutableSandboxedEnvironment(
        loader=RepoLoader(str(root), followlinks=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
        auto_reload=False,
    )
    env.filters["to_yaml"] = _to_yaml
    # `now`, `random`-like globals are deliberately absent; `range`, `dict`, ... are fine.
    for unsafe in ("lipsum", "cycler", "joiner"):
        env.globals.pop(unsafe, None)
    return env


def _to_yaml(value: Any) -> str:
    from generator.io.yaml_io import dump_document

    return dump_document(value).rstrip("\n")


class Templates:
    """One sandboxed Jinja2 environment per repo, made when first needed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @cached_property
    def env(self) -> jinja2.Environment:
        return _environment(self.root)

    def render(self, text: str, context: Mapping[str, Any], shown: str) -> str:
        import jinja2
        from jinja2.exceptions import SecurityError

        try:
            return self.env.from_string(text).render(dict(context))
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
                f"undefined template variable {var!r}",
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


def _template_line(exc: BaseException, shown: str) -> int | None:
    """The line of the template frame in the traceback (Jinja2 maps it to the template source)."""
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
