"""The two calls the load step makes for charts, kept light: Helm's machinery
(generator/charts/render.py) is imported only when an environment has a chart."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from generator.charts.decl import ChartDecl
from generator.errors import ChartError

if TYPE_CHECKING:
    from generator.charts.render import ChartStep
    from generator.config import EnvConfig
    from generator.steps.templating import Templates


def chart_decl(known: ChartDecl | None, new: ChartDecl | None) -> ChartDecl | None:
    """The app's chart, from its base folder or its environment folder (not both)."""
    if known is not None and new is not None:
        raise ChartError(
            f"app {new.app!r} declares a chart here and in {known.doc.shown}",
            file=new.doc.shown, line=1,
            hint="an app has one chart: change it per environment with `charts:` values in env.yaml",
        )
    return new or known


def chart_step(root: Path, templates: Templates, env: EnvConfig, cache: bool) -> ChartStep:
    from generator.charts.render import ChartStep

    return ChartStep(root, templates, env.namespace, env.chart_values, cache)


def check_env_values(env: EnvConfig, apps: list[str]) -> None:
    """Every app named under `charts:` in env.yaml is one of this environment's apps."""
    for app in env.chart_values:
        if app not in apps:
            raise env.doc.error(("charts", app), f"unknown app {app!r}",
                                hint=f"apps of this environment: {', '.join(apps) or '(none)'}")
