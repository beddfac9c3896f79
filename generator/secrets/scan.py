"""The credential detector: does any string written to out/ hold a credential?

Pure functions, no I/O, no state. The pipeline runs `scan_fields` on every object before anything
is written (generator/secrets/producers.py, scan step); the repo's own test runs `scan_object` on
every committed object. Findings never contain the credential itself (CI logs are read by many
people). Measured on bench/secrets_corpus/ by bench/secrets_recall.py (README "Secrets").

Every string is scanned under a name (`scan_value(name, value)`): a ConfigMap key, an env
variable, a flag, a field. Rules, each precise on purpose (a false positive costs an allow-list
entry, a false negative a leak that stays in git history forever):

key-name      The name's words (split at `_ - .`, camelCase and digits) name a credential:
              password, passwd, pwd, pw, pass, passphrase, secret(s), token(s), credential(s),
              creds, auth, authorization, bearer, apikey, requirepass, masterauth, the pairs
              api/private/secret/access/signing/.../client + key, those stems inside a longer
              word (`dbpassword`), and words ending in pw/pwd (`rootpw`). A descriptive word after
              it makes the name about a credential (`token_ttl_seconds`, `password_file`,
              DESCRIPTIVE_WORDS); `public`, `site`, `existing`, `checksum`, ... anywhere clear it
              (PUBLIC_WORDS). Values that cannot be credentials are not flagged (`is_benign`:
              placeholders, paths, plain URLs, secret-manager references, public keys), nor
              labels, sentences, names of keys and Secrets, and plain words under `auth` or
              `credentials` (`auth: oidc`, a mode switch).
weak-key      Names that only look sensitive (key, salt, seed, cookie, session, signature,
              license): flagged only when the value is a high-entropy token.
assignment    Inside a value: `name = value`, `name: value`, `"name": "value"`, `?name=value`,
              `--name=value`, `--name value`, XML elements and attributes, PHP define()/arrays,
              directives (`requirepass x`, `AuthLDAPBindPassword "x"`), where `name` passes the
              key-name or weak-key rule. Comment lines are skipped.
shapes        SHAPES: URL passwords, PEM private keys, Basic/Bearer credentials, password hashes,
              connect strings, command-line passwords, SQL passwords, .pgpass lines, and the token
              formats of cloud and SaaS providers (AWS, GitHub, GitLab, Slack, OpenAI, ...).
encoded       A value that is base64 or URL-encoded text is scanned decoded.
random-token  A value that is one long random token (upper, lower, digits, high entropy) under a
              name that says nothing: an AWS secret key or an Azure storage key under `S3_B`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import itertools
import json
import marshal
import math
import re
import urllib.parse
from _blake2 import blake2b  # hashlib's own BLAKE2: importing hashlib would load OpenSSL
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import ahocorasick_rs

from generator.steps.hashing import sha256


@dataclass(frozen=True)
class Finding:
    """One credential found in a value. `line` is 1-based inside the value."""

    rule: str
    reason: str
    line: int = 1


# --- key names ------------------------------------------------------------------------------

CREDENTIAL_WORDS = frozenset({
    "password", "passwords", "passwd", "pwd", "pw", "pass", "passphrase", "passwort", "passe",
    "secret", "secrets", "token", "tokens", "credential", "credentials", "creds",
    "auth", "authorization", "bearer", "apikey", "apikeys", "requirepass", "masterauth",
})
# Credential words that also name a setting (`auth: oidc`, `credentials: instance-profile`):
# under these a plain word (letters and dashes only) is a mode switch, not a credential.
AMBIGUOUS_WORDS = frozenset({"auth", "authorization", "credentials", "credential", "creds"})
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
    "reset", "hint", "encoder", "encoding", "hash", "hasher", "hashing", "strength", "rules",
    "validation", "history", "plugin", "manager", "generator", "rotator", "label",
    "expired", "invalid", "missing", "error", "message", "text", "title", "placeholder", "prompt",
    "encryption", "hashers", "basic",
})
# Words that make the whole key non-secret wherever they are: `public_key`, `ssh_pub_key`,
# reCAPTCHA's `site_key`, Stripe's `publishable_key`, a Helm chart's `existingSecret` (the name
# of a Secret), `checksum/secret` (a digest of one).
PUBLIC_WORDS = frozenset({
    "public", "pub", "publishable", "site", "existing",
    "checksum", "checksums", "digest", "sha", "sha1", "sha256", "sha512", "md5", "fingerprint", "integrity",
})
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
    if w.endswith(("pw", "pwd")) and len(w) <= 10:  # OpenLDAP's rootpw and bindpw, dbpwd
        return i, w
    if i + 1 < len(words) and words[i + 1] in ("key", "keys") and w in KEY_QUALIFIERS:
        return i + 1, f"{w} {words[i + 1]}"
    return None


@functools.lru_cache(maxsize=8192)  # field and variable names repeat across thousands of objects
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
    # placeholders people write where the real value goes later
    "replace_me", "replaceme", "replace-me", "your_password_here", "your-password-here", "todo", "tbd",
    "fixme", "placeholder", "redacted", "unset", "notset", "not-set",
})
_PLACEHOLDER = re.compile(
    r"\$\{[^}]*\}|\$\([^)]*\)|\$[A-Za-z_][A-Za-z0-9_]*|<[^<>]*>|%\([^)]*\)s|\{\{.*\}\}|\*+|x{3,}|X{3,}"
    r"|\$__[a-z]+\{[^}]*\}"  # Grafana's $__file{...}, $__env{...}, $__vault{...}
    r"|%[A-Za-z_][A-Za-z0-9_]*%"  # a Windows environment variable, %DB_PASSWORD%
    r"|#\{[^}]*\}"  # Ruby/Spring interpolation
    r"|\$\{\{.*\}\}"  # GitHub Actions: ${{ secrets.API_TOKEN }}
    r"|\(\([^()]*\)\)"  # Concourse: ((vault:secret/db.password))
    r"|[A-Za-z_][A-Za-z0-9_.]*\([^()]*\)"  # a call: getenv('DB_PASSWORD'), env("X")
    r"|[A-Za-z_][A-Za-z0-9_.]*\[[^\[\]]*\]"  # a lookup: os.environ['DB_PASSWORD'], ENV["X"]
    r"|(?:var|local|module|data|each)\.[A-Za-z_][A-Za-z0-9_.\-]*"  # a Terraform reference: var.db_password
)
_PATH = re.compile(r"(?:/|\./|\.\./|~/|file://)\S*")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s:@/]+(?::[0-9]+)?(?:[/?#]\S*)?")
# References to a secret kept in a secret manager: the value says where, not what.
_SECRET_REF = re.compile(
    r"(?:arn:|vault:|ref\+|op://|azurekeyvault://|akv://|gcpsm://|sm://|awssm://|awsssm://|secretsmanager:|ssm:|sops://)"
    r"|projects/[^/\s]+/secrets/[^/\s]+(?:/versions/\S+)?$"
    r"|ENC\[[A-Za-z0-9_]+,data:"  # a SOPS-encrypted value
)
# Public material: certificates, public keys, CSRs (a private key is its own rule).
_PUBLIC_PEM = re.compile(r"-----BEGIN (?:(?!PRIVATE)[A-Z0-9]+ )*(?:CERTIFICATE|PUBLIC KEY|CERTIFICATE REQUEST|PUBLIC KEY BLOCK|X509 CRL)-----")
_SSH_PUBLIC = re.compile(r"(?:ssh-(?:rsa|ed25519|dss)|ecdsa-sha2-nistp[0-9]+|sk-ssh-ed25519@openssh\.com) AAAA")
# A sentence: several words and a full stop or question mark (a hint, a label), not a password.
_PROSE = re.compile(r"[A-Za-z][A-Za-z',]*(?: [A-Za-z0-9][A-Za-z0-9',]*){2,}[.?!:]?")


def is_benign(value: str) -> bool:
    """True for values that cannot be a credential: empty, flags, placeholders, paths, plain URLs,
    secret-manager references, public keys and certificates."""
    v = value.strip().strip("\"'")
    return (
        not v
        or v.lower() in _BENIGN_WORDS
        or _PLACEHOLDER.fullmatch(v) is not None
        or _PATH.fullmatch(v) is not None
        or _URL.fullmatch(v) is not None
        or _SECRET_REF.match(v) is not None
        or (v.startswith("-----BEGIN") and _PUBLIC_PEM.match(v) is not None and "PRIVATE KEY" not in v)
        or _SSH_PUBLIC.match(v) is not None
    )


def _is_prose(value: str) -> bool:
    v = value.strip()
    return v.count(" ") >= 2 and v[-1:] in ".?!" and _PROSE.fullmatch(v) is not None


_PLAIN_WORD = re.compile(r"[A-Za-z]+(?:[-_][A-Za-z]+)*")
# A Kubernetes-style name: lower case, digits and dashes, at least two parts.
_DNS_NAME = re.compile(r"[a-z0-9]+(?:[-.][a-z0-9]+)+")


def _names_a_key(word: str, value: str) -> bool:
    """A value that is the name of a key or a Secret rather than a credential: a lower-case
    dashed name that contains the credential word (`postgres-password`, `db-token`), or any
    lower-case dashed name without digits under a `secret` word (`exchange-tls`, a Secret's
    name; a password under a password word is still reported)."""
    if len(value) > 63 or not _DNS_NAME.fullmatch(value):
        return False
    stem = word.split(" ")[0]
    return stem in value or (stem in ("secret", "secrets") and not any(c.isdigit() for c in value))


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
    if kind is None:
        return None
    strength, word = kind
    if strength == "weak" and not high_entropy(value):
        return None  # the cheaper test first: most values under `key`/`session` names are words
    if is_benign(value):
        return None
    v = value.strip().strip("\"'")
    if word not in PASSWORD_WORDS and v.isdigit():
        return None  # `max_tokens: 4096`: a count; only a password can be a plain number (a PIN)
    if v.lower() == word.replace(" ", "") or v.lower() in key_words(key) or _is_prose(v):
        return None  # `password: Password` (a label), `secretKey: password` (a key's name), a hint
    if _names_a_key(word, v):
        return None  # `adminPasswordKey: postgres-password`, `TLS_SECRET: exchange-tls`: names
    if word in AMBIGUOUS_WORDS and (_PLAIN_WORD.fullmatch(v) or "\n" in v.strip()):
        return None  # `auth: oidc` (a mode switch); a file `auth.conf` (its lines are scanned one by one)
    if strength == "credential":
        return Finding("key-name", f"its name says it is a credential ({word!r})", line)
    return Finding("weak-key", f"its name looks sensitive ({word!r}) and its value is a random-looking token", line)


# --- shapes inside values -------------------------------------------------------------------

@dataclass(frozen=True)
class Shape:
    """A credential recognised by its form; `anchors` are substrings every match contains (any
    case); `check`, when set, confirms a match (a Basic header decodes to `user:password`)."""

    rule: str
    what: str
    anchors: tuple[str, ...]
    pattern: re.Pattern[str]
    check: Callable[[re.Match[str]], bool] | None = None


def _basic_credentials(m: re.Match[str]) -> bool:
    """A Basic authorization header's token decodes to `user:password`."""
    text = _b64_text(m.group("secret"))
    return text is not None and ":" in text and bool(text.split(":", 1)[1])


def _bearer_token(m: re.Match[str]) -> bool:
    token = m.group("secret")
    return len(token) >= 16 and any(c.isdigit() for c in token) and not is_benign(token)


def _pgpass_line(m: re.Match[str]) -> bool:
    # `host:port:database:user:password`, not an IPv6 address or a time (fields with letters)
    _host, _port, db, user, password = m.group(0).split(":")
    return (any(c.isalpha() or c == "*" for c in db) and any(c.isalpha() for c in user)
            and not is_benign(password) and not _HEX_GROUP.fullmatch(password))


_HEX_GROUP = re.compile(r"[0-9a-fA-F]{1,4}")
_ALNUM_BEFORE = r"(?<![A-Za-z0-9])"
_ALNUM_AFTER = r"(?![A-Za-z0-9])"
_TOKEN_AFTER = r"(?![A-Za-z0-9_\-])"
SHAPES = (
    Shape("url-password", "a URL with a password in it (scheme://user:PASSWORD@host)", ("://",),
          re.compile(r"://[^\s/:@]*:(?P<secret>[^\s/@]+)@")),
    Shape("private-key", "a PEM private key", ("PRIVATE KEY",),
          re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")),
    Shape("aws-access-key", "an AWS access key id (AKIA.../ASIA...)", ("AKIA", "ASIA"),
          re.compile(_ALNUM_BEFORE + r"(?:AKIA|ASIA)[A-Z0-9]{16}" + _ALNUM_AFTER)),
    Shape("github-token", "a GitHub token (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_)",
          ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
          re.compile(_ALNUM_BEFORE + r"(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})" + _ALNUM_AFTER)),
    Shape("gitlab-token", "a GitLab token (glpat-, glrt-, gldt-, ...)",
          ("glpat-", "glrt-", "gldt-", "glptt-", "glcbt-", "glft-", "glimt-", "glagent-", "gloas-", "glsoat-"),
          re.compile(_ALNUM_BEFORE + r"gl(?:pat|rt|dt|ptt|cbt|ft|imt|agent|oas|soat)-[A-Za-z0-9_\-]{20,}")),
    Shape("slack-token", "a Slack token (xox?-, xapp-)", ("xox", "xapp-"),
          re.compile(_ALNUM_BEFORE + r"(?:xox[a-z]|xapp)-[A-Za-z0-9\-]{10,}")),
    Shape("slack-webhook", "a Slack incoming-webhook URL (the URL is the credential)", ("hooks.slack.com/services/",),
          re.compile(r"hooks\.slack\.com/services/T[A-Za-z0-9_]+/B[A-Za-z0-9_]+/[A-Za-z0-9_]+")),
    Shape("discord-webhook", "a Discord webhook URL (the URL is the credential)", ("/api/webhooks/",),
          re.compile(r"discord(?:app)?\.com/api/webhooks/[0-9]+/[A-Za-z0-9_\-]{30,}")),
    Shape("jwt", "a JSON Web Token (eyJ....eyJ....)", ("eyJ",),
          re.compile(_ALNUM_BEFORE + r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*")),
    Shape("google-api-key", "a Google API key (AIza...)", ("AIza",),
          re.compile(_ALNUM_BEFORE + r"AIza[0-9A-Za-z_\-]{35}" + _TOKEN_AFTER)),
    Shape("google-oauth-secret", "a Google OAuth client secret (GOCSPX-)", ("GOCSPX-",),
          re.compile(r"GOCSPX-[A-Za-z0-9_\-]{24,}")),
    Shape("stripe-key", "a Stripe live secret key (sk_live_/rk_live_)", ("sk_live_", "rk_live_"),
          re.compile(_ALNUM_BEFORE + r"[rs]k_live_[0-9A-Za-z]{20,}")),
    Shape("openai-key", "an OpenAI or Anthropic API key (sk-proj-, sk-...T3BlbkFJ..., sk-ant-)",
          ("sk-proj-", "sk-svcacct-", "sk-admin-", "t3blbkfj", "sk-ant-"),
          re.compile(_ALNUM_BEFORE + r"sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,}|[A-Za-z0-9_\-]{16,}T3BlbkFJ[A-Za-z0-9_\-]{16,}"
                     r"|ant-(?:api|admin)[0-9]{2}-[A-Za-z0-9_\-]{80,})")),
    Shape("sendgrid-key", "a SendGrid API key (SG.x.y)", ("SG.",),
          re.compile(_ALNUM_BEFORE + r"SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43}" + _TOKEN_AFTER)),
    Shape("npm-token", "an npm access token (npm_)", ("npm_",),
          re.compile(_ALNUM_BEFORE + r"npm_[A-Za-z0-9]{36}" + _ALNUM_AFTER)),
    Shape("pypi-token", "a PyPI upload token (pypi-AgEIcHlwaS5vcmc...)", ("pypi-AgEIcHlwaS5vcmc",),
          re.compile(r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_\-]{50,}")),
    Shape("huggingface-token", "a Hugging Face token (hf_)", ("hf_",),
          re.compile(_ALNUM_BEFORE + r"hf_[A-Za-z]{34}" + _ALNUM_AFTER + r"|" + _ALNUM_BEFORE + r"hf_[A-Za-z0-9]{34}" + _ALNUM_AFTER)),
    Shape("digitalocean-token", "a DigitalOcean token (dop_v1_, doo_v1_, dor_v1_)", ("_v1_",),
          re.compile(_ALNUM_BEFORE + r"do[opr]_v1_[a-f0-9]{64}" + _ALNUM_AFTER)),
    Shape("shopify-token", "a Shopify token (shpat_, shpss_, shpca_, shppa_)", ("shpat_", "shpss_", "shpca_", "shppa_"),
          re.compile(_ALNUM_BEFORE + r"shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}" + _ALNUM_AFTER)),
    Shape("vault-token", "a HashiCorp Vault token (hvs., hvb., hvr.)", ("hvs.", "hvb.", "hvr."),
          re.compile(_ALNUM_BEFORE + r"hv[sbr]\.[A-Za-z0-9_\-]{24,}")),
    Shape("grafana-token", "a Grafana service-account or cloud token (glsa_, glc_)", ("glsa_", "glc_"),
          re.compile(_ALNUM_BEFORE + r"(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})")),
    Shape("telegram-token", "a Telegram bot token", (":aa",),
          re.compile(_ALNUM_BEFORE + r"[0-9]{8,10}:AA[A-Za-z0-9_\-]{33}" + _TOKEN_AFTER)),
    Shape("mailgun-key", "a Mailgun API key (key-...)", ("key-",),
          re.compile(_ALNUM_BEFORE + r"key-[0-9a-f]{32}" + _ALNUM_AFTER)),
    Shape("age-key", "an age secret key (AGE-SECRET-KEY-1...)", ("AGE-SECRET-KEY-1",),
          re.compile(r"AGE-SECRET-KEY-1[0-9A-Z]{58}")),
    Shape("azure-client-secret", "an Azure AD client secret (...8Q~...)", ("q~",),
          re.compile(_ALNUM_BEFORE + r"[A-Za-z0-9_~.\-]{3}[0-9]Q~[A-Za-z0-9_~.\-]{31,34}" + _TOKEN_AFTER)),
    Shape("azure-sas", "an Azure shared access signature (sig=)", ("sig=",),
          re.compile(r"[?&]sig=(?P<secret>[A-Za-z0-9%+/=]{20,})")),
    Shape("basic-auth", "an HTTP Basic authorization with its user and password", ("basic ", "basic\t"),
          re.compile(r"(?i:basic)[ \t]+(?P<secret>[A-Za-z0-9+/]{8,}={0,2})" + _TOKEN_AFTER), _basic_credentials),
    Shape("bearer-token", "an HTTP Bearer authorization with its token", ("bearer ", "bearer\t"),
          re.compile(r"(?i:bearer)[ \t]+(?P<secret>[A-Za-z0-9+/=._~\-]{8,})"), _bearer_token),
    Shape("password-hash", "a password hash (htpasswd, crypt)", ("$apr1$", "$2y$", "$2a$", "$2b$", "$5$", "$6$", "{sha}", "{ssha}"),
          re.compile(r"\$(?:apr1|2[aby]|[56])\$[./A-Za-z0-9$]{20,}|\{S?SHA\}[A-Za-z0-9+/]{20,}=*")),
    Shape("connect-string", "an Oracle-style connect string with a password (user/PASSWORD@host)", ("@",),
          # not an image digest (`grafana/grafana@sha256:`) or a version (`actions/checkout@v4`)
          re.compile(r"(?:^|(?<=[\s=\"']))[A-Za-z_][A-Za-z0-9_$#]*/(?P<secret>[^\s/@\"']+)@"
                     r"(?!sha[0-9]+:|v?[0-9]+(?:\.[0-9]+){0,2}(?![0-9.:]))[A-Za-z0-9_(\[]")),
    Shape("cli-password", "a password on a command line (mysql -pPASSWORD, redis-cli -a PASSWORD, curl -u user:PASSWORD)",
          ("mysql", "redis-cli", "curl", "docker"),
          re.compile(r"\b(?:mysql(?:dump|admin|import|sh)?[^\n]*?\s-p(?P<secret>[^\s-][^\s]*)"
                     r"|redis-cli[^\n]*?\s-a[ \t]+(?P<secret2>[^\s-][^\s]*)"
                     r"|curl[^\n]*?\s(?:-u|--user)[ \t]*[^\s:]+:(?P<secret3>[^\s]+)"
                     r"|docker[ \t]+login[^\n]*?\s(?:-p|--password)[ \t]+(?P<secret4>[^\s-][^\s]*))")),
    Shape("sql-password", "a password in SQL (WITH PASSWORD '...', IDENTIFIED BY '...')", ("password '", "identified by '"),
          re.compile(r"(?i:\bpassword|\bidentified\s+by)\s+'(?P<secret>[^'\n]+)'")),
    Shape("sentinel-auth", "a Redis Sentinel password (sentinel auth-pass)", ("auth-pass",),
          re.compile(r"(?m)^[ \t]*sentinel[ \t]+auth-pass[ \t]+\S+[ \t]+(?P<secret>\S+)")),
    Shape("databricks-token", "a Databricks token (dapi...)", ("dapi",),
          re.compile(_ALNUM_BEFORE + r"dapi[0-9a-f]{32}(?:-[0-9])?" + _ALNUM_AFTER)),
    Shape("pgpass", "a .pgpass line (host:port:database:user:PASSWORD)", (),
          re.compile(r"(?m)^[^:\s#]+:(?:[0-9]+|\*):[^:\s]+:[^:\s]+:[^:\s]+$"), _pgpass_line),
)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _shape_finding(text: str, shape: Shape) -> Finding | None:
    for m in shape.pattern.finditer(text):
        groups = m.groupdict()
        secret = next((groups[g] for g in ("secret", "secret2", "secret3", "secret4") if groups.get(g)), None)
        if secret is not None and is_benign(secret):
            continue
        if shape.check is not None and not shape.check(m):
            continue
        return Finding(shape.rule, f"the value holds {shape.what}", _line_of(text, m.start()))
    return None


def shape_findings(text: str) -> list[Finding]:
    """URL passwords, private keys and token shapes anywhere in `text`: the first hit of each."""
    lower = _ascii_lower(text)
    found = (_shape_finding(text, s) for s in SHAPES if any(a.lower() in lower for a in s.anchors))
    return [f for f in found if f is not None]


# --- credentials set inside a value (config files, DSNs, query strings, CLI flags) -----------

HINT_WORDS = ("pass", "pw", "secret", "token", "key", "cred", "auth", "bearer", "salt", "seed",
              "cookie", "session", "signature", "licen")
_NAME_RUN = re.compile(r"[A-Za-z0-9_.\-]*")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
_BEFORE_NAME = frozenset(" \t\r\n{,;?&(-:[$<")
_QUOTES = "\"'"
MAX_NAME = 80
_VALUE = re.compile(
    r"(?P<q>[\"'])?\]?[ \t]*(?:=>|[:=]|(?(q),|(?!)))[ \t]*"  # `=`, `:`, PHP's `=>`, `$a['name'] =`, `define('NAME', ...)`
    r"(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'"
    r"|(?P<bare><[^<>\n]*>|\$(?:__[a-z]+)?\{[^}\n]*\}|[A-Za-z_][A-Za-z0-9_.]*(?:\([^)\n]*\)|\[[^\]\n]*\])|[^\s,;&}\]\"')]*))"
)
# A directive: the name, one argument, the end of the line (`requirepass x`, Apache's
# `AuthLDAPBindPassword "x"`, nginx's `proxy_set_header X-Api-Key x;`).
_DIRECTIVE = re.compile(r"[ \t]+(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s;\"']+))[ \t]*;?[ \t]*(?:\r?\n|$)")
# What may stand before a directive's name on its line: nothing, or a header-setting directive.
_DIRECTIVE_PREFIX = re.compile(
    r"[ \t]*(?:(?:proxy_set_header|add_header|more_set_headers|grpc_set_header|(?:Request)?Header[ \t]+(?:always[ \t]+)?(?:set|add|append))[ \t]+)?"
)
# XML: `<password>x</password>`, `<property name="db.password">x</property>`, `<add key="DbPassword" value="x"/>`
_ELEMENT_TEXT = re.compile(r"(?:[ \t][^<>]*)?>(?P<bare>[^<]*)</")
_NAMED_ELEMENT_TEXT = re.compile(r"[\"'][^<>]*?>(?P<bare>[^<]*)</")
_KEY_VALUE_ATTR = re.compile(r"[\"'][ \t]+value[ \t]*=[ \t]*(?:\"(?P<dq>[^\"]*)\"|'(?P<sq>[^']*)')")
# Not `--flag=`, and not `//host/:_authToken=` (an .npmrc line, a protocol-relative URL).
_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_.\-]*")
_WORDS_ONLY = re.compile(r"[ \t]*(?:[A-Za-z0-9_.\-]+[ \t]+)*")
_FLAG_VALUE = re.compile(r"[ \t]+(?:\"(?P<dq>[^\"\n]*)\"|'(?P<sq>[^'\n]*)'|(?P<bare>[^\s\-\"'][^\s]*))")
_AUTH_SCHEMES = ("bearer", "basic", "token")  # `Bearer x` is the value of an Authorization header
_COMMENT = re.compile(r"[ \t]*(?:#|;|//(?![^\s/]+/)|--(?:[ \t]|$)|<!--)")
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
    if start == end or text.startswith("${", start - 2):
        return None  # `${SMTP_PASSWORD:?message}`: a variable, not an assignment
    before = start - 1
    if before >= 0 and text[before] in _QUOTES:
        before -= 1
        if before >= 0 and text[before] == "=" and (_NAMED_ELEMENT_TEXT.match(text, end) or _KEY_VALUE_ATTR.match(text, end)):
            return start, end  # <property name="db.password">x</property>, <add key="DbPassword" value="x"/>
    if before >= 0 and text[before] not in _BEFORE_NAME:
        return None
    return start, end


def _value_of(m: re.Match[str]) -> str:
    groups = m.groupdict()
    return next((groups[g] for g in ("dq", "sq", "bare") if groups.get(g) is not None), "")


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
        if end == len(text):
            return None  # a name that ends the text (`key00`, `app-key-override`): no value follows it
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
        m = self._value(start, end)
        if m is None:
            return None
        self.seen_until = max(self.seen_until, m.end())
        value = _value_of(m)
        if m.re is _VALUE and m.group("bare") is not None and value.startswith(_STRUCTURE):
            return None  # a YAML flow collection, block scalar, anchor or tag: not the value itself
        name = text[start:end]
        found = key_finding(name, value.strip())
        if found is None:
            if _IDENTIFIER.fullmatch(value):
                self.seen_until = end  # `key="DbPassword" value="x"`: the value names the next credential
            return None
        what = "a credential" if found.rule == "key-name" else "a random-looking token on a sensitive name"
        return Finding("assignment", f"the value sets {name!r}, {what}", _line_of(text, start))

    def _value(self, start: int, end: int) -> re.Match[str] | None:
        """The value given to the name at text[start:end], in whichever syntax it is given."""
        text = self.text
        before = text[start - 1] if start else "\n"
        if before == "<":
            return _ELEMENT_TEXT.match(text, end)
        if before in _QUOTES and start >= 2 and text[start - 2] == "=":
            return _KEY_VALUE_ATTR.match(text, end) or _NAMED_ELEMENT_TEXT.match(text, end)
        m = _VALUE.match(text, end)
        if m is not None and (before not in _QUOTES or m.group("q") is not None):
            return m  # a quoted name ends at its quote: not `"token:refresh": ...`
        if before in _QUOTES:
            return _KEY_VALUE_ATTR.match(text, end)
        if text.startswith("-", start - 1) and (start < 2 or text[start - 2] in " \t-"):
            return _FLAG_VALUE.match(text, end)  # `--token x`: a command-line flag and its value
        prefix = _DIRECTIVE_PREFIX.match(text, self.line_start)
        name = text[start:end]
        if prefix is not None and prefix.end() == start and name.lower() not in _AUTH_SCHEMES:
            return _DIRECTIVE.match(text, end)
        if len(key_words(name)) >= 2 and _WORDS_ONLY.fullmatch(text, self.line_start, start):
            # `user admin insecure-password x` (HAProxy): a compound name on a line of plain words,
            # its one argument ending the line (not `hashed_password text);` in SQL)
            return _DIRECTIVE.match(text, end)
        return None


# --- one pass over a value --------------------------------------------------------------------
# A value is read once, by one automaton: every shape anchor and hint word, lower-cased, in
# Aho-Corasick form (ahocorasick_rs: Rust's aho-corasick crate). It reports the words as a regex
# alternation would find them (leftmost, then longest: "bearer " over "bearer", not overlapping)
# about seven times faster than Python's regex engine, whose first-character test passes nearly
# every letter of ordinary text. A shape's own regex then runs only if one of its anchors
# occurred, and a hint word is checked by hand. Linear time on any input, and ordinary config text
# costs one pass in C.

def _anchor_index(shapes: tuple[Shape, ...]) -> dict[str, tuple[Shape, ...]]:
    index: dict[str, tuple[Shape, ...]] = {}
    for shape in shapes:
        for anchor in shape.anchors:
            index[anchor.lower()] = (*index.get(anchor.lower(), ()), shape)
    return index


_ANCHOR_SHAPES = _anchor_index(SHAPES)
# Anchors that begin with a hint word ("bearer " and "bearer"): the gate matches the longer one,
# so the hint is checked from there too.
_ANCHOR_HINT = {a: len(h) for a in _ANCHOR_SHAPES for h in HINT_WORDS if a.startswith(h)}
_GATE_WORDS = tuple(sorted({*_ANCHOR_SHAPES, *HINT_WORDS}))
# Matches are (index into _GATE_WORDS, start, end) in characters of the text searched.
_GATE = ahocorasick_rs.AhoCorasick(_GATE_WORDS, matchkind=ahocorasick_rs.MatchKind.LeftmostLongest)
# A .pgpass line has no fixed substring; it is tried on texts with at least four colons.
_PGPASS = next(s for s in SHAPES if s.rule == "pgpass")


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
    for index, start, end in _GATE.find_matches_as_indexes(_ascii_lower(text)):
        word = _GATE_WORDS[index]
        shapes = _ANCHOR_SHAPES.get(word)
        if shapes is not None:
            candidates.update(s.rule for s in shapes)
            hint = _ANCHOR_HINT.get(word)
            if hint is None or assignment is not None:
                continue
            check = check or _Assignments(text)
            assignment = check(start, start + hint)
        elif assignment is None:
            check = check or _Assignments(text)
            assignment = check(start, end)
    if text.count(":") >= 4:
        candidates.add(_PGPASS.rule)
    found = [_shape_finding(text, s) for s in SHAPES if s.rule in candidates] if candidates else []
    return [f for f in (*found, assignment) if f is not None]


# The shape rules alone: bench/secrets_recall.py --tokens compares them with detect-secrets' plugins.
token_findings = shape_findings


# --- values encoded, or random, under a name that says nothing ----------------------------------

MIN_DECODED = 16  # shorter values are neither decoded nor taken for random tokens
_B64_TOKEN = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}|[A-Za-z0-9_\-]{16,}={0,2}")
_PRINTABLE = frozenset(range(0x20, 0x7F)) | {0x09, 0x0A, 0x0D}


def _b64_text(token: str) -> str | None:
    """The text a base64 token decodes to, or None (not base64, or binary)."""
    padded = token + "=" * (-len(token) % 4)
    try:
        raw = base64.urlsafe_b64decode(padded) if "-" in token or "_" in token else binascii.a2b_base64(padded)
    except (binascii.Error, ValueError):
        return None
    return text_of(raw)


def text_of(raw: bytes) -> str | None:
    """`raw` as text when it is text: UTF-8, or latin-1 (Java .properties files) when nearly all of
    it is printable; None for binary data."""
    if not raw or b"\x00" in raw:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    printable = sum(1 for b in raw if b in _PRINTABLE or b >= 0xA0)
    return text if printable >= 0.95 * len(raw) else None


# The escapes of characters a URL must encode (`:/?#[]@!$&'()*+,;=`, space, `%`): `%DB_PASSWORD%`
# is a placeholder, not URL-encoded.
_PERCENT = re.compile(r"%(?:2[0-9A-Fa-f]|3[AaBbDdFf]|40|5[BbDd])")


def decoded(value: str) -> str | None:
    """The text inside a value that is base64 or URL-encoded text, or None."""
    v = value.strip()
    # base64 of text mixes upper and lower case; Kubernetes names and hex digests do not
    if len(v) >= MIN_DECODED and not v.islower() and not v.isupper() and _B64_TOKEN.fullmatch(v):
        text = _b64_text(v)
        if text is not None:
            return text
    if "%" in v and _PERCENT.search(v):
        text = urllib.parse.unquote(v)
        if text != v:
            return text
    return None


# A random token: the whole value is one run of token characters that mixes upper case, lower
# case and digits with high entropy: an AWS secret access key, an Azure storage key or an API
# key under a name that says nothing (`S3_B`, `upstream`). Hex digests, UUIDs, names and versions
# are never all three or never this random.
MIN_RANDOM_ENTROPY = 4.2
_RANDOM_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{32,}")
_NOT_RANDOM_PREFIXES = ("sha1-", "sha256-", "sha384-", "sha512-", "pk_live_", "pk_test_", "sk_test_", "rk_test_", "AAAA")


# Base64 of a file (an image, an archive): data, not a key.
_FILE_SIGNATURES = (b"\x89PNG", b"GIF8", b"\xff\xd8\xff", b"%PDF", b"\x1f\x8b", b"PK\x03\x04", b"\x00\x00\x01\x00", b"RIFF")


def _is_file(token: str) -> bool:
    try:
        head = binascii.a2b_base64(token[:24] + "=" * (-len(token[:24]) % 4))
    except (binascii.Error, ValueError):
        return False
    return head.startswith(_FILE_SIGNATURES)


def random_token(value: str) -> bool:
    v = value.strip().strip("\"'")
    if not _RANDOM_TOKEN.fullmatch(v) or v.startswith(_NOT_RANDOM_PREFIXES) or _is_file(v):
        return False
    core = v.rstrip("=")
    return (any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)
            and entropy(core) >= MIN_RANDOM_ENTROPY)


def _public_key(key: str) -> bool:
    return bool(PUBLIC_WORDS.intersection(key_words(key))) if key else False


def scan_value(key: str, value: str) -> list[Finding]:
    """Every rule on one named value (a ConfigMap entry, an env variable, a field of an object);
    at most one finding per rule, in line order.

    A value that is base64 or URL-encoded text is scanned decoded as well; a value with no other
    finding that is one random token is reported unless its name says it is public or a digest."""
    # scan_text finds nothing without a hint word or anchor (or four colons, a .pgpass line)
    return _scan_named(key, value, value.count(":") >= 4 or bool(_GATE.find_matches_as_indexes(_ascii_lower(value))))


def _scan_named(key: str, value: str, gated: bool) -> list[Finding]:
    """scan_value, told whether the gate found anything in the value."""
    by_key = key_finding(key, value) if key and classify_key(key) is not None else None
    found = scan_text(value) if gated else []
    if by_key is not None:
        found.insert(0, by_key)
    if found:
        return sorted(found, key=lambda f: f.line)
    if len(value) < MIN_DECODED or (" " in value and "%" not in value):
        return []  # neither encoded nor one token
    return _encoded_or_random(key, value)


def _encoded_or_random(key: str, value: str) -> list[Finding]:
    """The rules for a value with no other finding: decoded, or one random token."""
    if "%" not in value and (value.islower() or value.isupper()):
        # Most values (names, images, hosts) are in one case: base64 of text mixes upper and lower
        # case (`decoded`), so does a random token (`random_token`), and without a `%` the value
        # is not URL-encoded. The same verdict as the two tests, for a fraction of their cost.
        return []
    inner = decoded(value)
    if inner is not None:
        return [Finding(f.rule, f"{f.reason} (encoded: base64 or URL)", 1) for f in scan_text(inner)]
    if random_token(value) and not _public_key(key):
        return [Finding("random-token", "the value is a random-looking token (an API key or access key shape)", 1)]
    return []


@functools.cache
def _rules_digest() -> bytes:
    """This module's own source: a scanner change makes every remembered verdict a miss."""
    return sha256(Path(__file__).read_bytes()).digest()


def object_digest(obj: Mapping[str, Any]) -> bytes:
    """The key under which "this object scanned clean" is remembered (generator/io/memo.py): the
    object as committed and the scanner's own source.

    BLAKE2b keyed with the source's digest: CPython's own BLAKE2 (`_blake2`, no OpenSSL loaded)
    hashes about three times faster than its own SHA-256 (5 ms against 15-19 ms for the 4 MB of
    3,000 objects)."""
    try:
        # marshal: about ten times faster than JSON; equal bytes only for equal objects (a change
        # of key order or of Python version only makes a miss). Format 2: later formats write
        # shared and interned strings as references, so equal objects parsed afresh or read
        # from the parse memo would give different bytes.
        blob = marshal.dumps(cast(Any, obj), 2)
    except ValueError:  # a type marshal does not know
        blob = json.dumps(obj, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
    return blake2b(blob, digest_size=32, key=_rules_digest()).digest()


def scan_data(data: Mapping[str, str]) -> dict[str, list[Finding]]:
    """Findings of a ConfigMap's `data`, by key (keys without findings left out)."""
    out: dict[str, list[Finding]] = {}
    for key, value in data.items():
        findings = scan_value(key, value)
        if findings:
            out[key] = findings
    return out


# --- every string of an object ------------------------------------------------------------------

FieldPath = tuple[str | int, ...]

# Fields that hold ciphertext or are checked by their own step (generator/secrets/producers.py):
# a Secret's data is refused there unless SOPS-encrypted, a SealedSecret's is encrypted. By kind;
# "*" for every kind.
_NOT_SCANNED: dict[str, tuple[FieldPath, ...]] = {
    "*": (("sops",),),
    "Secret": (("data",), ("stringData",)),
    "SealedSecret": (("spec", "encryptedData"),),
}
# Fields whose value names a key of a Secret rather than holding a credential.
_KEY_NAME_FIELDS: dict[str, frozenset[str]] = {
    "ExternalSecret": frozenset({"secretKey"}),
    "PushSecret": frozenset({"secretKey"}),
}
_FLAG = re.compile(r"--?([A-Za-z][A-Za-z0-9_.\-]*)")


def scan_fields(obj: Mapping[str, Any]) -> dict[FieldPath, list[Finding]]:
    """Findings in every string of one Kubernetes object as it is committed, by field path.

    Every string is scanned under the name of its field (a ConfigMap's data under its key, an
    `env` entry's value under the variable's name, `args: [--db-password, x]` under the flag);
    `binaryData` that decodes to text (UTF-8, or latin-1 .properties files) like `data`.

    The strings are gathered first and the gate (hint words and anchors) runs once over all of
    them: most strings of an object (names, images, ports) then cost a set lookup, not a scan.
    """
    kind = str(obj.get("kind", ""))
    skip = frozenset((*_NOT_SCANNED["*"], *_NOT_SCANNED.get(kind, ())))
    key_names = _KEY_NAME_FIELDS.get(kind, frozenset())
    ctx = _Context(skip, key_names, kind == "ConfigMap", frozenset((*(p[-1] for p in skip), *key_names)))
    strings: Gathered = []
    _gather_mapping(obj, (), ctx, strings)
    values = [value for _, _, _, value in strings]
    joined = "\n".join(values)
    hit = _gate_hits(values, joined)
    colons = joined.count(":") >= 4
    out: dict[FieldPath, list[Finding]] = {}
    for i, (parent, last, name, value) in enumerate(strings):
        gated = i in hit or (colons and value.count(":") >= 4)
        if gated or classify_key(name) is not None:
            found = _scan_named(name, value, gated)
        elif len(value) < MIN_DECODED or (" " in value and "%" not in value):
            continue
        else:
            found = _encoded_or_random(name, value)
        if found:
            out[(*parent, last)] = found
    return out


def _gate_hits(values: list[str], joined: str) -> set[int]:
    """The indices of the values in which the gate finds a hint word or an anchor (one pass of
    the automaton over all of them, `joined` by newlines, which no hint or anchor contains)."""
    matches = _GATE.find_matches_as_indexes(_ascii_lower(joined))
    if not matches:
        return set()
    # where each value after the first starts: its index is the number of these at or before a match
    starts = list(itertools.accumulate(map((1).__add__, map(len, values[:-1]))))
    return {bisect.bisect_right(starts, start) for _, start, _ in matches}


@dataclass(frozen=True)
class _Context:
    skip: frozenset[FieldPath]
    key_name_fields: frozenset[str]
    configmap: bool
    # The keys that end a path in `skip` or are in `key_name_fields`: one set lookup per key
    # tells the rest (nearly every key) to go on.
    stop: frozenset[str | int]


# One string each: the path of its parent, its key or index there, the name it is scanned under,
# the value. The full path is built only for a string with a finding (most have none).
Gathered = list[tuple[FieldPath, str | int, str, str]]


def _gather_mapping(node: Mapping[str, Any], path: FieldPath, ctx: _Context, out: Gathered) -> None:
    env_name = node.get("name") if len(path) > 1 and path[-2] == "env" else None
    if not isinstance(env_name, str):
        env_name = None
    for key, value in node.items():
        if key in ctx.stop and ((*path, key) in ctx.skip or key in ctx.key_name_fields):
            continue
        if isinstance(value, str):
            out.append((path, key, env_name if key == "value" and env_name is not None else str(key), value))
        elif isinstance(value, dict):
            if not path and key == "binaryData" and ctx.configmap:
                value = {k: t for k, v in value.items() if isinstance(v, str) and (t := _binary_text(v)) is not None}
            _gather_mapping(value, (*path, key), ctx, out)
        elif isinstance(value, list):
            _gather_list(value, (*path, key), str(key), ctx, out)


def _gather_list(node: list[Any], path: FieldPath, name: str, ctx: _Context, out: Gathered) -> None:
    before: Any = None
    for i, item in enumerate(node):
        # `args: [--db-password, x]`: the item after a flag is that flag's value
        flag = _FLAG.fullmatch(before) if isinstance(before, str) and before.startswith("-") else None
        if isinstance(item, str):
            out.append((path, i, flag.group(1) if flag else name, item))
        elif isinstance(item, dict):
            _gather_mapping(item, (*path, i), ctx, out)
        elif isinstance(item, list):
            _gather_list(item, (*path, i), flag.group(1) if flag else name, ctx, out)
        before = item


def _binary_text(value: str) -> str | None:
    try:
        raw = binascii.a2b_base64(value)
    except (binascii.Error, ValueError):
        return None
    return text_of(raw)


def field_label(obj: Mapping[str, Any], path: FieldPath) -> str:
    """A field path as people read it: `spec.template.spec.containers[engine].env[DB_PASSWORD].value`
    (a list item by its `name` when it has one, else by its index)."""
    label, node = "", cast(Any, obj)
    for part in path:
        if isinstance(part, int):
            item = node[part] if isinstance(node, list) and part < len(node) else None
            named = item.get("name") if isinstance(item, dict) else None
            label += f"[{named}]" if isinstance(named, str) else f"[{part}]"
            node = item
        else:
            label += f".{part}" if label else part
            node = node.get(part) if isinstance(node, dict) else None
    return label


def scan_object(obj: Mapping[str, Any]) -> Iterator[tuple[str, Finding]]:
    """(field label, finding) for one Kubernetes object as it is committed (the repo's own test
    runs it over every file of out/)."""
    for path, findings in scan_fields(obj).items():
        for f in findings:
            yield field_label(obj, path), f
