"""Writes corpus.jsonl: the labelled corpus the credential scanner is measured on.

Every credential here is generated (seeded, so the file is reproducible) and fake: random
characters in the shape of the real format, with the format's checksum where it has one
(GitHub and npm tokens end in a CRC32), never a real key. One JSON object per line:

    {"id": "...", "label": "secret" | "benign", "category": "...", "key": "...", "value": "..."}

`key` is what a ConfigMap would hold the value under: a variable name, or a file name when the
value is a whole file (`app.properties`, `.npmrc`). Run `python bench/secrets_corpus/generate.py`
after changing it, and commit corpus.jsonl with it.
"""

from __future__ import annotations

import base64
import json
import random
import string
import urllib.parse
import uuid
import zlib
from pathlib import Path

R = random.Random(20261127)
ALNUM = string.ascii_letters + string.digits
B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def rnd(n: int, alphabet: str = ALNUM) -> str:
    while True:
        s = "".join(R.choice(alphabet) for _ in range(n))
        # a generated token, like a real one, mixes letters and digits
        if alphabet in (HEX,) or (any(c.isdigit() for c in s) and any(c.isalpha() for c in s)):
            return s


def b62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def crc_token(prefix: str, body_len: int) -> str:
    """GitHub's and npm's token format: prefix, random base62 body, base62 CRC32 of the body."""
    body = rnd(body_len)
    return prefix + body + b62(zlib.crc32(body.encode()), 6)


def password() -> str:
    words = ["correct", "Horse", "battery", "Staple", "orbit", "Tango", "maple", "Quartz", "river"]
    shape = R.randrange(4)
    if shape == 0:
        return rnd(R.randrange(12, 24), ALNUM + "!#%^*_-")
    if shape == 1:
        return R.choice(words) + str(R.randrange(10, 9999)) + R.choice("!#$%&*") + R.choice(words)
    if shape == 2:
        return rnd(R.randrange(20, 33))
    return "-".join(R.choice(words).lower() for _ in range(4))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def jwt() -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    head = part({"alg": "HS256", "typ": "JWT"})
    body = part({"sub": str(uuid.UUID(int=R.getrandbits(128))), "iat": 1760000000 + R.randrange(10**6), "role": "service"})
    return f"{head}.{body}.{rnd(43, URLSAFE)}"


def pem_private(kind: str) -> str:
    label = {"rsa": "RSA PRIVATE KEY", "pkcs8": "PRIVATE KEY", "ec": "EC PRIVATE KEY",
             "openssh": "OPENSSH PRIVATE KEY", "enc": "ENCRYPTED PRIVATE KEY"}[kind]
    body = b64(R.randbytes(R.choice((121, 190, 600))))
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def pem_public(label: str) -> str:
    body = b64(R.randbytes(R.choice((91, 294, 700))))
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def aws_secret() -> str:
    return rnd(40, B64)


def aws_id() -> str:
    return "AKIA" + rnd(16, string.ascii_uppercase + "234567")


def azure_key() -> str:
    return b64(R.randbytes(64))


def host() -> str:
    return R.choice(["db", "postgres", "mysql", "orders-db", "pg-primary", "mq", "cache"]) + "." + R.choice(
        ["prod.svc.cluster.local", "internal", "example.net", "corp.example.com"])


def user() -> str:
    return R.choice(["app", "exchange", "orders", "svc_reporting", "admin", "billing"])


SAMPLES: list[dict[str, str]] = []


def add(label: str, category: str, key: str, value: str) -> None:
    n = sum(1 for s in SAMPLES if s["category"] == category and s["label"] == label) + 1
    SAMPLES.append({"id": f"{label}/{category}/{n}", "label": label, "category": category, "key": key, "value": value})


def secret(category: str, key: str, value: str) -> None:
    add("secret", category, key, value)


def benign(category: str, key: str, value: str) -> None:
    add("benign", category, key, value)


# ------------------------------------------------------------------------------- secrets

def secrets() -> None:
    # env files
    for _ in range(4):
        pw = password()
        secret("env-file", ".env", f"APP_ENV=production\nDB_HOST={host()}\nDB_PASSWORD={pw}\nLOG_LEVEL=info\n")
    secret("env-file", "app.env", f"export REDIS_URL=redis://:{password()}@{host()}:6379/0\nWORKERS=4\n")
    secret("env-file", "worker.env", f"QUEUE=orders\nSMTP_PASS='{password()}'\n")
    secret("env-file", "ci.env", f"# CI\nNPM_TOKEN={crc_token('npm_', 30)}\nNODE_ENV=production\n")
    secret("env-file", "backend.env", f"STRIPE_KEY=sk_live_{rnd(24)}\nCURRENCY=EUR\n")
    # properties
    for _ in range(3):
        secret("properties", "application.properties",
               f"spring.datasource.url=jdbc:postgresql://{host()}:5432/app\nspring.datasource.username={user()}\n"
               f"spring.datasource.password={password()}\nserver.port=8080\n")
    secret("properties", "mail.properties", f"mail.smtp.host=smtp.example.net\nmail.smtp.auth=true\nmail.smtp.password = {password()}\n")
    secret("properties", "kafka.properties",
           f"security.protocol=SASL_SSL\nsasl.mechanism=PLAIN\nsasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
           f"required username=\"{user()}\" password=\"{password()}\";\n")
    # latin-1 properties (binaryData in a ConfigMap; the value is the decoded text)
    secret("properties-latin1", "messages_de.properties", f"gruß=Grüße\nadmin.passwort={password()}\nadmin.password={password()}\n")
    secret("properties-latin1", "app_fr.properties", f"titre=Données\ndb.password={password()}\n")
    # TOML
    for _ in range(3):
        secret("toml", "config.toml", f"[database]\nhost = \"{host()}\"\nuser = \"{user()}\"\npassword = \"{password()}\"\n")
    secret("toml", "Cargo-registry.toml", f"[registries.internal]\nindex = \"https://crates.example.net/index\"\ntoken = \"{rnd(32)}\"\n")
    secret("toml", "grafana-agent.toml", f"[auth]\napi_key = \"{rnd(40)}\"\n")
    # INI
    for _ in range(3):
        secret("ini", "grafana.ini", f"[security]\nadmin_user = admin\nadmin_password = {password()}\n")
    secret("ini", "php.ini", f"[mail function]\nSMTP = smtp.example.net\nsmtp_password = \"{password()}\"\n")
    secret("ini", "pip.conf", f"[global]\nindex-url = https://{user()}:{password()}@pypi.example.net/simple\n")
    secret("ini", "odbc.ini",
           f"[orders]\nDriver = PostgreSQL Unicode\nServername = {host()}\nUsername = {user()}\nPassword = {password()}\n")
    # JSON
    for _ in range(3):
        secret("json", "config.json", json.dumps({"db": {"host": host(), "user": user(), "password": password()}}, indent=2))
    secret("json", "appsettings.json", json.dumps({"ConnectionStrings": {
        "Default": f"Server={host()};Database=orders;User Id={user()};Password={password()};"}}, indent=2))
    secret("json", "auth.json", json.dumps({"client_id": "orders-api", "client_secret": rnd(32)}))
    secret("json", ".dockerconfigjson", json.dumps({"auths": {"ghcr.io": {"auth": b64(f"{user()}:{crc_token('ghp_', 30)}".encode())}}}))
    # YAML
    for _ in range(3):
        secret("yaml", "application.yaml",
               f"spring:\n  datasource:\n    url: jdbc:mysql://{host()}:3306/app\n    username: {user()}\n    password: {password()}\n")
    secret("yaml", "alertmanager.yml", f"global:\n  smtp_auth_username: alerts\n  smtp_auth_password: '{password()}'\n")
    secret("yaml", "values.yaml", f"redis:\n  auth:\n    enabled: true\n    password: \"{password()}\"\n")
    # XML
    for _ in range(2):
        secret("xml", "settings.xml",
               f"<settings>\n  <servers>\n    <server>\n      <id>nexus</id>\n      <username>{user()}</username>\n"
               f"      <password>{password()}</password>\n    </server>\n  </servers>\n</settings>\n")
    secret("xml", "context.xml",
           f"<Context>\n  <Resource name=\"jdbc/app\" auth=\"Container\" type=\"javax.sql.DataSource\" username=\"{user()}\" "
           f"password=\"{password()}\" url=\"jdbc:postgresql://{host()}/app\"/>\n</Context>\n")
    secret("xml", "web.config",
           f"<configuration>\n  <connectionStrings>\n    <add name=\"Main\" connectionString=\"Data Source={host()};Initial Catalog=app;"
           f"User ID={user()};Password={password()}\" />\n  </connectionStrings>\n</configuration>\n")
    secret("xml", "hibernate.cfg.xml",
           f"<hibernate-configuration><session-factory>\n<property name=\"connection.password\">{password()}</property>\n"
           f"</session-factory></hibernate-configuration>\n")
    # .npmrc
    for _ in range(3):
        secret("npmrc", ".npmrc", f"registry=https://registry.npmjs.org/\n//registry.npmjs.org/:_authToken={crc_token('npm_', 30)}\n")
    secret("npmrc", ".npmrc", f"@corp:registry=https://npm.example.net/\n//npm.example.net/:_authToken={uuid.UUID(int=R.getrandbits(128))}\n")
    secret("npmrc", ".npmrc", f"//npm.example.net/:_auth={b64(f'{user()}:{password()}'.encode())}\nalways-auth=true\n")
    # .pgpass
    for _ in range(4):
        secret("pgpass", ".pgpass", f"{host()}:5432:{R.choice(['orders', 'app', '*'])}:{user()}:{password()}\n")
    # htpasswd
    secret("htpasswd", ".htpasswd", f"{user()}:$apr1${rnd(8)}${rnd(22, ALNUM + './')}\n")
    secret("htpasswd", "htpasswd", f"{user()}:$2y$10${rnd(53, ALNUM + './')}\n")
    secret("htpasswd", "auth", f"{user()}:{{SHA}}{b64(R.randbytes(20))}\n")
    secret("htpasswd", "users", f"admin:$6${rnd(16)}${rnd(86, ALNUM + './')}\n")
    # PHP
    for _ in range(3):
        secret("php", "wp-config.php", f"<?php\ndefine('DB_NAME', 'wordpress');\ndefine('DB_USER', '{user()}');\n"
               f"define('DB_PASSWORD', '{password()}');\ndefine('DB_HOST', '{host()}');\n")
    secret("php", "config.php", f"<?php\n$config['db_pass'] = \"{password()}\";\n")
    secret("php", "settings.php", f"<?php\n$databases['default']['default'] = array('username' => '{user()}', 'password' => '{password()}');\n")
    # nginx
    for _ in range(2):
        secret("nginx", "nginx.conf",
               f"location /api/ {{\n  proxy_pass http://backend;\n  proxy_set_header Authorization \"Basic {b64(f'{user()}:{password()}'.encode())}\";\n}}\n")
    secret("nginx", "default.conf",
           f"location / {{\n  proxy_set_header Authorization \"Bearer {rnd(40)}\";\n  proxy_pass http://upstream;\n}}\n")
    secret("nginx", "upstream.conf", f"location /x {{\n  proxy_set_header X-Api-Key {rnd(32)};\n}}\n")
    # Apache
    secret("apache", "httpd.conf", f"<Location /status>\n  RequestHeader set Authorization \"Basic {b64(f'{user()}:{password()}'.encode())}\"\n</Location>\n")
    secret("apache", "ldap.conf", f"<Location />\n  AuthLDAPBindDN \"cn=svc,dc=example,dc=com\"\n  AuthLDAPBindPassword \"{password()}\"\n</Location>\n")
    secret("apache", "proxy.conf", f"ProxyPass /api http://{user()}:{password()}@backend.internal/api\n")
    # connection strings
    for _ in range(3):
        secret("jdbc", "DATASOURCE_URL", f"jdbc:postgresql://{host()}:5432/orders?user={user()}&password={password()}")
    secret("jdbc", "JDBC", f"jdbc:mysql://{user()}:{password()}@{host()}:3306/app")
    secret("jdbc", "jdbc.url", f"jdbc:sqlserver://{host()}:1433;databaseName=app;user={user()};password={password()};encrypt=true")
    for _ in range(2):
        secret("odbc", "ODBC_DSN", f"Driver={{ODBC Driver 18 for SQL Server}};Server={host()};Database=app;Uid={user()};Pwd={password()};")
    secret("odbc", "DSN", f"DRIVER={{PostgreSQL}};SERVER={host()};PORT=5432;DATABASE=app;UID={user()};PASSWORD={password()}")
    for _ in range(2):
        secret("oracle", "ORACLE_CONNECT", f"{user()}/{password()}@{host()}:1521/ORCLPDB1")
    secret("oracle", "TNS", f"{user()}/{password()}@(DESCRIPTION=(ADDRESS=(PROTOCOL=TCP)(HOST={host()})(PORT=1521))(CONNECT_DATA=(SERVICE_NAME=app)))")
    for _ in range(3):
        secret("mongodb", "MONGO_URI", f"mongodb+srv://{user()}:{password()}@cluster0.{rnd(5).lower()}.mongodb.net/app?retryWrites=true")
    secret("mongodb", "mongo", f"mongodb://{user()}:{urllib.parse.quote(password(), safe='')}@{host()}:27017/app?authSource=admin")
    for _ in range(3):
        secret("amqp", "AMQP_URL", f"amqps://{user()}:{password()}@{host()}:5671/vhost")
    for _ in range(3):
        secret("redis", "REDIS", f"rediss://default:{password()}@{host()}:6380/0")
    secret("redis", "redis.conf", f"bind 0.0.0.0\nport 6379\nrequirepass {password()}\n")
    for _ in range(3):
        secret("mssql", "SQLSERVER", f"Server=tcp:{host()},1433;Initial Catalog=app;User ID={user()};Password={password()};Encrypt=True;")
    secret("mssql", "MSSQL", f"sqlserver://{user()}:{password()}@{host()}:1433?database=app")
    # cloud credentials under neutral names
    for _ in range(4):
        secret("aws", R.choice(["S3_B", "storage_b", "AWS_2", "uploader_s"]), aws_secret())
    secret("aws", "credentials", f"[default]\naws_access_key_id = {aws_id()}\naws_secret_access_key = {aws_secret()}\n")
    secret("aws", "AWS", f"{aws_id()}:{aws_secret()}")
    secret("aws", "boto.cfg", f"[Credentials]\naws_access_key_id = {aws_id()}\n")
    for _ in range(3):
        sa = {"type": "service_account", "project_id": f"proj-{rnd(6).lower()}", "private_key_id": rnd(40, HEX),
              "private_key": pem_private("pkcs8"), "client_email": "svc@proj.iam.gserviceaccount.com",
              "client_id": str(R.randrange(10**20, 10**21))}
        secret("gcp", R.choice(["gcp.json", "sa.json", "google.json"]), json.dumps(sa, indent=2))
    secret("gcp", "GOOGLE_MAPS", "AIza" + rnd(35, URLSAFE))
    secret("gcp", "oauth.json", json.dumps({"web": {"client_id": f"{R.randrange(10**11)}.apps.googleusercontent.com",
                                                    "client_secret": "GOCSPX-" + rnd(28, URLSAFE)}}))
    for _ in range(3):
        secret("azure", R.choice(["STORAGE", "blob_conn", "AZ"]),
               f"DefaultEndpointsProtocol=https;AccountName=st{rnd(8).lower()};AccountKey={azure_key()};EndpointSuffix=core.windows.net")
    for _ in range(2):
        secret("azure", R.choice(["AZ_STORAGE_2", "blob"]), azure_key())
    secret("azure", "SAS_URL", f"https://st{rnd(6).lower()}.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=o&sp=r&se=2027-01-01&sig={urllib.parse.quote(b64(R.randbytes(32)), safe='')}")
    secret("azure", "AAD", rnd(3) + "8Q~" + rnd(34, ALNUM + "~_.-"))
    # SaaS tokens (neutral key names)
    for _ in range(3):
        secret("openai", R.choice(["LLM", "upstream", "MODEL_PROVIDER_A"]), "sk-proj-" + rnd(74, URLSAFE) + "T3BlbkFJ" + rnd(74, URLSAFE))
    secret("openai", "oai", "sk-" + rnd(20) + "T3BlbkFJ" + rnd(20))
    secret("anthropic", "LLM_B", "sk-ant-api03-" + rnd(93, URLSAFE) + "AA")
    for _ in range(3):
        secret("sendgrid", R.choice(["MAILER", "mail_upstream", "SG"]), "SG." + rnd(22, URLSAFE) + "." + rnd(43, URLSAFE))
    for _ in range(3):
        secret("stripe", R.choice(["PAYMENTS", "stripe", "psp"]), R.choice(["sk_live_", "rk_live_"]) + rnd(R.choice((24, 99))))
    for _ in range(3):
        secret("slack", R.choice(["CHAT", "notifier", "slack"]),
               R.choice(["xoxb-", "xoxp-"]) + f"{R.randrange(10**11, 10**12)}-{R.randrange(10**12, 10**13)}-{rnd(24)}")
    secret("slack", "ALERTS_HOOK", f"https://hooks.slack.com/services/T{rnd(8).upper()}/B{rnd(8).upper()}/{rnd(24)}")
    for _ in range(3):
        secret("github", R.choice(["GH", "ci_bot", "REPO_ACCESS"]), crc_token(R.choice(["ghp_", "gho_", "ghs_"]), 30))
    secret("github", "GH_FINE", "github_pat_" + rnd(22) + "_" + rnd(59))
    for _ in range(3):
        secret("gitlab", R.choice(["GL", "gitlab", "RUNNER_REG"]), R.choice(["glpat-", "glrt-", "gldt-"]) + rnd(20, URLSAFE))
    for _ in range(2):
        secret("twilio", R.choice(["SMS", "twilio"]), f"https://AC{rnd(32, HEX)}:{rnd(32, HEX)}@api.twilio.com/2010-04-01")
    secret("twilio", "SMS_KEY", "SK" + rnd(32, HEX))
    secret("npm", "REGISTRY", crc_token("npm_", 30))
    secret("pypi", "UPLOAD", "pypi-AgEIcHlwaS5vcmc" + rnd(60, URLSAFE))
    secret("huggingface", "HF", "hf_" + rnd(34))
    secret("digitalocean", "DO", "dop_v1_" + rnd(64, HEX))
    secret("shopify", "SHOP", "shpat_" + rnd(32, HEX))
    secret("vault", "VAULT", "hvs." + rnd(90, URLSAFE))
    secret("grafana", "GRAFANA_CLOUD", "glsa_" + rnd(32) + "_" + rnd(8, HEX))
    secret("telegram", "BOT", f"{R.randrange(10**8, 10**10)}:AA{rnd(33, URLSAFE)}")
    secret("discord", "HOOK", f"https://discord.com/api/webhooks/{R.randrange(10**17, 10**18)}/{rnd(68, URLSAFE)}")
    secret("mailgun", "MG", "key-" + rnd(32, HEX))
    secret("age", "SOPS_AGE", "AGE-SECRET-KEY-1" + rnd(58, string.ascii_uppercase + "023456789"))
    # PEM private keys
    for kind in ("rsa", "pkcs8", "ec", "openssh", "enc"):
        secret("pem", R.choice(["tls.key", "server.pem", "id_rsa", "signing.pem", "key.pem"]), pem_private(kind))
    secret("pem", "bundle.pem", pem_public("CERTIFICATE") + pem_private("rsa"))
    # JWT
    for _ in range(3):
        secret("jwt", R.choice(["SESSION_SEED", "bootstrap", "SERVICE_IDENTITY"]), jwt())
    secret("jwt", "curl.sh", f"curl -H 'Authorization: Bearer {jwt()}' https://api.example.net/v1/orders\n")
    # base64- and URL-encoded
    for _ in range(2):
        secret("base64", R.choice(["BOOTSTRAP", "blob"]), b64(f"password={password()}\n".encode()))
    secret("base64", "PROXY_AUTH", "Basic " + b64(f"{user()}:{password()}".encode()))
    secret("base64", "HEADERS", f"Authorization: Basic {b64(f'{user()}:{password()}'.encode())}")
    secret("base64", "DSN_B64", b64(f"postgres://{user()}:{password()}@{host()}/app".encode()))
    secret("base64", "cfg", b64(json.dumps({"username": user(), "password": password()}).encode()))
    for _ in range(2):
        secret("urlencoded", R.choice(["CALLBACK", "next"]),
               urllib.parse.quote(f"postgres://{user()}:{password()}@{host()}/app", safe=""))
    secret("urlencoded", "FORM", f"grant_type=password&username={user()}&password={urllib.parse.quote(password(), safe='')}")
    secret("urlencoded", "LINK", f"https://api.example.net/export?format=csv&api_key={rnd(32)}")
    secret("urlencoded", "WEBHOOK", f"https://hooks.example.net/in?access_token={rnd(40)}")
    # plain key/value credentials (the most common case)
    for key in ("POSTGRES_PASSWORD", "db_password", "adminPassword", "MYSQL_ROOT_PASSWORD", "client_secret",
                "API_KEY", "apiKey", "SECRET_KEY_BASE", "JWT_SECRET", "session_secret", "smtp_pass", "LDAP_BIND_PW",
                "private_key_passphrase", "encryption_key", "webhook_secret", "COOKIE_SECRET"):
        secret("key-value", key, password() if "pass" in key.lower() or "pw" in key.lower() else rnd(R.choice((24, 32, 48))))
    # CLI arguments and shell
    secret("args", "ARGS", f"--db-host={host()} --db-password={password()} --port=8080")
    secret("args", "command", f"PGPASSWORD='{password()}' psql -h {host()} -U {user()} app")
    secret("args", "entrypoint.sh", f"#!/bin/sh\nmysql -u{user()} -p{password()} -h {host()} app < /init.sql\n")
    secret("args", "cmd", f"redis-cli -a {password()} -h {host()} ping")


# ------------------------------------------------------------------------------- benign

def benigns() -> None:
    # checksums and digests
    for _ in range(3):
        benign("checksum", R.choice(["checksum", "sha256", "CONFIG_HASH"]), rnd(64, HEX))
    benign("checksum", "md5", rnd(32, HEX))
    benign("checksum", "etag", f"\"{rnd(32, HEX)}\"")
    benign("checksum", "integrity", "sha384-" + b64(R.randbytes(48)))
    benign("checksum", "SRI", "sha512-" + b64(R.randbytes(64)))
    benign("checksum", "commit", rnd(40, HEX))
    benign("checksum", "GIT_SHA", rnd(7, HEX))
    benign("checksum", "sha256sum.txt", f"{rnd(64, HEX)}  app-linux-amd64.tar.gz\n{rnd(64, HEX)}  app-darwin-arm64.tar.gz\n")
    benign("checksum", "checksum/config", rnd(64, HEX))
    benign("checksum", "crc", str(R.randrange(2**32)))
    for _ in range(4):
        benign("image-digest", R.choice(["image", "IMAGE", "sidecar_image"]),
               f"ghcr.io/exchange/{R.choice(['engine', 'api', 'web'])}@sha256:{rnd(64, HEX)}")
    benign("image-digest", "digest", f"sha256:{rnd(64, HEX)}")
    benign("image-digest", "images.yaml", f"engine: registry.example.net/engine:1.4.2@sha256:{rnd(64, HEX)}\n")
    # UUIDs and ids
    for key in ("tenant_id", "CLIENT_ID", "request-id", "subscription", "instanceId"):
        benign("uuid", key, str(uuid.UUID(int=R.getrandbits(128))))
    benign("uuid", "TRACE", rnd(32, HEX))
    benign("uuid", "ulid", rnd(26, "0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
    benign("uuid", "AWS_ACCESS_KEY_ID_REF", "arn:aws:iam::123456789012:user/deployer")
    benign("uuid", "sentry_release", f"exchange@{R.randrange(100)}.{R.randrange(100)}.0+{rnd(12, HEX)}")
    # public keys and certificates
    for _ in range(3):
        benign("public-key", R.choice(["tls.crt", "ca.crt", "ca-bundle.pem"]), pem_public("CERTIFICATE"))
    benign("public-key", "jwt_public_key.pem", pem_public("PUBLIC KEY"))
    benign("public-key", "rsa.pub", pem_public("RSA PUBLIC KEY"))
    benign("public-key", "authorized_keys", f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{rnd(43, B64)} deploy@ci\n")
    benign("public-key", "known_hosts", f"github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ{rnd(300, B64)}\n")
    benign("public-key", "SSH_PUBLIC_KEY", f"ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{rnd(200, B64)} ops@example")
    benign("public-key", "jwks.json", json.dumps({"keys": [{"kty": "RSA", "kid": rnd(8), "use": "sig", "alg": "RS256", "n": rnd(342, URLSAFE), "e": "AQAB"}]}))
    benign("public-key", "csr.pem", pem_public("CERTIFICATE REQUEST"))
    benign("public-key", "PUBKEY", "age1" + rnd(58, "qpzry9x8gf2tvdw0s3jn54khce6mua7l"))
    benign("public-key", "signing-key.asc", "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + b64(R.randbytes(300)) + "\n-----END PGP PUBLIC KEY BLOCK-----\n")
    benign("public-key", "stripe_publishable", "pk_live_" + rnd(24))
    benign("public-key", "recaptcha_site_key", "6L" + rnd(38, URLSAFE))
    # placeholders and references
    for key, value in (("DB_PASSWORD", "${DB_PASSWORD}"), ("password", "$(DB_PASSWORD)"), ("api_key", "<your-api-key>"),
                       ("client_secret", "{{ .Values.clientSecret }}"), ("SECRET", "%(secret)s"), ("token", "${env:TOKEN}"),
                       ("PASSWORD", "***"), ("smtp_password", "${SMTP_PASSWORD:?set in the Secret}"), ("admin_password", "$ADMIN_PASSWORD"),
                       ("password", "${file:/run/secrets/db.properties:password}"), ("api_token", "${vault:secret/data/api#token}"),
                       ("DB_PASS", "REPLACE_ME"), ("secret", "{{ secret }}"), ("passwd", "xxxxxxxx"), ("PASSWORD", "<redacted>")):
        benign("placeholder", key, value)
    benign("placeholder", "grafana.ini", "[security]\nadmin_user = admin\nadmin_password = $__file{/run/secrets/grafana/admin_password}\n")
    benign("placeholder", "grafana-ds.ini", "[database]\npassword = $__env{GF_DATABASE_PASSWORD}\n")
    benign("placeholder", "context.xml",
           "<Context>\n  <Resource name=\"jdbc/app\" auth=\"Container\" type=\"javax.sql.DataSource\" username=\"${db.user}\" "
           "password=\"${db.password}\" url=\"jdbc:postgresql://db/app\"/>\n</Context>\n")
    benign("placeholder", "application.properties", "spring.datasource.password=${DB_PASSWORD}\nspring.datasource.username=${DB_USER:app}\n")
    benign("placeholder", "application.yaml", "spring:\n  datasource:\n    password: ${SPRING_DATASOURCE_PASSWORD}\n")
    benign("placeholder", "wp-config.php", "<?php\ndefine('DB_PASSWORD', getenv('WORDPRESS_DB_PASSWORD'));\ndefine('DB_USER', getenv('DB_USER'));\n")
    benign("placeholder", ".npmrc", "//registry.npmjs.org/:_authToken=${NPM_TOKEN}\n")
    benign("placeholder", "settings.xml", "<server><id>nexus</id><username>${env.NEXUS_USER}</username><password>${env.NEXUS_PASSWORD}</password></server>\n")
    benign("placeholder", "config.toml", "[database]\npassword = \"${DB_PASSWORD}\"\n")
    benign("placeholder", "nginx.conf", "location / {\n  proxy_set_header Authorization $http_authorization;\n  proxy_pass http://upstream;\n}\n")
    benign("placeholder", "appsettings.json", json.dumps({"ConnectionStrings": {"Default": "Server=db;Database=app;User Id=app;Password=%DB_PASSWORD%;"}}))
    benign("placeholder", "alertmanager.yml", "global:\n  smtp_auth_password_file: /etc/alertmanager/secrets/smtp\n")
    benign("placeholder", "values.yaml", "auth:\n  existingSecret: redis-auth\n  existingSecretPasswordKey: password\n")
    benign("placeholder", "DATABASE_URL", "postgres://exchange@db.prod.svc.cluster.local:5432/exchange")
    benign("placeholder", "REDIS_URL", "redis://redis:6379/0")
    benign("placeholder", "jdbc.url", "jdbc:postgresql://db:5432/app?sslmode=require")
    benign("placeholder", "MONGO_URI", "mongodb://mongo-0.mongo:27017,mongo-1.mongo:27017/app?replicaSet=rs0")
    benign("placeholder", "AMQP", "amqp://rabbitmq.internal:5672/%2F")
    benign("placeholder", "mongo_url", "mongodb://${MONGO_USER}:${MONGO_PASSWORD}@mongo:27017/app")
    benign("placeholder", "password_hint", "Your password must be at least 12 characters long.")
    # vault:/arn: and other secret references
    for key, value in (("DB_PASSWORD", "vault:secret/data/db#password"), ("api_key", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key-AbCdEf"),
                       ("token", "ref+vault://secret/app#/token"), ("password", "arn:aws:ssm:eu-west-1:123456789012:parameter/db/password"),
                       ("client_secret", "projects/123/secrets/client-secret/versions/latest"), ("secret", "azurekeyvault://kv-prod/secrets/app"),
                       ("credentials", "/var/run/secrets/kubernetes.io/serviceaccount/token"), ("password_file", "/run/secrets/db_password"),
                       ("SECRET_NAME", "exchange-postgres-credentials"), ("secretRef", "db-credentials"), ("token_path", "/etc/tokens/api"),
                       ("KMS_KEY", "arn:aws:kms:eu-west-1:123456789012:key/" + str(uuid.UUID(int=R.getrandbits(128)))),
                       ("signing_key_id", "projects/p/locations/global/keyRings/r/cryptoKeys/k"), ("vault_addr", "https://vault.internal:8200"),
                       ("op", "op://Prod/Database/password")):
        benign("reference", key, value)
    # mode switches
    for key, value in (("auth", "oidc"), ("AUTH_MODE", "ldap"), ("auth", "none"), ("authentication", "kerberos"), ("auth_type", "basic"),
                       ("mail.smtp.auth", "true"), ("token_auth", "enabled"), ("security.protocol", "SASL_SSL"), ("sasl.mechanism", "SCRAM-SHA-512"),
                       ("password_encoder", "bcrypt"), ("password_hash_algorithm", "argon2id"), ("auth", "token"), ("credentials", "instance-profile"),
                       ("secret_backend", "vault"), ("tokenizer", "wordpiece"), ("AUTH_PROVIDER", "github"), ("password_reset", "email"),
                       ("session", "redis"), ("key", "user_id"), ("partition_key", "tenant")):
        benign("mode", key, value)
    benign("mode", "grafana.ini", "[auth.generic_oauth]\nenabled = true\nname = SSO\nallow_sign_up = true\nscopes = openid email profile\n")
    benign("mode", "pg_hba.conf", "host all all 10.0.0.0/8 scram-sha-256\nlocal all postgres peer\n")
    benign("mode", "my.cnf", "[mysqld]\ndefault_authentication_plugin=caching_sha2_password\n")
    benign("mode", "sshd_config", "PasswordAuthentication no\nPubkeyAuthentication yes\nPermitRootLogin no\n")
    benign("mode", "redis.conf", "bind 0.0.0.0\nport 6379\nprotected-mode yes\n# requirepass foobared\n")
    # length and policy settings
    for key, value in (("PASSWORD_MIN_LENGTH", "12"), ("password_max_age_days", "90"), ("token_ttl_seconds", "3600"), ("max_tokens", "4096"),
                       ("session_timeout", "30m"), ("password_complexity", "high"), ("TOKEN_EXPIRY", "24h"), ("secret_rotation_days", "30"),
                       ("key_size", "2048"), ("jwt_algorithm", "RS256"), ("token_header", "X-Auth-Token"), ("password_policy", "strong"),
                       ("auth_retries", "5"), ("session_cookie_name", "sid"), ("api_key_header", "X-API-Key")):
        benign("policy", key, value)
    benign("policy", "security.properties",
           "password.min.length=12\npassword.require.digits=true\nlogin.max.attempts=5\ntoken.validity.seconds=3600\n")
    benign("policy", "keycloak.json", json.dumps({"passwordPolicy": "length(12) and digits(1) and notUsername", "accessTokenLifespan": 300}))
    # comments and docs
    benign("comment", "application.properties", "# spring.datasource.password=set via the DB_PASSWORD env var\nserver.port=8080\n")
    benign("comment", "config.yaml", "# password: do not put it here, it comes from a Secret\nlog_level: info\n")
    benign("comment", "README.txt", "Ask the platform team for the database password; it lives in Vault under secret/db.\n")
    benign("comment", "nginx.conf", "# proxy_set_header Authorization \"Basic ...\";\nlocation / { proxy_pass http://x; }\n")
    # ordinary configuration that mentions credentials
    for key, value in (("DB_USER", "exchange"), ("username", "admin"), ("login_url", "https://sso.example.net/login"),
                       ("token_url", "https://auth.example.net/oauth/token"), ("OIDC_ISSUER", "https://accounts.example.net"),
                       ("public_key", "MCowBQYDK2VwAyEA" + rnd(43, B64)), ("secretName", "tls-exchange"), ("keyRef", "api-key"),
                       ("KEYCLOAK_REALM", "exchange"), ("api_version", "v2"), ("keyspace", "orders"), ("key_prefix", "orders:"),
                       ("cookie_domain", ".example.net"), ("sessionAffinity", "ClientIP"), ("seed_brokers", "kafka-0:9092,kafka-1:9092"),
                       ("signature_version", "s3v4"), ("license_type", "enterprise"), ("licenseServer", "https://license.example.net"),
                       ("tls.mode", "strict"), ("ssh_known_hosts_path", "/etc/ssh/known_hosts")):
        benign("config", key, value)
    benign("config", "kafka.properties", "bootstrap.servers=kafka:9092\nsecurity.protocol=SSL\nssl.truststore.location=/etc/kafka/truststore.jks\nssl.truststore.type=JKS\n")
    benign("config", "logback.xml", "<configuration><appender name=\"STDOUT\" class=\"ch.qos.logback.core.ConsoleAppender\"><encoder><pattern>%d %-5level %msg%n</pattern></encoder></appender></configuration>\n")
    benign("config", "nginx.conf", "server {\n  listen 8080;\n  location / { proxy_pass http://engine:8080; proxy_set_header Host $host; }\n}\n")
    benign("config", "httpd.conf", "<Location /secure>\n  AuthType Basic\n  AuthName \"Restricted\"\n  AuthUserFile /etc/httpd/.htpasswd\n  Require valid-user\n</Location>\n")
    benign("config", "php.ini", "[Session]\nsession.save_handler = redis\nsession.save_path = \"tcp://redis:6379\"\nsession.cookie_secure = 1\n")
    benign("config", "settings.toml", "[server]\nport = 8080\n[auth]\nprovider = \"oidc\"\nissuer = \"https://id.example.net\"\n")
    benign("config", "app.ini", "[oauth]\nclient_id = exchange-web\nredirect_uri = https://exchange.example.net/callback\n")
    benign("config", "pgbouncer.ini", "[pgbouncer]\nauth_type = scram-sha-256\nauth_file = /etc/pgbouncer/userlist.txt\n")
    benign("config", "Caddyfile", "exchange.example.net {\n  reverse_proxy engine:8080\n  basicauth /admin/* {\n    import /etc/caddy/users\n  }\n}\n")
    benign("config", "env", "LOG_LEVEL=info\nWORKERS=4\nFEATURE_FLAGS=orders,quotes\n")
    benign("config", "feature.json", json.dumps({"flags": {"new_checkout": True, "token_refresh": False}, "rollout": 25}))
    benign("config", "locale_de.properties", "gruß=Grüße\npasswort.vergessen=Passwort vergessen?\n")
    benign("config", "i18n.yaml", "login:\n  password: Password\n  forgot_password: Forgot your password?\n  token_expired: Your session expired\n")
    benign("config", "openapi.yaml", "components:\n  securitySchemes:\n    bearerAuth:\n      type: http\n      scheme: bearer\n      bearerFormat: JWT\n")
    benign("config", "BUILD", "v" + ".".join(str(R.randrange(20)) for _ in range(3)) + "-" + rnd(8, HEX))
    benign("config", "cron", "*/5 * * * *")
    benign("config", "HOSTNAME", "ip-10-0-12-34.eu-west-1.compute.internal")
    benign("config", "ALLOWED_ORIGINS", "https://exchange.example.net,https://admin.example.net")
    benign("config", "base64_config", b64(b"log_level=info\nworkers=4\n"))
    benign("config", "QUERY", "https://api.example.net/search?q=password+reset&page=2")
    benign("config", "ENCODED", urllib.parse.quote("https://example.net/callback?next=/orders", safe=""))
    benign("config", "LOREM", "The quick brown fox jumps over the lazy dog while the session token refreshes.")
    benign("config", "regex", r"^(?=.*[A-Z])(?=.*\d)[A-Za-z\d@$!%*?&]{12,}$")
    benign("config", "css", ".login-password input { border: 1px solid #ccc; }")
    benign("config", "sql", "SELECT id, username FROM users WHERE password_hash IS NOT NULL;")
    benign("config", "test_card", "4242 4242 4242 4242")


def main() -> None:
    secrets()
    benigns()
    out = Path(__file__).with_name("corpus.jsonl")
    out.write_text("".join(json.dumps(s, ensure_ascii=False, sort_keys=True) + "\n" for s in SAMPLES), encoding="utf-8")
    by_label = {label: sum(1 for s in SAMPLES if s["label"] == label) for label in ("secret", "benign")}
    print(f"{out}: {by_label['secret']} secrets, {by_label['benign']} benign")


if __name__ == "__main__":
    main()
