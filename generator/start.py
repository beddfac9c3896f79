"""The process entry point (`gitops-gen`, `python -m generator`).

`render` and `check` of a repo where nothing changed are the commands run most often (a
pre-commit hook, CI, an editor's save hook), and their whole answer is a lookup in the render
index (generator/io/index.py). Importing click and defining every command costs about as much
CPU as that lookup, so the plain forms, `render` or `check` with only `--repo DIR` and `--env
NAME` options, are answered here first, before anything else is imported. Any other form, and
any miss, goes to the CLI (generator/cli.py), which parses the same arguments again and, on a
miss, renders: the answer printed here is the one the CLI's own fast path prints, from the same
functions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from generator.io.index import Report

UTF8_RERUN = "GITOPS_GEN_UTF8_RERUN"
EXIT_INTERRUPTED = 130
Echo = Callable[[str, bool], None]  # text, to stderr


def utf8_mode() -> None:
    """Run in Python's UTF-8 mode whatever the locale. Under LANG=C (or any non-UTF-8 locale)
    Python encodes file names as ASCII, so a data file named `café.conf` could not even be
    opened: the process then runs itself again with `-X utf8` (once; the cost is one more
    interpreter start, only under such a locale). Repo files are UTF-8 by definition, and
    messages go out as UTF-8."""
    if sys.flags.utf8_mode or sys.getfilesystemencoding().lower().replace("-", "") == "utf8":
        return
    if os.environ.get(UTF8_RERUN) or not sys.executable:
        for stream in (sys.stdout, sys.stderr):  # could not re-run: at least never fail on a message
            if hasattr(stream, "reconfigure"):
                stream.reconfigure(errors="replace")
        return
    os.environ[UTF8_RERUN] = "1"
    args = list(getattr(sys, "orig_argv", [sys.executable, *sys.argv]))
    os.execv(sys.executable, [sys.executable, "-X", "utf8", *args[1:]])


def plain_form(args: Sequence[str]) -> tuple[str, Path, tuple[str, ...]] | None:
    """(command, repo, environments) of `render|check [--repo DIR] [--env NAME]...` as click
    would parse them (the CLI's defaults: repo ".", every environment), else None."""
    if not args or args[0] not in ("render", "check"):
        return None
    repo, envs = Path("."), []
    rest = list(args[1:])
    while rest:
        option = rest.pop(0)
        name, eq, value = option.partition("=")
        if name not in ("--repo", "--env"):
            return None
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if not value or value.startswith("-"):
            return None  # click's reading of these is its own business
        if name == "--repo":
            repo = Path(value)
        else:
            envs.append(value)
    return args[0], repo, tuple(envs)


def unchanged(command: str, repo: Path, envs: tuple[str, ...], echo: Echo) -> bool:
    """Answer `render` or `check` from the render index when nothing changed (printing what
    the full command would: the stored warnings, then its summary); False on a miss."""
    from generator.io import index

    found = index.lookup_all(repo.resolve(), envs)
    if found is None or (command == "check" and not envs and index.unused_allowances(found)):
        return False  # (an unused allow-list entry is an error `check` reports in full)
    replay_warnings(found, echo)
    total = sum(r.files for r in found.values())
    if command == "check":
        echo(f"out/ is up to date: {len(found)} environments, {total} files", False)
    else:
        for env, report in found.items():
            echo(f"rendered {env}: {report.files} files", False)
        echo(f"out/: 0 written, 0 removed, {total} unchanged", False)
    return True


def replay_warnings(found: Mapping[str, Report], echo: Echo) -> None:
    for report in found.values():
        for text in report.warnings:
            echo(text, True)


def _echo(text: str, err: bool) -> None:
    print(text, file=sys.stderr if err else sys.stdout)


def run() -> None:
    utf8_mode()
    form = plain_form(sys.argv[1:])
    if form is not None:
        try:
            if unchanged(*form, _echo):
                sys.stdout.flush()
                return
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(EXIT_INTERRUPTED)
        except Exception:  # noqa: BLE001 - whatever went wrong, the CLI does it all again, properly
            pass
    from generator.cli import main

    main()
