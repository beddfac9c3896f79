"""Writes holdout.jsonl: a second, smaller labelled set in formats and phrasings the scanner's rules
were NOT tuned on (written after the rules, measured once, not tuned against). Its numbers say
how the scanner does on input it has not seen; corpus.jsonl's say how it does on what it was
built for. Same format and fake, generated credentials as generate.py."""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

R = random.Random(7)
ALNUM = string.ascii_letters + string.digits


def rnd(n: int, alphabet: str = ALNUM) -> str:
    return "".join(R.choice(alphabet) for _ in range(n - 2)) + R.choice(string.digits) + R.choice(string.ascii_lowercase)


def pw() -> str:
    return rnd(14, ALNUM + "!@#%^&*")


SECRETS = [
    ("netrc", ".netrc", f"machine api.example.net\n  login deploy\n  password {pw()}\n"),
    ("git-credentials", ".git-credentials", f"https://deploy:{rnd(40)}@git.example.net\n"),
    ("terraform", "terraform.tfvars", f'db_password = "{pw()}"\nregion = "eu-west-1"\n'),
    ("terraform", "backend.tfvars", f'access_key = "AKIA{rnd(16, string.ascii_uppercase + "234567")}"\n'),
    ("ansible", "group_vars.yml", f"mysql_root_password: {pw()}\nmysql_port: 3306\n"),
    ("rails", "database.yml", f"production:\n  adapter: postgresql\n  username: app\n  password: {pw()}\n"),
    ("django", "settings.py", f"SECRET_KEY = '{rnd(50, ALNUM + '!@#$%^&*(-_=+)')}'\nDEBUG = False\n"),
    ("django", "local_settings.py", f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.postgresql', 'PASSWORD': '{pw()}'}}}}\n"),
    ("laravel", ".env", f"APP_KEY=base64:{base64.b64encode(R.randbytes(32)).decode()}\nAPP_DEBUG=false\n"),
    ("kubeconfig", "kubeconfig", f"users:\n- name: ci\n  user:\n    token: {rnd(40)}\n"),
    ("kubeconfig", "config", "users:\n- name: admin\n  user:\n    client-key-data: "
     + base64.b64encode(b"-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n").decode() + "\n"),
    ("s3cfg", ".s3cfg", f"[default]\naccess_key = AKIA{rnd(16, string.ascii_uppercase + '234567')}\nsecret_key = {rnd(40)}\n"),
    ("haproxy", "haproxy.cfg", f"userlist admins\n  user admin insecure-password {pw()}\n"),
    ("mosquitto", "mosquitto.conf", f"bridge_password {pw()}\nbridge_username edge\n"),
    ("supervisor", "supervisord.conf", f"[inet_http_server]\nport = 9001\nusername = admin\npassword = {pw()}\n"),
    ("rclone", "rclone.conf", f"[s3]\ntype = s3\naccess_key_id = AKIA{rnd(16, string.ascii_uppercase + '234567')}\nsecret_access_key = {rnd(40)}\n"),
    ("docker", "config.json", json.dumps({"auths": {"registry.example.net": {"auth": base64.b64encode(f"ci:{pw()}".encode()).decode()}}})),
    ("compose", "docker-compose.yml", f"services:\n  db:\n    environment:\n      - POSTGRES_PASSWORD={pw()}\n"),
    ("java", "jaas.conf", f'KafkaClient {{\n  org.apache.kafka.common.security.scram.ScramLoginModule required\n  username="app"\n  password="{pw()}";\n}};\n'),
    ("ldap", "ldap.conf", f"binddn cn=svc,dc=example,dc=com\nbindpw {pw()}\n"),
    ("sentry", "SENTRY_AUTH", "sntrys_" + rnd(60)),
    ("linear", "LINEAR", "lin_api_" + rnd(40)),
    ("postman", "POSTMAN", "PMAK-" + rnd(24, "0123456789abcdef") + "-" + rnd(34, "0123456789abcdef")),
    ("newrelic", "NR", "NRAK-" + rnd(27, string.ascii_uppercase + string.digits)),
    ("atlassian", "JIRA", "ATATT3xFfGF0" + rnd(180, ALNUM + "-_") + "=" + rnd(8, "0123456789ABCDEF")),
    ("dsn", "SQLALCHEMY", f"mysql+pymysql://app:{pw()}@db/app"),
    ("dsn", "CELERY_BROKER", f"sqs://AKIA{rnd(16, string.ascii_uppercase + '234567')}:{rnd(40)}@"),
    ("dsn", "LDAP_URI", f"ldaps://cn=admin,dc=example,dc=com:{pw()}@ldap.example.net"),
    ("cloud", "SERVICE", rnd(64)),
    ("cloud", "blob2", base64.b64encode(R.randbytes(48)).decode()),
    ("jwt", "ID", "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhcHAifQ." + rnd(86, ALNUM + "-_")),
    ("pem", "key", "-----BEGIN DSA PRIVATE KEY-----\nMIIBuw==\n-----END DSA PRIVATE KEY-----\n"),
    ("yaml", "app.yml", f"smtp:\n  user: mailer\n  pass: {pw()}\n"),
    ("ini", "my.cnf", f"[client]\nuser=root\npassword={pw()}\n"),
    ("env", "prod.env", f"MINIO_ROOT_PASSWORD={pw()}\nMINIO_ROOT_USER=admin\n"),
    ("args", "ARGS", f"--token {rnd(32)} --verbose"),
    ("curl", "healthcheck.sh", f"curl -u admin:{pw()} https://api.example.net/health\n"),
    ("properties", "gradle.properties", f"signing.password={pw()}\nnexusPassword={pw()}\n"),
    ("xml", "nuget.config", f'<packageSourceCredentials><feed><add key="Username" value="ci" /><add key="ClearTextPassword" value="{pw()}" /></feed></packageSourceCredentials>\n'),
    ("toml", "pyproject.toml", f'[tool.poetry.http-basic.internal]\nusername = "ci"\npassword = "{pw()}"\n'),
]

BENIGN = [
    ("netrc", ".netrc", "machine api.example.net\n  login deploy\n"),
    ("terraform", "variables.tf", 'variable "db_password" {\n  type      = string\n  sensitive = true\n}\n'),
    ("terraform", "main.tf", 'password = var.db_password\nkms_key_id = aws_kms_key.db.arn\n'),
    ("rails", "database.yml", 'production:\n  password: <%= ENV["DATABASE_PASSWORD"] %>\n'),
    ("django", "settings.py", "SECRET_KEY = os.environ['DJANGO_SECRET_KEY']\nDEBUG = False\n"),
    ("ansible", "vars.yml", "mysql_root_password: \"{{ vault_mysql_root_password }}\"\n"),
    ("kubeconfig", "kubeconfig", "users:\n- name: eks\n  user:\n    exec:\n      command: aws\n      args: [eks, get-token, --cluster-name, prod]\n"),
    ("compose", "docker-compose.yml", "services:\n  db:\n    environment:\n      POSTGRES_PASSWORD_FILE: /run/secrets/db\n"),
    ("haproxy", "haproxy.cfg", "frontend http\n  bind *:80\n  default_backend app\n"),
    ("ldap", "ldap.conf", "BASE dc=example,dc=com\nURI ldaps://ldap.example.net\nTLS_REQCERT demand\n"),
    ("mode", "SASL_MECHANISM", "OAUTHBEARER"),
    ("mode", "authMethod", "client_credentials"),
    ("mode", "grant_type", "refresh_token"),
    ("mode", "token_endpoint_auth_method", "private_key_jwt"),
    ("mode", "cookie_samesite", "Lax"),
    ("mode", "session_store", "cookie"),
    ("policy", "password_rotation", "90d"),
    ("policy", "secrets_provider", "aws-secrets-manager"),
    ("policy", "keyRotationPeriod", "7776000s"),
    ("ids", "GOOGLE_CLIENT_ID", "123456789012-" + rnd(32, string.ascii_lowercase + string.digits) + ".apps.googleusercontent.com"),
    ("ids", "ACCOUNT_SID", "AC" + rnd(32, "0123456789abcdef")),
    ("ids", "build_id", rnd(20, "0123456789")),
    ("ids", "otel_trace", "00-" + rnd(32, "0123456789abcdef") + "-" + rnd(16, "0123456789abcdef") + "-01"),
    ("digest", "helm_checksum", rnd(64, "0123456789abcdef")),
    ("digest", "go.sum", f"github.com/pkg/errors v0.9.1 h1:{base64.b64encode(R.randbytes(32)).decode()}\n"),
    ("digest", "package-lock", json.dumps({"integrity": "sha512-" + base64.b64encode(R.randbytes(64)).decode()})),
    ("public", "cosign.pub", "-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE\n-----END PUBLIC KEY-----\n"),
    ("public", "JWKS_URL", "https://id.example.net/.well-known/jwks.json"),
    ("ref", "DB_PASSWORD", "secretsmanager:prod/db:password"),
    ("ref", "api_token", "{{resolve:secretsmanager:prod/api:SecretString:token}}"),
    ("ref", "password", "ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]"),
    ("text", "WELCOME", "Reset your password from the account page."),
    ("text", "login.html", '<label for="password">Password</label>\n<input type="password" name="password" id="password">\n'),
    ("text", "errors.properties", "auth.invalid=Invalid credentials\ntoken.expired=Your token has expired\n"),
    ("config", "envoy.yaml", "transport_socket:\n  name: envoy.transport_sockets.tls\n  typed_config:\n    common_tls_context:\n      tls_certificate_sds_secret_configs:\n      - name: server_cert\n"),
    ("config", "prometheus.yml", "scrape_configs:\n- job_name: api\n  authorization:\n    credentials_file: /etc/prometheus/token\n"),
    ("config", "vault.hcl", 'storage "raft" {\n  path = "/vault/data"\n}\nseal "awskms" {\n  kms_key_id = "alias/vault"\n}\n'),
    ("config", "IMAGE_TAG", "1.27.3-alpine3.20"),
    ("config", "feature", "tokenBucket"),
    ("config", "GIT_REF", "refs/heads/release-2026.11"),
]


def main() -> None:
    rows = [{"id": f"secret/{c}/{i}", "label": "secret", "category": c, "key": k, "value": v} for i, (c, k, v) in enumerate(SECRETS, 1)]
    rows += [{"id": f"benign/{c}/{i}", "label": "benign", "category": c, "key": k, "value": v} for i, (c, k, v) in enumerate(BENIGN, 1)]
    out = Path(__file__).with_name("holdout.jsonl")
    out.write_text("".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in rows), encoding="utf-8")
    print(f"{out}: {len(SECRETS)} secrets, {len(BENIGN)} benign")


if __name__ == "__main__":
    main()
