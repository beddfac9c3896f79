"""JSON Schemas of the generator's own files, for editors (yaml-language-server, JetBrains):
`gitops-gen.schema.json`, `app.schema.json`, `env.schema.json`. They describe what
generator/config.py accepts (tests/test_schemas.py keeps them in step); the tool itself never
reads them."""

from __future__ import annotations

from importlib import resources

FILES = {"gitops-gen.yaml": "gitops-gen.schema.json", "app.yaml": "app.schema.json", "env.yaml": "env.schema.json"}


def schema_text(name: str) -> str:
    """The text of a shipped schema (`app.schema.json`, ...), read from the installed package."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")
