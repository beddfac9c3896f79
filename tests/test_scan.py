"""The credential detector: every rule has hits and near-misses that must stay quiet."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from generator.secrets import scan
from generator.secrets.scan import (
    classify_key,
    entropy,
    high_entropy,
    is_benign,
    key_words,
    scan_data,
    scan_object,
    scan_value,
)

GITHUB = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"


def rules(key: str, value: str) -> list[str]:
    return [f.rule for f in scan_value(key, value)]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("POSTGRES_PASSWORD", "root"),
        ("db_passwd", "x9"),
        ("DB_PWD", "hunter2"),
        ("REDIS_PASS", "hunter2"),
        ("gpg_passphrase", "correct horse"),
        ("client_secret", "abc"),
        ("GITHUB_TOKEN", "abc"),
        ("api_key", "abc"),
        ("apiKey", "abc"),
        ("X-Api-Key", "abc"),
        ("private_key", "abc"),
        ("credentials.json", '{"type": "service_account"}'),
        ("auth", "admin:admin"),
        ("Authorization", "Bearer abc"),
        ("dbpassword", "abc"),
        ("tls.key", "abc"),
        ("db_user_password", "abc"),  # `user` before the credential word does not describe it
        ("AGE_SECRET_KEY", "AGE-SECRET-KEY-1QQQ"),
        ("aws_secret_access_key", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("password", "changeme"),  # a default password is still a password
        ("password", "1234"),
    ],
)
def test_key_name_hits(key: str, value: str) -> None:
    assert rules(key, value) == ["key-name"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("token_ttl_seconds", "3600"),
        ("password_file", "/run/secrets/db-password"),
        ("password_min_length", "12"),
        ("secret_name", "exchange-postgres-credentials"),
        ("auth_url", "https://auth.example.com/oauth2"),
        ("auth_enabled", "true"),
        ("enable_auth", "true"),
        ("auth_user", "admin"),
        ("access_key_id", "AKID-not-a-key"),
        ("public_key", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"),
        ("tokenizer", "bert-base"),
        ("max_tokens", "4096"),  # a number is a count, except for password words (test above)
        ("token_bucket_capacity", "100"),
        ("author", "alice"),
        ("POSTGRES_USER", "exchange"),
        ("PASSWORD", ""),
        ("PASSWORD", "${DB_PASSWORD}"),
        ("PASSWORD", "$(DB_PASSWORD)"),
        ("PASSWORD", "<set me>"),
        ("PASSWORD", "********"),
        ("db_password", "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db"),
        ("PWD", "/app"),
        ("LOG_LEVEL", "info"),
    ],
)
def test_key_name_near_misses(key: str, value: str) -> None:
    assert rules(key, value) == []


def test_key_words_split_every_convention() -> None:
    assert key_words("MYSQL_ROOT_PASSWORD") == ("mysql", "root", "password")
    assert key_words("apiKey") == ("api", "key")
    assert key_words("APIKey") == ("api", "key")
    assert key_words("x-api-key.v2") == ("x", "api", "key", "v", "2")
    assert classify_key("cache_key") == ("weak", "key")
    assert classify_key("cache_key_prefix") is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("STRIPE_KEY", "sk_test_4eC39HqLyjWDarjtT1zdp7dc"),
        ("session_key", "9f86d081884c7d659a2f" "ea0c55ad015a3bf4f1b2"),
        ("cookie", "s%3AZ3k9Qm2Lx8Vt4Rw7Yp1Nd6Hc"),
    ],
)
def test_weak_key_with_random_value_hits(key: str, value: str) -> None:
    assert rules(key, value) == ["weak-key"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("partition_key", "user_id"),
        ("cache_key", "orders:{tenant}:{id}"),
        ("session_store", "redis"),
        ("sort_key", "created-at-descending-order-v2"),
        ("license", "Apache-2.0"),
        ("session_key", "abcdefghijklmnopqrstuvwxyz"),  # no digits: words, not a token
    ],
)
def test_weak_key_with_plain_value_is_quiet(key: str, value: str) -> None:
    assert rules(key, value) == []


def test_entropy_and_randomness() -> None:
    assert entropy("") == 0.0
    assert entropy("aaaa") == 0.0
    assert entropy("abcd") == 2.0
    assert high_entropy("Z3k9Qm2Lx8Vt4Rw7Yp1N")
    assert not high_entropy("aaaaaaaaaa1111111111")
    assert not high_entropy("short1A")


@pytest.mark.parametrize(
    "value",
    [
        "postgres://root:root@exchange-postgres-service.default.svc.cluster.local:80/exchange-db",
        "redis://:s3cret@redis:6379/0",
        "amqp://user:p%40ss@rabbit/vhost",
        "jdbc:mysql://app:pw@db:3306/app",
        "see mongodb://admin:hunter2@mongo:27017 for details",
    ],
)
def test_url_with_password_hits(value: str) -> None:
    assert rules("database_url", value) == ["url-password"]


@pytest.mark.parametrize(
    "value",
    [
        "postgres://exchange@exchange-postgres-service.exchange-prod.svc.cluster.local:5432/exchange-db",
        "https://host.example.com:8443/path?q=1",
        "postgres://exchange:${DB_PASSWORD}@db/app",
        "postgres://exchange:$(DB_PASSWORD)@db/app",
        "http://user:@host/",
        "http://[::1]:8080/@home",
        "redis://exchange-redis-service.dev.svc.cluster.local:6379",
    ],
)
def test_url_without_password_is_quiet(value: str) -> None:
    assert rules("database_url", value) == []


def test_assignment_inside_a_file_reports_its_line() -> None:
    text = "[db]\nhost = db\n# password = example-in-a-comment\npassword = hunter2\n"
    (finding,) = scan_value("app.ini", text)
    assert (finding.rule, finding.line) == ("assignment", 4)
    assert "'password'" in finding.reason


@pytest.mark.parametrize(
    "value",
    [
        "host=db user=app password=hunter2 dbname=app",
        "Server=db;User Id=app;Password=hunter2;",
        '{"api_key": "abc123", "timeout": 3}',
        "https://api.example.com/v1/stream?access_token=abc123&x=1",
        "--db-password=hunter2",
        "  DB_PASSWORD: 'hunter2'",
        "export GITHUB_TOKEN=abc",
        "bind 0.0.0.0\nrequirepass s3cret\n",
        "masterauth s3cret",
        "signing_key = 'Z3k9Qm2Lx8Vt4Rw7Yp1Nd6Hc'",
    ],
)
def test_assignment_hits(value: str) -> None:
    assert rules("config", value) == ["assignment"]


@pytest.mark.parametrize(
    "value",
    [
        "password_file = /run/secrets/db\ntoken_ttl = 30\n",
        "key: user_id\nprimary_key = id\n",
        "# requirepass foobared\n; password = x\n// token = y\n-- secret = z\n",
        "password = ${DB_PASSWORD}\nsecret: <from vault>\n",
        "auth:\n  enabled: true\n",
        "tokens: [a, b]\nsecrets: {}\n",
        "The token refresh happens every 5 minutes.",
        "requirepass ${REDIS_PASSWORD}",
    ],
)
def test_assignment_near_misses(value: str) -> None:
    assert rules("config", value) == []


@pytest.mark.parametrize(
    "header",
    [
        "-----BEGIN PRIVATE KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----BEGIN EC PRIVATE KEY-----",
        "-----BEGIN OPENSSH PRIVATE KEY-----",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----",
    ],
)
def test_pem_private_key_hits(header: str) -> None:
    (finding,) = scan_value("server.pem", f"# cert bundle\n{header}\nMIIEvQIBADAN\n-----END-----\n")
    assert (finding.rule, finding.line) == ("private-key", 2)


@pytest.mark.parametrize(
    "header", ["-----BEGIN CERTIFICATE-----", "-----BEGIN PUBLIC KEY-----", "-----BEGIN PGP PUBLIC KEY BLOCK-----"]
)
def test_pem_public_material_is_quiet(header: str) -> None:
    assert rules("ca.pem", f"{header}\nMIIB\n-----END-----\n") == []


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("AKIAIOSFODNN7EXAMPLE", "aws-access-key"),
        ("aws=ASIAY34FZKBOKMUTVV7A;", "aws-access-key"),
        (GITHUB, "github-token"),
        ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github-token"),
        ("glpat-xxxxXXXX1234yyyyZZZZ", "gitlab-token"),
        ("xoxb-1234567890-0987654321-AbCdEfGhIjKl", "slack-token"),
        ("https://hooks.slack.com/services/T0000AAAA/B1111BBBB/XXXXyyyyZZZZ0000", "slack-webhook"),
        (JWT, "jwt"),
        ("AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY", "google-api-key"),
        ("sk_live_4eC39HqLyjWDarjtT1zdp7dc", "stripe-key"),
    ],
)
def test_token_shape_hits(value: str, rule: str) -> None:
    assert rules("value", value) == [rule]


@pytest.mark.parametrize(
    "value",
    [
        "AKIAIOSFODNN7EXAMPL",  # 15 characters after the prefix
        "akiaiosfodnn7example",  # lower case
        "XAKIAIOSFODNN7EXAMPLE",  # inside a longer word
        "ghp_tooShort123",
        "glpat-short",
        "xoxb-short",
        "https://hooks.slack.com/",
        "eyJhbGciOiJIUzI1NiJ9",  # one base64 JSON segment, not a token
        "AIzaShort",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",  # a test key, not live
    ],
)
def test_token_shape_near_misses(value: str) -> None:
    assert rules("value", value) == []


def test_benign_values() -> None:
    for value in ("", "  ", "true", "None", "${X}", "$(X)", "$X", "<x>", "***", "/run/x", "https://a.b/c", "vault:secret/x#k"):
        assert is_benign(value), value
    for value in ("hunter2", "root", "s3cr3t!", "postgres://u:p@h/db"):
        assert not is_benign(value), value


def test_scan_data_keeps_only_keys_with_findings() -> None:
    found = scan_data({"LOG_LEVEL": "info", "db_password": "x", "url": "redis://:pw@r:6379"})
    assert sorted(found) == ["db_password", "url"]


def test_scan_object_checks_every_field_of_every_object() -> None:
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"password": "x"}}
    assert [(p, f.rule) for p, f in scan_object(cm)] == [("data.password", "key-name")]
    deployment = {
        "kind": "Deployment",
        "metadata": {"name": "d", "annotations": {"note": "secretName: x"}},
        "spec": {"template": {"spec": {"containers": [{
            "name": "c",
            "args": ["--url=postgres://u:pw@db/app"],
            "env": [
                {"name": "DB_PASSWORD", "value": "hunter2"},
                {"name": "DB_PASSWORD_FROM", "valueFrom": {"secretKeyRef": {"name": "s", "key": "password"}}},
                {"name": "LOG_LEVEL", "value": "info"},
            ],
        }]}}},
    }
    found = [(p, f.rule) for p, f in scan_object(deployment)]
    assert found == [
        ("spec.template.spec.containers[c].args[0]", "url-password"),
        ("spec.template.spec.containers[c].env[DB_PASSWORD].value", "key-name"),
    ]


@given(st.text(alphabet="0123456789", min_size=8, max_size=40))
def test_findings_never_repeat_the_credential(secret: str) -> None:
    for key, value in (("password", secret), ("cfg", f"password = {secret}"), ("url", f"postgres://u:{secret}@h/db")):
        findings = scan_value(key, value)
        assert findings, (key, value)
        assert all(secret not in f.reason for f in findings)


@given(st.text(max_size=300), st.text(max_size=40))
def test_scan_never_raises(value: str, key: str) -> None:
    for f in scan_value(key, value):
        assert f.line >= 1 and f.reason


def test_positions_survive_characters_whose_lower_case_is_longer() -> None:
    # "İ".lower() is two characters: positions must still point into the original text.
    (finding,) = scan_value("config", "İ" * 50 + " password=hunter2")
    assert finding.rule == "assignment" and "'password'" in finding.reason


BASIC = "YWxpY2U6czNjcjN0LXBhc3M="  # alice:s3cr3t-pass


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("LLM", "sk-proj-" + "Ab1" * 20, "openai-key"),
        ("MAILER", "SG." + "a1B2c3D4e5F6g7H8i9J0kL" + "." + "x" * 40 + "Y12", "sendgrid-key"),
        ("REGISTRY", "npm_" + "a1B2" * 9, "npm-token"),
        ("GL", "glrt-" + "a1B2c3D4e5F6g7H8i9J0", "gitlab-token"),
        ("VAULT", "hvs." + "CAESI" + "a1B2" * 6, "vault-token"),
        ("BOT", "3325678805:AAKQgsY5eNtvg_WP4VzuEzFvez4piRNZkon", "telegram-token"),
        ("AGE", "AGE-SECRET-KEY-1" + "Q" * 58, "age-key"),
        ("nginx.conf", f'proxy_set_header Authorization "Basic {BASIC}";', "basic-auth"),
        ("HEADERS", "Authorization: Bearer " + "a1B2c3D4" * 3, "bearer-token"),
        (".htpasswd", "alice:$apr1$Xy12Ab34$Qm2Lx8Vt4Rw7Yp1Nd6Hc01", "password-hash"),
        ("ORACLE", "scott/tiger@db.internal:1521/ORCLPDB1", "connect-string"),
        ("entrypoint.sh", "mysql -uapp -ph0tp0t -h db app", "cli-password"),
        ("cmd", "redis-cli -a h0tp0t -h redis ping", "cli-password"),
        (".pgpass", "db.internal:5432:orders:app:h0tp0t\n", "pgpass"),
        ("SAS", "https://st.blob.core.windows.net/c?sv=2022&sig=" + "a1B2c3D4" * 4, "azure-sas"),
    ],
)
def test_more_shapes_hit(key: str, value: str, rule: str) -> None:
    assert rule in rules(key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("nginx.conf", "proxy_set_header Authorization $http_authorization;"),
        ("httpd.conf", "AuthType Basic\nAuthName \"Restricted\"\n"),
        ("openapi.yaml", "scheme: bearer\nbearerFormat: JWT\n"),
        ("image", "grafana/grafana@sha256:" + "ab12" * 16),
        ("action", "actions/checkout@v4"),
        ("module", "golang/protobuf@v1.5.0"),
        ("ipv6", "fe80:0:0:0:1"),
        ("times", "12:30:45:00:10"),
        ("cmd", "mysql -u app -p -h db app"),
        ("SK", "sk_test_" + "a1B2c3D4" * 3),
    ],
)
def test_more_shapes_near_misses(key: str, value: str) -> None:
    assert rules(key, value) == []


@pytest.mark.parametrize(
    "value",
    [
        "<settings><server><password>h0tp0t-99</password></server></settings>",
        '<property name="connection.password">h0tp0t-99</property>',
        '<add key="DbPassword" value="h0tp0t-99" />',
        "<?php\ndefine('DB_PASSWORD', '!h0tp0t-99');\n",
        "<?php\n$config['db_pass'] = \"h0tp0t-99\";\n",
        "$db = array('password' => 'h0tp0t-99');",
        "//registry.npmjs.org/:_authToken=893b2b42-3653-cdf0-a69e-5f1f8ca6e15c\n",
        '<Location />\n  AuthLDAPBindPassword "h0tp0t-99"\n</Location>\n',
        "location / {\n  proxy_set_header X-Api-Key a1B2c3D4e5F6g7H8;\n}\n",
    ],
)
def test_assignments_in_more_syntaxes(value: str) -> None:
    assert rules("config", value) == ["assignment"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("grafana.ini", "admin_password = $__file{/run/secrets/grafana/admin_password}\n"),
        ("grafana.ini", "password = $__env{GF_DATABASE_PASSWORD}\n"),
        ("context.xml", '<Resource auth="Container" username="${db.user}" password="${db.password}"/>'),
        ("wp-config.php", "define('DB_PASSWORD', getenv('WORDPRESS_DB_PASSWORD'));\n"),
        ("appsettings.json", '{"Default": "Server=db;User Id=app;Password=%DB_PASSWORD%;"}'),
        ("auth", "oidc"),
        ("credentials", "instance-profile"),
        ("password", "Password"),
        ("password_hint", "At least twelve characters, please."),
        ("token_expired", "Your session expired"),
        ("password_reset", "email"),
        ("existingSecret", "redis-auth"),
        ("client_secret", "projects/123/secrets/client-secret/versions/latest"),
        ("site_key", "6LcA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S"),
        ("checksum/secret", "ab12" * 16),
        ("tls.crt", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
        ("smtp", "${SMTP_PASSWORD:?set it in the Secret}"),
        ("# sshd", "PasswordAuthentication no\n"),
    ],
)
def test_settings_and_references_are_quiet(key: str, value: str) -> None:
    assert rules(key, value) == []


def test_encoded_credentials_are_decoded() -> None:
    import base64
    import urllib.parse

    inner = "postgres://app:h0tp0t-99@db/app"
    (b64,) = scan_value("blob", base64.b64encode(inner.encode()).decode())
    assert b64.rule == "url-password" and "encoded" in b64.reason
    (url,) = scan_value("next", urllib.parse.quote(inner, safe=""))
    assert url.rule == "url-password"
    assert rules("base64_config", base64.b64encode(b"log_level=info\nworkers=4\n").decode()) == []


@pytest.mark.parametrize(
    "value",
    ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz1A2b3C4d", "Zk9Qm2Lx8Vt4Rw7Yp1Nd6Hc0aB3eF5gH7jK9mN2pQ4s="],
)
def test_random_token_under_a_neutral_name(value: str) -> None:
    assert rules("S3_B", value) == ["random-token"]
    assert rules("public_key", value) == []


@pytest.mark.parametrize(
    "value",
    ["ab12" * 16, "3f2b8c1e-9d4a-4b7e-8c2f-1a2b3c4d5e6f", "org.apache.kafka.common.security.plain.PlainLoginModule",
     "01HGW2N7ZJ4Q8Y5K6M3P9R2T1V", "sha384-" + "Zk9Qm2Lx8Vt4Rw7Yp1Nd6Hc0aB3eF5gH7jK9mN2pQ4s", "exchange-engine-7d9f8c6b5-x2x4z"],
)
def test_random_token_near_misses(value: str) -> None:
    assert rules("value", value) == []


def _fields(obj: dict[str, object]) -> list[tuple[str, str]]:
    return [(p, f.rule) for p, f in scan_object(obj)]


def test_annotations_labels_and_custom_resources_are_scanned() -> None:
    cm = {"kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"db-password": "hunter2"},
                                            "labels": {"token": "Zk9Qm2Lx8Vt4Rw7Yp1N"}}, "data": {"a": "b"}}
    assert _fields(cm) == [("metadata.annotations.db-password", "key-name"), ("metadata.labels.token", "key-name")]
    cr = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
          "spec": {"backend": {"auth": {"password": "hunter2"}}, "upstream": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz1A2b3C4d"}}
    assert _fields(cr) == [("spec.backend.auth.password", "key-name"), ("spec.upstream", "random-token")]


def test_a_flag_and_its_value_in_separate_args() -> None:
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "app", "args": ["--db-password", "hunter2", "--port", "80"],
                                                   "command": ["sh", "-c", "PGPASSWORD=hunter2 psql"]}]}}
    assert _fields(pod) == [("spec.containers[app].args[1]", "key-name"), ("spec.containers[app].command[2]", "assignment")]


def test_binary_data_that_is_text_is_scanned() -> None:
    import base64

    latin1 = "titre=Données\ndb.password=hunter2\n".encode("latin-1")
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "binaryData": {
        "app_fr.properties": base64.b64encode(latin1).decode(),
        "logo.png": base64.b64encode(bytes(range(256))).decode(),
        "ok.txt": base64.b64encode(b"hello").decode(),
    }}
    assert _fields(cm) == [("binaryData.app_fr.properties", "assignment")]


def test_ciphertext_and_secret_key_names_are_not_scanned() -> None:
    sealed = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "s"},
              "spec": {"encryptedData": {"password": "AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq"}}}
    sops = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {"password": "ENC[AES256_GCM,data:abc,iv:d,tag:e,type:str]"},
            "sops": {"mac": "ENC[AES256_GCM,data:Zk9Qm2Lx8Vt4Rw7Yp1N,type:str]", "age": [{"enc": "-----BEGIN AGE ENCRYPTED FILE-----"}]}}
    external = {"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret", "metadata": {"name": "e"},
                "spec": {"data": [{"secretKey": "db-password", "remoteRef": {"key": "prod/db", "property": "password"}}]}}
    assert _fields(sealed) == _fields(sops) == _fields(external) == []


def test_recall_and_false_positives_on_the_labelled_corpus() -> None:
    """A measurement, not a timing: the scanner on bench/secrets_corpus/corpus.jsonl (generated
    fake credentials in the formats platform teams commit, and benign values that look risky)."""
    import json
    from pathlib import Path

    corpus = Path(__file__).resolve().parent.parent / "bench" / "secrets_corpus" / "corpus.jsonl"
    samples = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    secrets = [s for s in samples if s["label"] == "secret"]
    benign = [s for s in samples if s["label"] == "benign"]
    assert len(secrets) >= 150 and len(benign) >= 150
    missed = [s["id"] for s in secrets if not scan_value(s["key"], s["value"])]
    flagged = [s["id"] for s in benign if scan_value(s["key"], s["value"])]
    assert 1 - len(missed) / len(secrets) >= 0.97, missed
    assert len(flagged) / len(benign) <= 0.02, flagged


@pytest.mark.parametrize(
    ("key", "value", "rule"),
    [
        ("init.sql", "CREATE USER app WITH PASSWORD 'h0tp0t-99';", "sql-password"),
        ("grant.sql", "CREATE USER 'app'@'%' IDENTIFIED BY 'h0tp0t-99';", "sql-password"),
        ("sentinel.conf", "sentinel auth-pass mymaster h0tp0t-99\n", "sentinel-auth"),
        ("login.sh", "docker login -u ci -p h0tp0t-99 registry.example.net", "cli-password"),
        ("health.sh", "curl -u admin:h0tp0t-99 https://api.example.net", "cli-password"),
        ("DBX", "dapi" + "0123456789abcdef" * 2, "databricks-token"),
        ("ARGS", "--token a1B2c3D4e5F6g7H8 --verbose", "assignment"),
        ("haproxy.cfg", "userlist admins\n  user admin insecure-password h0tp0t-99\n", "assignment"),
        ("ldap.conf", "binddn cn=svc\nbindpw h0tp0t-99\n", "assignment"),
    ],
)
def test_rules_from_the_held_out_sets_hit(key: str, value: str, rule: str) -> None:
    assert rule in rules(key, value)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("main.tf", "password = var.db_password\n"),
        ("settings.py", "SECRET_KEY = os.environ['DJANGO_SECRET_KEY']\n"),
        ("password", "ENC[AES256_GCM,data:abc,iv:def,tag:ghi,type:str]"),
        ("api_token", "${{ secrets.API_TOKEN }}"),
        ("password", "((vault:secret/db.password))"),
        ("logo", "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="),
        ("auth.conf", 'location /admin {\n  auth_basic "Restricted";\n  auth_basic_user_file /etc/nginx/.htpasswd;\n}\n'),
        ("schema.sql", "CREATE TABLE users (id bigint, email text, hashed_password text);\n"),
        ("postgresql.conf", "password_encryption = scram-sha-256\n"),
        ("cmd", "exec app --password-file /run/secrets/db --listen :8080"),
    ],
)
def test_references_from_the_held_out_sets_are_quiet(key: str, value: str) -> None:
    assert rules(key, value) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [("adminPasswordKey", "postgres-password"), ("TLS_SECRET", "exchange-tls"), ("package.json", '{"token:refresh": "node r.js"}')],
)
def test_names_of_keys_and_secrets_are_quiet(key: str, value: str) -> None:
    assert rules(key, value) == []


def test_a_passphrase_under_a_password_name_is_still_a_credential() -> None:
    assert rules("DB_PASSWORD", "orbit-tango-maple-quartz") == ["key-name"]


# --- the gate: one automaton pass finds the places worth a look -------------------------------

def _leftmost_longest(text: str, words: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """What a regex alternation of `words` (longest first) finds: at the leftmost place where a
    word starts, the longest word there; then on after it."""
    found, i = [], 0
    while i < len(text):
        word = max((w for w in words if text.startswith(w, i)), key=len, default=None)
        if word is None:
            i += 1
        else:
            found.append((word, i, i + len(word)))
            i += len(word)
    return found


# Pieces that make gate words, their prefixes (a longer word that fails part-way: "password"
# without the "password '" anchor's quote), overlaps ("keypass") and characters around them.
_PIECES = st.sampled_from([
    *scan._GATE_WORDS, *(w[: len(w) // 2 + 1] for w in scan._GATE_WORDS),
    " ", "\n", "\t", "=", ":", "'", "-", "_", "a", "x", "0", "é", "İ",
])


@given(st.lists(_PIECES, max_size=30).map("".join))
def test_the_gate_finds_what_a_regex_alternation_would(text: str) -> None:
    found = [(scan._GATE_WORDS[i], start, end) for i, start, end in scan._GATE.find_matches_as_indexes(text)]
    assert found == _leftmost_longest(text, scan._GATE_WORDS)


@given(st.lists(st.lists(_PIECES, max_size=8).map("".join), max_size=12))
def test_gate_hits_are_the_values_that_hold_a_gate_word(values: list[str]) -> None:
    assert not any("\n" in w for w in scan._GATE_WORDS)  # values are joined by newlines
    expected = {i for i, v in enumerate(values) if any(w in scan._ascii_lower(v) for w in scan._GATE_WORDS)}
    assert scan._gate_hits(values, "\n".join(values)) == expected


def test_the_gate_counts_positions_in_characters() -> None:
    values = ["é" * 40, "İ" * 40 + "x", "plain", "a token here"]
    assert scan._gate_hits(values, "\n".join(values)) == {3}


_ONE_CASE = st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=_-.~ ", min_size=16, max_size=80),
    st.binary(min_size=12, max_size=60).map(lambda b: base64.b64encode(b).decode()),
).flatmap(lambda v: st.sampled_from([v.lower(), v.upper()]))


@given(_ONE_CASE)
def test_a_value_in_one_case_is_neither_encoded_nor_a_random_token(value: str) -> None:
    """What lets `_encoded_or_random` skip both tests for such a value (names, images, hosts)."""
    assert "%" not in value and (value.islower() or value.isupper() or not any(c.isalpha() for c in value))
    if value.islower() or value.isupper():
        assert scan.decoded(value) is None
        assert not scan.random_token(value)
        assert scan._encoded_or_random("S3_B", value) == []


def test_random_tokens_and_encoded_values_still_pass_the_one_case_test() -> None:
    assert scan._encoded_or_random("S3_B", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz1A2b3C4d")[0].rule == "random-token"
    assert [f.rule for f in scan._encoded_or_random("x", "postgres%3A%2F%2Fu%3Ahunter2%40db%2Fapp")] == ["url-password"]


def test_the_same_value_under_different_names_is_judged_under_each() -> None:
    """Verdicts are not shared between strings: a value is flagged under a credential name and
    not under a neutral one, in one object and across objects, in either order."""
    cm = {"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"note": "hunter2", "db_password": "hunter2", "zeta": "hunter2"}}
    assert _fields(cm) == [("data.db_password", "key-name")]
    env = [{"name": "LOG_LEVEL", "value": "hunter2"}, {"name": "API_TOKEN", "value": "hunter2"}]
    pod = {"kind": "Pod", "spec": {"containers": [{"name": "app", "env": env}]}}
    assert _fields(pod) == [("spec.containers[app].env[API_TOKEN].value", "key-name")]
    assert _fields({"kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"note": "hunter2"}}) == []


def test_object_digest_covers_the_scanner_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    obj = {"kind": "ConfigMap", "data": {"a": "b"}}
    before = scan.object_digest(obj)
    monkeypatch.setattr(scan, "_rules_digest", lambda: b"\x01" * 32)
    assert scan.object_digest(obj) != before and len(scan.object_digest(obj)) == 32


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("db_password", []),
        ("db_password=hunter2", ["assignment"]),
        ("run it\n--db-password", []),
        ("run it\n--db-password hunter2", ["assignment"]),
        ("app-0001-key00-override", []),
        ("<password>hunter2</password>", ["assignment"]),
    ],
)
def test_a_name_that_ends_the_value_has_no_value(value: str, expected: list[str]) -> None:
    assert rules("cfg", value) == expected
