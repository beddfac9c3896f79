"""Recall and false-positive rate of our credential scanner and of detect-secrets, side by side,
on the labelled corpus in bench/secrets_corpus/corpus.jsonl.

    python bench/secrets_recall.py            # totals and one row per category
    python bench/secrets_recall.py --misses   # also list what each scanner got wrong (ids only)
    python bench/secrets_recall.py --tokens   # token-shape detectors alone: ours vs detect-secrets' plugins, hits and speed

A sample is a ConfigMap entry: a key and its value (a variable, or a whole file). Ours scans it
as the render does (`scan.scan_value`). detect-secrets (pip package `detect-secrets`, default
plugins and filters) scans it as a file in its own format: a multi-line value is written to a file
named after the key (`.npmrc`, `application.properties`), a one-line value as `KEY: "value"` in
a YAML file, the way it sits in a ConfigMap. A sample counts as found when a scanner reports
anything in it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "bench" / "secrets_corpus" / "corpus.jsonl"
sys.path.insert(0, str(ROOT))

from generator.secrets import scan  # noqa: E402

# detect-secrets plugins that recognise a credential by its shape (not by a keyword or entropy).
DS_TOKEN_PLUGINS = (
    "ArtifactoryDetector", "AWSKeyDetector", "AzureStorageKeyDetector", "DiscordBotTokenDetector",
    "GitHubTokenDetector", "GitLabTokenDetector", "JwtTokenDetector", "MailchimpDetector", "NpmDetector",
    "OpenAIDetector", "PrivateKeyDetector", "PypiTokenDetector", "SendGridDetector", "SlackDetector",
    "SquareOAuthDetector", "StripeDetector", "TelegramBotTokenDetector", "TwilioKeyDetector",
)


@dataclass(frozen=True)
class Sample:
    id: str
    label: str
    category: str
    key: str
    value: str

    @property
    def secret(self) -> bool:
        return self.label == "secret"


def load(path: Path = CORPUS) -> list[Sample]:
    return [Sample(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ours(samples: Sequence[Sample]) -> list[bool]:
    return [bool(scan.scan_value(s.key, s.value)) for s in samples]


def ours_tokens(samples: Sequence[Sample]) -> list[bool]:
    return [bool(scan.token_findings(s.value)) for s in samples]


def _detect_secrets() -> object | None:
    try:
        import detect_secrets
    except ImportError:
        return None
    return detect_secrets


def _sample_file(folder: Path, i: int, s: Sample) -> Path:
    sub = folder / f"{i:04d}"
    sub.mkdir()
    if "\n" in s.value:
        path = sub / s.key.replace("/", "_")
        path.write_text(s.value, encoding="utf-8")
    else:
        path = sub / "configmap.yaml"
        path.write_text(f"{s.key}: {json.dumps(s.value, ensure_ascii=False)}\n", encoding="utf-8")
    return path


def detect_secrets_flags(samples: Sequence[Sample], plugins: Sequence[str] | None = None) -> list[bool]:
    """detect-secrets on each sample, with its default plugins and filters (or only `plugins`)."""
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings, transient_settings

    flags = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = [_sample_file(Path(tmp), i, s) for i, s in enumerate(samples)]
        settings = default_settings() if plugins is None else transient_settings(
            {"plugins_used": [{"name": p} for p in plugins]})
        with settings:
            for path in paths:
                found = SecretsCollection(root=str(path.parent))
                found.scan_file(path.name)
                flags.append(bool(found.data))
    return flags


@dataclass
class Score:
    found: int = 0
    secrets: int = 0
    flagged: int = 0
    benign: int = 0

    def add(self, s: Sample, flagged: bool) -> None:
        if s.secret:
            self.secrets += 1
            self.found += flagged
        else:
            self.benign += 1
            self.flagged += flagged

    @property
    def recall(self) -> float:
        return self.found / self.secrets if self.secrets else float("nan")

    @property
    def fp_rate(self) -> float:
        return self.flagged / self.benign if self.benign else float("nan")

    def cells(self) -> str:
        recall = f"{self.found}/{self.secrets} {self.recall:6.1%}" if self.secrets else "-"
        fp = f"{self.flagged}/{self.benign} {self.fp_rate:5.1%}" if self.benign else "-"
        return f"{recall:>16} {fp:>14}"


def score(samples: Sequence[Sample], flags: Sequence[bool]) -> tuple[Score, dict[str, Score]]:
    total, per = Score(), {}
    for s, f in zip(samples, flags):
        total.add(s, f)
        per.setdefault(s.category, Score()).add(s, f)
    return total, per


def table(samples: Sequence[Sample], columns: dict[str, list[bool]]) -> str:
    names = list(columns)
    scored = {n: score(samples, columns[n]) for n in names}
    head = f"{'category':<20}" + "".join(f" {n + ' recall':>16} {'false pos.':>14}" for n in names)
    lines = [head, "-" * len(head)]
    for cat in sorted({s.category for s in samples}):
        lines.append(f"{cat:<20}" + "".join(" " + scored[n][1][cat].cells() for n in names))
    lines.append("-" * len(head))
    lines.append(f"{'ALL':<20}" + "".join(" " + scored[n][0].cells() for n in names))
    return "\n".join(lines)


def misses(samples: Sequence[Sample], flags: Sequence[bool], name: str) -> str:
    wrong = [f"  {'missed' if s.secret else 'false positive'}: {s.id} (key {s.key!r})"
             for s, f in zip(samples, flags) if f != s.secret]
    return f"{name}: {len(wrong)} wrong\n" + "\n".join(wrong)


def timed(fn: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - start) / rounds


def tokens_report(samples: Sequence[Sample]) -> str:
    """Token shapes alone: our shape rules vs detect-secrets' shape plugins, on the secrets that
    only a shape can find (SaaS and cloud tokens, keys, JWTs) and on every benign sample; and
    the time per MB of text for each, line by line as detect-secrets works."""
    from detect_secrets.core.scan import scan_line
    from detect_secrets.settings import transient_settings

    shaped = [s for s in samples if not s.secret or s.category in TOKEN_CATEGORIES]
    columns = {"ours": ours_tokens(shaped), "detect-secrets": detect_secrets_flags(shaped, DS_TOKEN_PLUGINS)}
    lines = [line for s in samples for line in s.value.splitlines()] * 20
    size = sum(len(line) + 1 for line in lines) / 1e6
    ours_s = timed(lambda: [scan.token_findings(line) for line in lines], 3)
    with transient_settings({"plugins_used": [{"name": p} for p in DS_TOKEN_PLUGINS]}):
        ds_s = timed(lambda: [list(scan_line(line)) for line in lines[: len(lines) // 20]], 1) * 20
    speed = (f"speed on {size:.2f} MB ({len(lines)} lines): ours {ours_s / size * 1000:.0f} ms/MB, "
             f"detect-secrets shape plugins {ds_s / size * 1000:.0f} ms/MB ({ds_s / ours_s:.0f}x)")
    return table(shaped, columns) + "\n" + speed


TOKEN_CATEGORIES = frozenset({
    "aws", "gcp", "azure", "openai", "anthropic", "sendgrid", "stripe", "slack", "github", "gitlab", "twilio",
    "npm", "pypi", "huggingface", "digitalocean", "shopify", "vault", "grafana", "telegram", "discord", "mailgun",
    "age", "pem", "jwt",
})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", action="store_true", help="list the samples each scanner got wrong")
    parser.add_argument("--tokens", action="store_true", help="compare the token-shape detectors alone, with speed")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    samples = load(args.corpus)
    n_secret = sum(s.secret for s in samples)
    print(f"corpus: {args.corpus.relative_to(ROOT) if args.corpus.is_relative_to(ROOT) else args.corpus}: "
          f"{n_secret} secrets, {len(samples) - n_secret} benign values, "
          f"{len({s.category for s in samples})} categories")
    columns = {"ours": ours(samples)}
    if _detect_secrets() is None:
        print("detect-secrets is NOT installed (pip install detect-secrets): only our scanner is measured")
    else:
        columns["detect-secrets"] = detect_secrets_flags(samples)
    print(table(samples, columns))
    for name, (total, _) in ((n, score(samples, f)) for n, f in columns.items()):
        print(f"{name}: recall {total.recall:.1%}, false positives {total.fp_rate:.1%}")
    if args.misses:
        for name, flags in columns.items():
            print(misses(samples, flags, name))
    if args.tokens:
        if _detect_secrets() is None:
            print("--tokens needs detect-secrets")
            return 1
        print("\ntoken shapes alone:")
        print(tokens_report(samples))
    return 0


if __name__ == "__main__":
    sys.exit(main())
