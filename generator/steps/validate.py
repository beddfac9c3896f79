"""Step: check the rendered objects against the Kubernetes rules the generator can know offline:
object names and unique identities."""

from __future__ import annotations

import re

from generator.errors import ValidationError
from generator.model import Resource

MAX_NAME = 253
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Kinds whose names must be DNS-1035 labels (at most 63 characters).
LABEL_NAMED = frozenset({"Service", "Namespace"})
# Kinds whose names must be DNS-1123 labels (may start with a digit): a StatefulSet's name is its
# pods' hostname prefix (ValidateStatefulSetName: NameIsDNSLabel, pkg/apis/apps/validation).
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_LABEL_NAMED = frozenset({"StatefulSet"})


def _short(name: str) -> str:
    return name if len(name) <= 80 else f"{name[:40]}...{name[-20:]}"


def check_name(resource: Resource) -> None:
    name = resource.name
    kind = resource.kind
    if kind in LABEL_NAMED:
        ok, rule = len(name) <= 63 and bool(_LABEL.match(name)), "a DNS-1035 label (lower-case letters, digits and '-', starting with a letter, at most 63 characters)"
    elif kind in DNS1123_LABEL_NAMED:
        ok, rule = len(name) <= 63 and bool(_DNS1123_LABEL.match(name)), "a DNS-1123 label (lower-case letters, digits and '-', no '.', at most 63 characters)"
    else:
        ok, rule = len(name) <= MAX_NAME and bool(_SUBDOMAIN.match(name)), "a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', at most 253 characters)"
    if not ok:
        declared = resource.declared
        limit = 63 if kind in LABEL_NAMED or kind in DNS1123_LABEL_NAMED else MAX_NAME
        extra = ""
        if declared and declared != name:
            room = limit - (len(name) - len(declared))
            fix = f"shorten the declared name to at most {room} characters" if len(name) > limit else "fix the declared name"
            extra = f" (the hashed name of {_short(declared)!r}; {fix})"
        length = f"{len(name)} characters, over the limit of {limit}" if len(name) > limit else "not valid"
        raise ValidationError(
            f"{kind} name {_short(name)!r} is {length}{extra}",
            file=resource.origin.file,
            line=resource.origin.at("metadata", "name").line,
            hint=f"a {kind} name must be {rule}",
        )


def check_unique(resources: list[Resource]) -> None:
    seen: dict[tuple[str, str | None, str], Resource] = {}
    for r in resources:
        first = seen.get(r.key)
        if first is not None:
            raise ValidationError(
                f"{r.describe()} is defined twice: here and at {first.origin}",
                file=r.origin.file,
                line=r.origin.first_line,
                hint="remove one; to change an object per environment use a patch in env.yaml",
            )
        seen[r.key] = r


def validate(resources: list[Resource]) -> None:
    for r in resources:
        check_name(r)
    check_unique(resources)
