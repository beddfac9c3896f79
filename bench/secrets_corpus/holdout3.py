"""Writes holdout3.jsonl: a third held-out set, written after the rules were adjusted to
holdout2.jsonl, and measured once, untuned: the freshest estimate of how the scanner does on
values it was not built around (see holdout.py)."""

from __future__ import annotations

import json
import random
import string
from pathlib import Path

R = random.Random(23)
ALNUM = string.ascii_letters + string.digits


def rnd(n: int, alphabet: str = ALNUM) -> str:
    body = "".join(R.choice(alphabet) for _ in range(n))
    return body if alphabet != ALNUM else body[:-2] + R.choice(string.digits) + R.choice(string.ascii_lowercase)


def pw() -> str:
    return rnd(12, ALNUM + "!$%-_")


SECRETS = [
    ("env", "worker.env", f"CELERY_BROKER_URL=redis://:{pw()}@redis:6379/1\nCONCURRENCY=4\n"),
    ("yaml", "config.yml", f"database:\n  adapter: mysql2\n  password: \"{pw()}\"\n"),
    ("yaml", "docker-compose.override.yml", f"services:\n  api:\n    environment:\n      JWT_SIGNING_KEY: {rnd(40)}\n"),
    ("json", "firebase.json", json.dumps({"apiKey": "AIza" + rnd(35, ALNUM + "-_"), "projectId": "demo"})),
    ("json", "secrets.json", json.dumps({"smtp": {"user": "mailer", "pass": pw()}})),
    ("ini", "boto.cfg", f"[Credentials]\naws_secret_access_key = {rnd(40, ALNUM + '/+')}\n"),
    ("ini", "freetds.conf", f"[mssql]\n  host = sql.internal\n  password = {pw()}\n"),
    ("xml", "persistence.xml", f'<property name="javax.persistence.jdbc.password" value="{pw()}"/>\n'),
    ("xml", "applicationContext.xml", f'<bean id="ds"><property name="password" value="{pw()}"/></bean>\n'),
    ("url", "ELASTICSEARCH_URL", f"https://elastic:{pw()}@es.internal:9200"),
    ("url", "NATS_URL", f"nats://svc:{pw()}@nats:4222"),
    ("token", "SLACK_BOT", "xoxb-" + str(R.randrange(10**11, 10**12)) + "-" + rnd(24)),
    ("token", "GH_APP", "ghs_" + rnd(36)),
    ("token", "LLM_KEY", "sk-proj-" + rnd(48, ALNUM + "-_")),
    ("token", "NEUTRAL", rnd(44, ALNUM + "/+")),
    ("cli", "entrypoint", f"exec app --db-pass {pw()} --listen :8080"),
    ("cli", "psql.sh", f"PGPASSWORD={pw()} psql -h db -U app -c 'select 1'\n"),
    ("php", "parameters.php", f"<?php\nreturn ['db' => ['password' => '{pw()}']];\n"),
    ("toml", "credentials.toml", f"[default]\ntoken = \"{rnd(36)}\"\n"),
    ("properties", "hikari.properties", f"dataSource.user=app\ndataSource.password={pw()}\n"),
]

BENIGN = [
    ("yaml", "config.yml", "database:\n  adapter: mysql2\n  password: <%= ENV['DB_PASSWORD'] %>\n"),
    ("yaml", "values.yaml", "global:\n  postgresql:\n    auth:\n      existingSecret: pg-auth\n      secretKeys:\n        adminPasswordKey: postgres-password\n"),
    ("json", "package.json", json.dumps({"name": "web", "scripts": {"token:refresh": "node scripts/refresh.js"}})),
    ("json", "renovate.json", json.dumps({"extends": ["config:recommended"], "hostRules": [{"matchHost": "npm.example.net", "encrypted": {"token": "wcFMA/xDdHCJBTolAQ/+K"}}]})),
    ("ini", "tox.ini", "[testenv]\npassenv = DB_PASSWORD\ncommands = pytest\n"),
    ("xml", "persistence.xml", '<property name="javax.persistence.jdbc.password" value="${DB_PASSWORD}"/>\n'),
    ("url", "ELASTICSEARCH_URL", "https://es.internal:9200"),
    ("token", "API_TOKEN_HEADER", "Authorization"),
    ("token", "SESSION_SECRET_REF", "session-secret"),
    ("token", "secretKeyRef", "name: db, key: password"),
    ("hash", "BUILD_SHA", "".join(R.choice("0123456789abcdef") for _ in range(40))),
    ("hash", "docker_digest", "sha256:" + "".join(R.choice("0123456789abcdef") for _ in range(64))),
    ("cli", "entrypoint", "exec app --password-file /run/secrets/db --listen :8080"),
    ("cli", "healthcheck", "curl -fsS http://localhost:8080/healthz"),
    ("config", "AUTH_ISSUER", "https://login.example.net/realms/exchange"),
    ("config", "TOKEN_AUDIENCE", "api://exchange"),
    ("config", "grafana.ini", "[auth.anonymous]\nenabled = false\n[auth.basic]\nenabled = true\n"),
    ("config", "KEY_FORMAT", "PEM"),
    ("config", "SECRETS_MOUNT", "/var/run/secrets/app"),
    ("config", "TLS_SECRET", "exchange-tls"),
]


def main() -> None:
    rows = [{"id": f"secret/{c}/{i}", "label": "secret", "category": c, "key": k, "value": v} for i, (c, k, v) in enumerate(SECRETS, 1)]
    rows += [{"id": f"benign/{c}/{i}", "label": "benign", "category": c, "key": k, "value": v} for i, (c, k, v) in enumerate(BENIGN, 1)]
    out = Path(__file__).with_name("holdout3.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    print(f"{out}: {len(SECRETS)} secrets, {len(BENIGN)} benign")


if __name__ == "__main__":
    main()
