"""Charts whose output would not be byte-stable are refused.

Two checks, because each alone is wrong in one direction:

1. A static scan of every template (subcharts and library charts included) for the template
   functions whose result changes from run to run (random values, the clock, generated keys and
   certificates, salted hashes) or depends on a live cluster (`lookup`).
2. Only when the scan finds one: the chart is rendered a second time. Output that differs is
   refused, naming the templates whose documents differ and the functions found in the chart.
   Charts often call `randAlphaNum` only on a branch their values do not take ("generate a
   password if none was given"); such a chart renders the same twice and passes.

`lookup` returns nothing under `helm template` (no cluster), so it renders the same twice yet
means something else when installed; a template file (not a `_*.tpl` helper: library charts
define helpers that no template calls) that calls it is refused outright.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from generator.errors import ChartError

UNSTABLE = (
    "randAlphaNum", "randAlpha", "randNumeric", "randAscii", "randBytes", "randInt", "uuidv4", "shuffle",
    "now", "ago", "genCA", "genCAWithKey", "genPrivateKey", "genSelfSignedCert", "genSelfSignedCertWithKey",
    "genSignedCert", "genSignedCertWithKey", "htpasswd", "bcrypt", "encryptAES", "getHostByName", "lookup",
)
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_FUNC = re.compile(r"(?<![\w.$])(" + "|".join(UNSTABLE) + r")(?![\w])")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|`[^`]*`')


@dataclass(frozen=True)
class Hit:
    template: str  # path inside the chart, as Helm names it
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.template}:{self.line} calls `{self.function}`"


def scan(templates: Iterable[tuple[str, str]]) -> list[Hit]:
    hits: list[Hit] = []
    for name, text in templates:
        for action in _ACTION.finditer(text):
            code = _STRING.sub('""', _COMMENT.sub("", action.group(1)))
            for found in _FUNC.finditer(code):
                line = text.count("\n", 0, action.start()) + 1
                hits.append(Hit(name, line, found.group(1)))
    return hits


def is_helper(template: str) -> bool:
    return template.rsplit("/", 1)[-1].startswith("_")


def refuse_lookup(hits: list[Hit], describe: str, where: Callable[[str], str], shown: str, line: int | None) -> None:
    calls = [h for h in hits if h.function == "lookup" and not is_helper(h.template)]
    if calls:
        call = calls[0]
        raise ChartError(
            f"{describe}: {where(call.template)}:{call.line} calls `lookup` (reads the live cluster; `helm template` has none, so the "
            "committed output would differ from what the chart means)",
            file=shown, line=line,
            hint="set the chart's values so the object is given explicitly, or vendor a chart version without `lookup`",
        )


def differing_sources(first: str, second: str) -> list[str]:
    """The `# Source:` templates whose documents differ between two renders."""
    a, b = _by_source(first), _by_source(second)
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def _by_source(stdout: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for chunk in stdout.split("\n---\n"):
        m = re.search(r"^# Source: (.+)$", chunk, re.M)
        out.setdefault(m.group(1) if m else "", []).append(chunk)
    return out
