"""The credential detector: does a ConfigMap entry (or any committed text) hold a credential?

Pure functions, no I/O, no state. The pipeline runs `scan_value` on every key of every ConfigMap
before anything is written; the repo's own test runs `scan_object` on every committed object.
Findings never contain the credential itself (CI logs are read by many people).

Rules, each precise on purpose (a false positive costs an allow-list entry, a false negative a
leak that stays in git history forever):

key-name      The key's words (split at `_ - .`, camelCase and digits) name a credential:
              password, passwd, pwd, pw, pass, passphrase, secret(s), token(s), credential(s),
              creds, auth, authorization, bearer, apikey, requirepass, masterauth, or the pairs
              api/private/secret/access/signing/encryption/master/ssh/tls/app/account/license/
              hmac/jwt/client + key; `password`, `passwd`, `passphrase`, `apikey`, `credential`,
              `privatekey`, `secretkey` and `accesskey` also inside a longer word (`dbpassword`).
              A descriptive word after the credential word makes the key about a credential,
              not one: `token_ttl_seconds`, `password_file`, `secret_name`, `auth_url`,
              `access_key_id` (DESCRIPTIVE_WORDS; `db_user_password` is still flagged), and
              `public`/`pub` anywhere clears it (`public_key`). A value that cannot be a credential is
              not flagged: empty, true/false/none-like, a plain number (unless the word is a
              password word: a PIN is a password), a placeholder (`${X}`, `$(X)`, `$X`,
              `<x>`, `***`), a path (`/run/secrets/db`), a URL without a password, or a reference
              to a secret manager (`arn:`, `vault:`, `ref+`).
weak-key      Keys that only look sensitive (key, salt, seed, cookie, session, signature,
              license): flagged only when the value is a high-entropy token (a run of 16+
              characters from [A-Za-z0-9+/=~] mixing letters and digits, >= 3.3 bits/char).
url-password  A URL with a password in its user info: `scheme://user:PASSWORD@host`.
              `postgres://exchange@host/db` (a user, no password) is fine.
assignment    Inside a value (a config file, a DSN, a query string): `name = value`,
              `name: value`, `"name": "value"`, `?name=value`, `;Name=value`,
              `--name=value`, where `name` passes the key-name or weak-key rule. Comment lines
              (#, ;, //, --) are skipped. The Redis directives `requirepass X` and `masterauth X`.
private-key   A PEM private key block (`-----BEGIN ... PRIVATE KEY-----`, encrypted or not).
token shapes  AWS access key ids (AKIA/ASIA + 16), GitHub tokens (ghp_/gho_/ghu_/ghs_/ghr_,
              github_pat_), GitLab tokens (glpat-), Slack tokens (xox?-) and webhook URLs,
              JWTs (eyJ....eyJ....), Google API keys (AIza + 35), Stripe live keys (sk_live_).
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from generator.steps.hashing import sha256


@dataclass(frozen=True)
class Finding:
    """One credential found in a value. `line` is 1-based inside the value."""

    rule: str
    reason: str
    line: int = 1


# --- key names ------------------------------------------------------------------------------

CREDENTIAL_WORDS = frozenset({
    "password", "passwords", "passwd", "pwd", "pw", "pass", "passphrase",
    "secret", "secrets", "token", "tokens", "credential", "credentials", "creds",
    "auth", "authorization", "bearer", "apikey", "apikeys", "requirepass", "masterauth",
})
PASSWORD_WORDS = frozenset({"password", "passwords", "passwd", "pwd", "pw", "pass", "passphrase",
                            "requirepass", "masterauth"})
# Stems that mean a credential even inside a longer word ("dbpassword", "mysqlrootpasswd").
CREDENTIAL_STEMS = ("password", "passwd", "passphrase", "apikey", "credential",
                    "privatekey", "secretkey", "accesskey")
KEY_QUALIFIERS = frozenset({
    "api", "private", "secret", "access", "signing", "encryption", "master", "ssh", "tls",
    "app", "account", "license", "licence", "hmac", "jwt", "client",
})
WEAK_WORDS = frozenset({"key", "keys", "salt", "seed", "cookie", "session", "signature", "license", "licence"})
# A word after the credential word that makes the key describe a credential (where it is, how
# long it lives, what it is called) instead of holding one: `password_file`, `token_ttl_seconds`.
DESCRIPTIVE_WORDS = frozenset({
    "file", "files", "path", "paths", "dir", "directory", "mount", "location",
    "ttl", "timeout", "seconds", "secs", "sec", "ms", "minutes", "mins", "hours", "days",
    "expiry", "expires", "expiration", "lifetime", "interval", "rotation",
    "length", "len", "size", "min", "max", "count", "limit", "chars", "complexity",
    "retries", "attempts",
    "policy", "mode", "type", "kind", "level", "format", "algorithm", "alg", "method",
    "strategy", "provider", "backend", "store", "cache", "version",
    "enabled", "enable", "disabled", "disable", "required",
    "header", "headers", "param", "parameter", "field", "prefix", "suffix", "regex", "pattern",
    "name", "names", "ref", "id", "ids", "arn", "env", "var", "label", "annotation", "template",
    "url", "uri", "endpoint", "host", "port", "issuer", "audience", "scope", "scopes", "realm",
    "user", "username", "login", "email",
})
# Words that make the whole key non-secret wherever they are: `public_key`, `ssh_pub_key`.
PUBLIC_WORDS = frozenset({"public", "pub"})
_KEY_HINT = re.compile(r"(?i)pass|pw|secret|token|key|cred|auth|bearer|salt|seed|cookie|session|signature|licen")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")


def key_words(key: str) -> tuple[str, ...]:
    """`MYSQL_ROOT_PASSWORD` -> (mysql, root, password); `apiKey` -> (api, key)."""
    return tuple(w.lower() for w in _WORD.findall(key))


def _credential_at(words: tuple[str, ...], i: int) -> tuple[int, str] | None:
    """(index of the last word of the hit, label) when a credential name starts at word i."""
    w = words[i]
    if w in CREDENTIAL_WORDS:
        return i, w
    for stem in CREDENTIAL_STEMS:
        if stem in w:
            return i, stem
    if i + 1 < len(words) and words[i + 1] in ("key", "keys") and w in KEY_QUALIFIERS:
        return i + 1, f"{w} {words[i + 1]}"
    return None


def classify_key(key: str) -> tuple[str, str] | None:
    """("credential" | "weak", the word that decided) for a sensitive key name, else None."""
    if not _KEY_HINT.search(key):
        return None
    words = key_words(key)
    if PUBLIC_WORDS.intersection(words):
        return None
    hit: tuple[str, int, str] | None = None
    for i in range(len(words)):
        found = _credential_at(words, i)
        if found is not None:
            hit = ("credential", *found)
            break
    if hit is None:
        weak = next((i for i, w in enumerate(words) if w in WEAK_WORDS), None)
        if weak is None:
            return None
        hit = ("weak", weak, words[weak])
    strength, end, label = hit
    if any(w in DESCRIPTIVE_WORDS for w in words[end + 1:]):
        return None
    return strength, label


# --- values that cannot be credentials ------------------------------------------------------

_BENIGN_WORDS = frozenset({
    "true", "false", "yes", "no", "on", "off", "none", "null", "nil", "~", "-",
    "enabled", "disabled", "required", "optional",
})
_PLACEHOLDER = re.compile(
    r"\$\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_][A-Za-z0-9_]*|<[^<>]*>|%\([^)]*\)s|\{\{.*\}\}|\*+|x{3,}|X{3,}"
)
_PATH = re.compile(r"(?:/|\./|\.\./|~/|file://)\S*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/]+(?::[0-9]+)?(?:[/?#]\S*)?")
_SECRET_REF = ("arn:", "vault:", "ref+")


def is_benign(value: str) -> bool:
    """True for values that cannot be a credential: empty, flags, placeholders, paths, plain URLs."""
    v = value.strip().strip("\"'")
    return (
        not v
        or v.lower() in _BENIGN_WORDS
        or _PLACEHOLDER.fullmatch(v) is not None
        or _PATH.fullmatch(v) is not None
        or _URL.fullmatch(v) is not None
        or v.startswith(_SECRET_REF)
    )


_SPACE = re.compile(r"\s")
_TOKEN_RUN = re.compile(r"[A-Za-z0-9+/=~]{16,}")
MIN_TOKEN_RUN = 16
MIN_ENTROPY = 3.3


def entropy(text: str) -> float:
    """Shannon entropy in bits per character."""
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values()) if n else 0.0


def high_entropy(value: str) -> bool:
    """A random-looking token: a long run of token characters, letters and digits, high entropy."""
    v = value.strip().strip("\"'")
    if len(v) < MIN_TOKEN_RUN or _SPACE.search(v):
        return False
    for run in _TOKEN_RUN.findall(v):
        if (any(c.isdigit() for c in run) and any(c.isalpha() for c in run)
                and entropy(run) >= MIN_ENTROPY):
            return True
    return False


def key_finding(key: str, value: str, line: int = 1) -> Finding | None:
    """The key-name and weak-key rules for one name/value pair."""
    kind = classify_key(key)
    if kind is None or is_benign(value):
        return None
    strength, word = kind
    if word not in PASSWORD_WORDS and value.strip().isdigit():
        return None  # `max_tokens: 4096`: a count; only a password can be a plain number (a PIN)
    if strength == "credential":
        return Finding("key-name", f"its name says it is a credential ({word!r})", line)
    if high_entropy(value):
        return Finding("weak-key", f"its name looks sensitive ({word!r}) and its value is a random-looking token", line)
    return None


# --- shapes inside values -------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """A credential recognised by its form; `anchors` are substrings every match contains."""

    rule: str
    what: str
    anchors: tuple[str, ...]
    pattern: re.Pattern[str]


_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_ALNUM_AFTER = r"(?![A-Za-z0-9])"
SHAPES = (
    Shape("url-password", "a URL with a password in it (scheme://user:PASSWORD@host)", ("://",),
          re.compile(r"://[^\s/:@]*:(?P<secret>[^\s/@]+)@")),
    Shape("private-key", "a PEM private key", ("PRIVATE KEY",),
          re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    Shape("aws-access-key", "an AWS access key id (AKIA.../ASIA...)", ("AKIA", "ASIA"),
          re.compile(_ALNUM_BEFORE + r"(?:AKIA|ASIA)[A-Z0-9]{16}" + _ALNUM_AFTER)),
    Shape("github-token", "a GitHub token (ghp_/gho_/ghu_/ghs_/ghr_/github_pat_)",
          ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
          re.compile(_ALNUM_BEFORE + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})" + _ALNUM_AFTER)),
    Shape("gitlab-token", "a GitLab personal access token (glpat-)", ("glpat-",),
          re.compile(_ALNUM_BEFORE + r"glpat-[A-Za-z0-9_\-]{20,}")),
    Shape("slack-token", "a Slack token (xox?-)", ("xox",),
          re.compile(_ALNUM_BEFORE + r"xox[a-z]-[A-Za-z0-9\-]{10,}")),
    Shape("slack-webhook", "a Slack incoming-webhook URL (the URL is the credential)", ("hooks.slack.com/services/",),
          re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")),
    Shape("jwt", "a JSON Web Token (eyJ....eyJ....)", ("eyJ",),
          re.compile(_ALNUM_BEFORE + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    Shape("google-api-key", "a Google API key (AIza...)", ("AIza",),
          re.compile(_ALNUM_BEFORE + r"AIza[0-9A-Za-z_\-]{35}(?![0-9A-Za-z_\-])")),
    Shape("stripe-key", "a Stripe live secret key (sk_live_/rk_live_)", ("k_live_",),
          re.compile(_ALNUM_BEFORE + r"[rs]k_live_[0-9A-Za-z]{20,}")),
)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _shape_finding(text: str, shape: Shape) -> Finding | None:
    for m in shape.pattern.finditer(text):
        if "secret" in m.groupdict() and is_benign(m.group("secret")):
            continue
        return Finding(shape.rule, f"the value holds {shape.what}", _line_of(text, m.start()))
    return None


def shape_findings(text: str) -> list[Finding]:
    """URL passwords, private keys and token shapes anywhere in `text`: the first hit of each."""
    found = (_shape_finding(text, s) for s in SHAPES if any(a in text for a in s.anchors))
    return [f for f in found if f is not None]


# --- credentials set inside a value (config files, DSNs, query strings, CLI flags) -----------

HINT_WORDS = ("pass", "pw", "secret", "token", "key", "cred", "auth", "bearer", "salt", "seed",
              "cookie", "session", "signature", "licen")
_NAME_RUN = re.compile(r"[A-Za-z0-9_.\-]*")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_BEFORE_NAME = frozenset(" \t\r\n{,;?&(-")
_QUOTES = "\"'"
MAX_NAME = 80
_VALUE = re.compile(
    r"[\"']?[ \t]*[:=][ \t]*"
    r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare><[^<>\n]*>|\$\{[^}\n]*\}|[^\s,;&}\]\"']*))"
)
_DIRECTIVE_ARG = re.compile(r"[ \t]+(\S+)")
REDIS_DIRECTIVES = ("requirepass", "masterauth")
_COMMENT = re.compile(r"[ \t]*(?:#|;|//|--(?:[ \t]|$))")  # not `--flag=`
_STRUCTURE = ("[", "{", "|", ">", "&", "*", "!")


def _name_span(text: str, hit_start: int, end: int) -> tuple[int, int] | None:
    """The identifier around a hint word ending at `end`, or None when there is none (or it is
    absurdly long)."""
    start = hit_start
    while start > 0 and text[start - 1] in _NAME_CHARS:
        start -= 1
        if end - start > MAX_NAME:
            return None
    if end - start > MAX_NAME:
        return None
    while start < end and not (text[start].isalpha() or text[start] == "_"):
        start += 1  # `--db-password`: the name starts after the dashes
    if start == end:
        return None
    before = start - 1
    if before >= 0 and text[before] in _QUOTES:
        before -= 1
    if before >= 0 and text[before] not in _BEFORE_NAME:
        return None
    return start, end


class _Assignments:
    """Checks the hint words of one text, in order, for `name = value` credentials."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.seen_until = 0  # hints before this are inside a name or value already checked
        self.line_start = 0
        self.scanned = 0  # newlines before this are accounted for in line_start

    def __call__(self, hit_start: int, hit_end: int) -> Finding | None:
        text = self.text
        if hit_start < self.seen_until:
            return None
        run = _NAME_RUN.match(text, hit_end)
        end = run.end() if run is not None else hit_end
        self.seen_until = end
        span = _name_span(text, hit_start, end)
        if span is None:
            return None
        start, end = span
        newline = text.rfind("\n", self.scanned, start)
        if newline >= 0:
            self.line_start = newline + 1
        self.scanned = max(self.scanned, start)
        if _COMMENT.match(text, self.line_start):
            return None
        name = text[start:end]
        if name.lower() in REDIS_DIRECTIVES and not text[self.line_start:start].strip():
            arg = _DIRECTIVE_ARG.match(text, end)
            if arg is None or is_benign(arg.group(1)):
                return None
            return Finding("assignment", f"the value sets the Redis directive `{name.lower()}`", _line_of(text, start))
        m = _VALUE.match(text, end)
        if m is None:
            return None
        self.seen_until = max(self.seen_until, m.end())
        value = next((v for v in (m.group("dq"), m.group("sq"), m.group("bare")) if v is not None), "")
        if value.startswith(_STRUCTURE):
            return None
        found = key_finding(name, value)
        if found is None:
            return None
        what = "a credential" if found.rule == "key-name" else "a random-looking token on a sensitive name"
        return Finding("assignment", f"the value sets {name!r}, {what}", _line_of(text, start))


# --- one pass over a value --------------------------------------------------------------------
# A value is read once, by one regex: every shape anchor and hint word, lower-cased, as a trie
# without groups (the fastest form for Python's engine). A shape's own regex then runs only if
# one of its anchors occurred, and a hint word is checked by hand. Linear time on any input, and
# ordinary config text costs one regex pass.

def _trie(words: list[str]) -> str:
    """One regex alternation for `words`, factored by common prefixes."""
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items()) if ch]
        if not alts:
            return ""
        body = alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


def _anchor_index(shapes: tuple[Shape, ...]) -> dict[str, tuple[Shape, ...]]:
    index: dict[str, tuple[Shape, ...]] = {}
    for shape in shapes:
        for anchor in shape.anchors:
            index[anchor.lower()] = (*index.get(anchor.lower(), ()), shape)
    return index


_ANCHOR_SHAPES = _anchor_index(SHAPES)
_GATE = re.compile(_trie(sorted({*_ANCHOR_SHAPES, *HINT_WORDS})))


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _ascii_lower(text: str) -> str:
    """Lower-cased with positions kept (`"İ".lower()` is two characters long)."""
    lower = text.lower()
    return lower if len(lower) == len(text) else text.translate(_ASCII_LOWER)


def scan_text(text: str) -> list[Finding]:
    """The shape rules and the first assignment inside a value, in one pass."""
    candidates: set[str] = set()  # rules of the shapes whose anchors occur
    assignment: Finding | None = None
    check: _Assignments | None = None
    for m in _GATE.finditer(_ascii_lower(text)):
        shapes = _ANCHOR_SHAPES.get(m.group())
        if shapes is not None:
            candidates.update(s.rule for s in shapes)
        elif assignment is None:
            check = check or _Assignments(text)
            assignment = check(m.start(), m.end())
    found = [_shape_finding(text, s) for s in SHAPES if s.rule in candidates] if candidates else []
    return [f for f in (*found, assignment) if f is not None]


def scan_value(key: str, value: str) -> list[Finding]:
    """Every rule on one ConfigMap entry; at most one finding per rule, in line order."""
    by_key = key_finding(key, value)
    found = scan_text(value)
    if by_key is not None:
        found.insert(0, by_key)
    return sorted(found, key=lambda f: f.line)


@functools.cache
def _rules_digest() -> bytes:
    """This module's own source: a scanner change makes every remembered verdict a miss."""
    return sha256(Path(__file__).read_bytes()).digest()


def data_digest(data: Mapping[str, Any]) -> bytes:
    """The key under which "this data scanned clean" is remembered (generator/memo.py)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return sha256(_rules_digest() + text.encode("utf-8", "surrogatepass")).digest()


def scan_data(data: Mapping[str, str]) -> dict[str, list[Finding]]:
    """Findings of a ConfigMap's `data`, by key (keys without findings left out)."""
    out: dict[str, list[Finding]] = {}
    for key, value in data.items():
        findings = scan_value(key, value)
        if findings:
            out[key] = findings
    return out


def scan_object(obj: Mapping[str, Any]) -> Iterator[tuple[str, Finding]]:
    """(field path, finding) for one Kubernetes object as it is committed.

    A ConfigMap's data gets every rule; every other string anywhere in any object gets the
    shape and assignment rules, and container `env` entries the key-name rule on their
    name and value.
    """
    data = obj.get("data")
    if obj.get("kind") == "ConfigMap" and isinstance(data, dict):
        for key, findings in scan_data({str(k): str(v) for k, v in data.items()}).items():
            for f in findings:
                yield f"data.{key}", f
        rest: Mapping[str, Any] = {k: v for k, v in obj.items() if k != "data"}
    else:
        rest = obj
    yield from _walk(rest, "")


_ENV_ITEM = re.compile(r"(?:^|\.)env\[[0-9]+\]$")


def _walk(node: Any, path: str) -> Iterator[tuple[str, Finding]]:
    if isinstance(node, str):
        for f in scan_text(node):
            yield path, f
    elif isinstance(node, dict):
        name, value = node.get("name"), node.get("value")
        if isinstance(name, str) and isinstance(value, str) and _ENV_ITEM.search(path):
            found = key_finding(name, value)
            if found is not None:
                yield f"{path}.value", found
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
