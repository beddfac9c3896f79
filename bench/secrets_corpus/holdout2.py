"""Writes holdout2.jsonl: a third labelled set, written after the rules were adjusted to
holdout.jsonl, and measured once, untuned (see holdout.py for why)."""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

R = random.Random(11)
ALNUM = string.ascii_letters + string.digits
HEX = "0123456789abcdef"


def rnd(n: int, alphabet: str = ALNUM) -> str:
    if alphabet == HEX:
        return "".join(R.choice(alphabet) for _ in range(n))
    return "".join(R.choice(alphabet) for _ in range(n - 2)) + R.choice(string.digits) + R.choice(string.ascii_lowercase)


def pw() -> str:
    return rnd(13, ALNUM + "!#%+-_")


SECRETS = [
    ("jenkins", "credentials.xml", f"<com.cloudbees.plugins.credentials.impl.UsernamePasswordCredentialsImpl>\n  <username>ci</username>\n  <password>{pw()}</password>\n</com.cloudbees.plugins.credentials.impl.UsernamePasswordCredentialsImpl>\n"),
    ("java", "JAVA_OPTS", f"-Xmx512m -Djavax.net.ssl.keyStorePassword={pw()} -Dfile.encoding=UTF-8"),
    ("spring", "application.properties", f"spring.rabbitmq.host=mq\nspring.rabbitmq.password={pw()}\n"),
    ("gradle", "ORG_GRADLE_PROJECT_signingPassword", pw()),
    ("airflow", "AIRFLOW_CONN_WAREHOUSE", f"postgres://etl:{pw()}@warehouse:5432/dw"),
    ("smtp", "MAIL_URL", f"smtp://mailer:{pw()}@smtp.example.net:587"),
    ("ftp", "BACKUP_TARGET", f"ftp://backup:{pw()}@ftp.example.net/nightly"),
    ("sentinel", "sentinel.conf", f"sentinel monitor mymaster 10.0.0.5 6379 2\nsentinel auth-pass mymaster {pw()}\n"),
    ("sql", "init.sql", f"CREATE USER app WITH PASSWORD '{pw()}';\n"),
    ("sql", "grant.sql", f"CREATE USER 'app'@'%' IDENTIFIED BY '{pw()}';\n"),
    ("docker", "login.sh", f"docker login -u ci -p {pw()} registry.example.net\n"),
    ("git", "REPO_URL", f"https://oauth2:glpat-{rnd(20)}@gitlab.example.net/team/app.git"),
    ("helm", "HELM_ARGS", f"--set auth.password={pw()} --set replicas=2"),
    ("json", "db.json", json.dumps({"host": "db", "pwd": pw()})),
    ("yaml", "creds.yaml", f"credentials: {{username: svc, password: {pw()}}}\n"),
    ("stripe", "WEBHOOK", "whsec_" + rnd(32)),
    ("square", "SQUARE", "sq0csp-" + rnd(43, ALNUM + "-_")),
    ("databricks", "DBX", "dapi" + rnd(32, HEX)),
    ("cloudflare", "CF", rnd(40, ALNUM + "_-")),
    ("okta", "OKTA", "00" + rnd(40, ALNUM + "_-")),
    ("heroku", "HEROKU_API_KEY", "3f2b8c1e-9d4a-4b7e-8c2f-" + rnd(12, HEX)),
    ("powershell", "setup.ps1", f'$pw = ConvertTo-SecureString "{pw()}" -AsPlainText -Force\n'),
    ("env", ".env.production", f"SESSION_SECRET={rnd(48)}\nPORT=3000\n"),
    ("ini", "alembic.ini", f"[alembic]\nsqlalchemy.url = postgresql://alembic:{pw()}@db/app\n"),
    ("base64", "BOOTSTRAP_TOKEN", base64.b64encode(f"admin:{pw()}".encode()).decode()),
    ("xml", "server.xml", f'<Connector port="8443" keystoreFile="/etc/tls/ks.jks" keystorePass="{pw()}"/>\n'),
    ("toml", "netlify.toml", f'[build.environment]\n  NETLIFY_AUTH_TOKEN = "{rnd(43, ALNUM + "-_")}"\n'),
    ("properties", "kafka-client.properties", f"ssl.key.password={pw()}\nssl.keystore.password={pw()}\n"),
    ("args", "CMD", f"mongosh mongodb://db:27017 --username admin --password {pw()}"),
    ("pem", "id_ed25519", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n"),
]

BENIGN = [
    ("postgres", "postgresql.conf", "password_encryption = scram-sha-256\nssl = on\n"),
    ("nginx", "auth.conf", 'location /admin {\n  auth_basic "Restricted";\n  auth_basic_user_file /etc/nginx/.htpasswd;\n}\n'),
    ("prometheus", "prometheus.yml", "basic_auth:\n  username: prom\n  password_file: /etc/prometheus/pass\n"),
    ("properties", "application.properties", "spring.datasource.password=\nspring.datasource.username=app\n"),
    ("k8s", "automount", "automountServiceAccountToken: false\n"),
    ("csp", "CSP", "script-src 'self' 'nonce-{{ nonce }}'"),
    ("oauth", "OAUTH_SCOPES", "openid profile email offline_access"),
    ("oauth", "token_endpoint", "https://id.example.net/oauth2/token"),
    ("masked", "keycloak.json", json.dumps({"clientId": "app", "secret": "**********"})),
    ("django", "PASSWORD_HASHERS", "django.contrib.auth.hashers.Argon2PasswordHasher"),
    ("sql", "schema.sql", "CREATE TABLE users (id bigint, email text, hashed_password text);\n"),
    ("flags", "GF_AUTH_ANONYMOUS_ENABLED", "true"),
    ("ldap", "LDAP_BIND_DN", "cn=admin,dc=example,dc=com"),
    ("image", "logo", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
    ("git", "TREE", rnd(40, HEX)),
    ("jwt", "JWT_KID", "2026-11-key-1"),
    ("vault", "policy.hcl", 'path "secret/data/app/*" {\n  capabilities = ["read"]\n}\n'),
    ("openssl", "openssl.cnf", "[req]\ndefault_bits = 2048\ndefault_md = sha256\n"),
    ("header", "REQUEST_ID_HEADER", "X-Request-Id"),
    ("semver", "ENGINE_RANGE", ">=1.4.0 <2.0.0"),
    ("email", "ALERT_EMAIL", "ops+alerts@example.net"),
    ("ref", "DB_PASSWORD", "secretRef:db-credentials/password"),
    ("ref", "api_token", "${{ secrets.API_TOKEN }}"),
    ("ref", "PASSWORD", "{{ .Values.password | b64enc }}"),
    ("ref", "password", "((vault:secret/db.password))"),
    ("config", "redis.conf", "maxmemory 256mb\nmaxmemory-policy allkeys-lru\n"),
    ("config", "WORKER_SECRET_NAME", "worker-credentials"),
    ("config", "session.cookie_name", "__Host-session"),
    ("config", "tokenizer.json", json.dumps({"model": "wordpiece", "vocab_size": 30522})),
    ("config", "sshd_config", "AuthenticationMethods publickey\nPasswordAuthentication no\n"),
]


def main() -> None:
    rows = [{"id": f"secret/{c}/{i}", "label": "secret", "category": c, "key": k, "value": v} for i, (c, k, v) in enumerate(SECRETS, 1)]
    rows += [{"id": f"benign/{c}/{i}", "label": "benign", "category": c, "key": k, "value": v} for i, (c, k, v) in enumerate(BENIGN, 1)]
    out = Path(__file__).with_name("holdout2.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    print(f"{out}: {len(SECRETS)} secrets, {len(BENIGN)} benign")


if __name__ == "__main__":
    main()
