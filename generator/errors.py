"""One error base class and one subclass per pipeline stage.

Library code raises these; only `generator.cli` turns them into messages and exit codes.
"""

from __future__ import annotations

from pathlib import Path


class GeneratorError(Exception):
    """A mistake in the user's input: reported as one clear message, exit code 1."""

    def __init__(
        self,
        message: str,
        *,
        file: Path | str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.hint = hint

    def __reduce__(self) -> tuple[object, ...]:
        # Keep file, line and hint when an error crosses a process boundary.
        return (_rebuild, (type(self), self.message, self.file, self.line, self.hint))

    def located(self, file: Path | str | None, line: int | None = None) -> GeneratorError:
        """Fill in the location when the raiser did not know it."""
        if self.file is None and file is not None:
            self.file = str(file)
        if self.line is None:
            self.line = line
        return self

    def render(self, label: str = "error") -> str:
        """The message as printed: `error: file:line: message` (label "warning" for a warning)."""
        where = ""
        if self.file:
            where = self.file if self.line is None else f"{self.file}:{self.line}"
            where += ": "
        text = f"{label}: {where}{self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.render()


class LoadError(GeneratorError):
    """Reading and parsing input files (YAML syntax, shapes, missing files)."""


class ConfigError(GeneratorError):
    """The generator's own files: gitops-gen.yaml, app.yaml, env.yaml."""


class TemplateError(GeneratorError):
    """Jinja2 rendering: undefined variables, syntax errors, sandbox violations."""


class MergeError(GeneratorError):
    """Applying environment patches and overlays."""


class ConfigMapError(GeneratorError):
    """Building ConfigMap data from its sources."""


class ReferenceError_(GeneratorError):
    """A workload refers to a ConfigMap, Secret or key that does not exist."""


class ValidationError(GeneratorError):
    """A rendered object breaks a Kubernetes rule (names, keys, sizes)."""


class WriteError(GeneratorError):
    """Writing out/: locks, ownership conflicts."""


class SecretError(GeneratorError):
    """A credential would be committed: in a ConfigMap, in a plaintext Secret, or in a
    secret-producing object that cannot be content-hashed safely."""


class ChartError(GeneratorError):
    """Helm charts: declarations, the lock file and vendored copies, values, `helm template`."""


class GitError(GeneratorError):
    """Reading a git ref for `diff --against`: no git, not a repository, unknown ref."""


class EditError(GeneratorError):
    """`set` and `promote`: a source cannot be changed as asked (shared anchor, templated file,
    a value decided elsewhere)."""


class TargetError(EditError):
    """`set` and `promote`: the named target does not exist or is ambiguous (a usage error, exit 2)."""


def _rebuild(
    cls: type[GeneratorError], message: str, file: str | None, line: int | None, hint: str | None
) -> GeneratorError:
    return cls(message, file=file, line=line, hint=hint)


class AdoptError(GeneratorError):
    """Importing a repo from another tool (`gitops-gen import`) or scaffolding one (`init`)."""
