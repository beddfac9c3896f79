"""Secrets never leak: ConfigMaps are scanned, plaintext Secrets refused, and the three supported
ways (external Secrets, ExternalSecret declarations, encrypted manifests) render, hash and roll
exactly the pods that use them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator.steps import hashing
from generator.secrets.external import HASH_ANNOTATION as ESO_HASH_ANNOTATION
from generator.steps.load import HASH_ANNOTATION
from generator.pipeline import Repo, render_env
from generator.secrets.producers import SECRET_NAME_ANNOTATION
from tests.helpers import deployment, load_out, run, snapshot, write_repo

ROOT = Path(__file__).resolve().parent.parent
ENC = "ENC[AES256_GCM,data:{},iv:Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MA==,tag:dGFnZ2luZ3RhZ2dpbmc=,type:str]"


def sops_secret(name: str, password_cipher: str = "c2VjcmV0MQ==") -> str:
    return f"""
        apiVersion: v1
        kind: Secret
        metadata:
          name: {name}
        type: Opaque
        stringData:
          password: {ENC.format(password_cipher)}
        sops:
          age:
            - recipient: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
              enc: |
                -----BEGIN AGE ENCRYPTED FILE-----
                YWdlLWVuY3J5cHRpb24ub3JnL3YxCi0+IFgyNTUxOSBmYWtl
                -----END AGE ENCRYPTED FILE-----
          lastmodified: "2025-01-01T00:00:00Z"
          mac: {ENC.format("bWFjbWFjbWFj")}
          encrypted_regex: ^(data|stringData)$
          version: 3.9.4
    """


def sealed_secret(name: str, cipher: str = "AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq", scope: str = "namespace-wide",
                  template_name: bool = False) -> str:
    annotations = f"\n          annotations:\n            sealedsecrets.bitnami.com/{scope}: \"true\"" if scope else ""
    template_meta = f"\n              name: {name}" if template_name else ""
    return f"""
        apiVersion: bitnami.com/v1alpha1
        kind: SealedSecret
        metadata:
          name: {name}{annotations}
        spec:
          encryptedData:
            password: {cipher}
            username: AgAKZXhjaGFuZ2UtdXNlcgo=
          template:
            type: Opaque
            metadata:
              labels: {{app: api}}{template_meta}
    """


# Every Secret reference site, all naming `db`.
USES_DB = """
imagePullSecrets: [{name: db}]
containers:
  - name: api
    image: api:1
    env:
      - name: DB_PASSWORD
        valueFrom: {secretKeyRef: {name: db, key: password}}
    envFrom:
      - secretRef: {name: db}
    volumeMounts: [{name: creds, mountPath: /creds}, {name: all, mountPath: /all}]
volumes:
  - name: creds
    secret: {secretName: db, items: [{key: username, path: user}]}
  - name: all
    projected:
      sources:
        - secret: {name: db, items: [{key: password, path: pw}]}
"""
SITES = [
    ("imagePullSecrets", 0, "name"),
    ("containers", 0, "env", 0, "valueFrom", "secretKeyRef", "name"),
    ("containers", 0, "envFrom", 0, "secretRef", "name"),
    ("volumes", 0, "secret", "secretName"),
    ("volumes", 1, "projected", "sources", 0, "secret", "name"),
]


def get(obj: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        obj = obj[step]
    return obj


def render(repo: Path, env: str = "dev") -> dict[str, Any]:
    result = run("render", "--repo", repo, "--env", env)
    assert result.exit_code == 0, result.output
    return load_out(repo / "out" / env)


def refused(repo: Path) -> str:
    result = run("render", "--repo", repo)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert not (repo / "out").exists()
    return result.output


def pod_spec(out: dict[str, Any], path: str) -> Any:
    return out[path]["spec"]["template"]["spec"]


# --- plaintext Secrets ----------------------------------------------------------------------

@pytest.mark.parametrize("field", ["data", "stringData"])
@pytest.mark.parametrize("folder", ["base/api", "environments/dev/apps/api"])
def test_plaintext_secret_is_refused_with_the_three_ways(tmp_path: Path, field: str, folder: str) -> None:
    value = "aHVudGVyMg==" if field == "data" else "hunter2"
    write_repo(tmp_path, {
        f"{folder}/secret.yaml": f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n{field}:\n  password: {value}\n",
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    output = refused(tmp_path)
    assert f"{folder}/secret.yaml:5:" in output
    assert f"Secret 'db' holds plaintext `{field}`" in output
    for way in ("external.secrets", "externalSecrets:", "SealedSecret", "SOPS"):
        assert way in output
    assert "hunter2" not in output and "aHVudGVyMg" not in output


def test_secret_without_data_passes_unchanged(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/token.yaml": """
            apiVersion: v1
            kind: Secret
            metadata:
              name: api-token
              annotations: {kubernetes.io/service-account.name: api}
            type: kubernetes.io/service-account-token
        """,
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    out = render(tmp_path)
    assert out["api/secret-api-token.yaml"]["metadata"]["name"] == "api-token"


def test_undeclared_secret_reference_is_an_error_and_external_ones_are_not(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/deployment.yaml": deployment("api", USES_DB),
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    output = refused(tmp_path)
    assert "refers to Secret 'db'" in output and "external.secrets" in output
    write_repo(tmp_path, {"gitops-gen.yaml": "external: {secrets: [db]}\n"})
    out = render(tmp_path)
    for site in SITES:
        assert get(pod_spec(out, "api/deployment-api.yaml"), site) == "db"


# --- SealedSecret -----------------------------------------------------------------------------

def sealed_repo(tmp_path: Path, **kwargs: Any) -> Path:
    return write_repo(tmp_path, {
        "base/api/deployment.yaml": deployment("api", USES_DB),
        "base/api/sealed.yaml": sealed_secret("db", **kwargs),
        "environments/dev/env.yaml": "namespace: dev\n",
    })


def test_sealed_secret_is_hashed_and_every_reference_rewritten(tmp_path: Path) -> None:
    out = render(sealed_repo(tmp_path, template_name=True))
    sealed = out["api/sealedsecret-db.yaml"]
    spec = yaml.safe_load(sealed_secret("db", template_name=True).replace("\n        ", "\n"))["spec"]
    del spec["template"]["metadata"]["name"]
    expected = f"db-{hashing.object_hash(spec)}"
    assert sealed["metadata"]["name"] == expected
    assert sealed["metadata"]["namespace"] == "dev"
    assert sealed["metadata"]["annotations"][SECRET_NAME_ANNOTATION] == "db"
    assert sealed["spec"]["template"]["metadata"]["name"] == expected
    assert sealed["spec"]["encryptedData"]["password"] == "AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq"
    for site in SITES:
        assert get(pod_spec(out, "api/deployment-api.yaml"), site) == expected, site


def test_sealed_secret_keys_are_checked(tmp_path: Path) -> None:
    sealed_repo(tmp_path)
    path = tmp_path / "base/api/deployment.yaml"
    path.write_text(path.read_text().replace("key: password}", "key: pasword}"))
    output = refused(tmp_path)
    assert "uses key 'pasword' of Secret 'db'" in output and "did you mean 'password'" in output


def test_strict_scope_sealed_secret_cannot_be_renamed(tmp_path: Path) -> None:
    output = refused(sealed_repo(tmp_path, scope=""))
    assert "base/api/sealed.yaml:" in output and "strict" in output
    assert "kubeseal --scope namespace-wide" in output and HASH_ANNOTATION in output


def test_hash_opt_out_keeps_the_plain_name(tmp_path: Path) -> None:
    sealed_repo(tmp_path, scope="")
    path = tmp_path / "base/api/sealed.yaml"
    path.write_text(path.read_text().replace("  name: db\n", f'  name: db\n  annotations: {{{HASH_ANNOTATION}: "false"}}\n', 1))
    out = render(tmp_path)
    assert out["api/sealedsecret-db.yaml"]["metadata"]["name"] == "db"
    for site in SITES:
        assert get(pod_spec(out, "api/deployment-api.yaml"), site) == "db"


def test_cluster_wide_scope_is_accepted(tmp_path: Path) -> None:
    out = render(sealed_repo(tmp_path, scope="cluster-wide"))
    assert out["api/sealedsecret-db.yaml"]["metadata"]["name"].startswith("db-")


# --- SOPS -------------------------------------------------------------------------------------

def test_sops_secret_is_accepted_hashed_and_references_rewritten(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/deployment.yaml": deployment("api", """
            containers:
              - name: api
                image: api:1
                env:
                  - name: DB_PASSWORD
                    valueFrom: {secretKeyRef: {name: db, key: password}}
        """),
        "base/api/secret.sops.yaml": sops_secret("db"),
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    out = render(tmp_path)
    secret = out["api/secret-db.yaml"]
    payload = {"type": "Opaque", "stringData": {"password": ENC.format("c2VjcmV0MQ==")}}
    expected = f"db-{hashing.object_hash(payload)}"
    assert secret["metadata"]["name"] == expected
    assert secret["stringData"] == payload["stringData"]
    assert secret["sops"]["mac"].startswith("ENC[")  # committed as it is, for Flux to decrypt
    env = pod_spec(out, "api/deployment-api.yaml")["containers"][0]["env"][0]
    assert env["valueFrom"]["secretKeyRef"] == {"name": expected, "key": "password"}


def test_sops_secret_with_a_plaintext_value_is_refused(tmp_path: Path) -> None:
    text = sops_secret("db").replace("  password: ENC", "  user: exchange\n          password: ENC")
    write_repo(tmp_path, {"base/api/secret.yaml": text, "environments/dev/env.yaml": "namespace: dev\n"})
    output = refused(tmp_path)
    assert "base/api/secret.yaml:" in output and "`stringData.user` is not" in output
    assert "encrypted_regex" in output


def test_two_objects_producing_one_secret_is_an_error(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/sealed.yaml": sealed_secret("db"),
        "base/api/secret.yaml": sops_secret("db"),
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    assert "both produce Secret 'db'" in refused(tmp_path)


# --- ExternalSecret declarations --------------------------------------------------------------

ESO_APP = """
    externalSecrets:
      - name: api-key
        secretStore: {kind: ClusterSecretStore, name: "vault-{{ env }}"}
        refreshInterval: 30m
        data:
          - secretKey: token
            remoteRef: {key: "exchange/{{ env }}/api", property: token, version: "3"}
"""
USES_API_KEY = """
containers:
  - name: api
    image: api:1
    env:
      - name: API_TOKEN
        valueFrom: {secretKeyRef: {name: api-key, key: token}}
"""


def eso_repo(tmp_path: Path, app_yaml: str = ESO_APP, pod: str = USES_API_KEY) -> Path:
    return write_repo(tmp_path, {
        "base/api/app.yaml": app_yaml,
        "base/api/deployment.yaml": deployment("api", pod),
        "environments/dev/env.yaml": "namespace: dev\n",
        "environments/prod/env.yaml": "namespace: prod\nhashLength: 12\n",
    })


def test_external_secret_declaration_renders_a_hashed_external_secret(tmp_path: Path) -> None:
    eso_repo(tmp_path)
    for env, length in (("dev", 10), ("prod", 12)):
        out = render(tmp_path, env)
        es = out["api/externalsecret-api-key.yaml"]
        spec = {
            "refreshInterval": "30m",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": f"vault-{env}"},
            "target": {"creationPolicy": "Owner"},
            "data": [{"secretKey": "token", "remoteRef": {"key": f"exchange/{env}/api", "property": "token", "version": "3"}}],
        }
        name = f"api-key-{hashing.object_hash(spec, length)}"
        assert es["apiVersion"] == "external-secrets.io/v1"
        assert es["metadata"] == {"name": name, "namespace": env, "annotations": {SECRET_NAME_ANNOTATION: "api-key"}}
        assert es["spec"] == {**spec, "target": {"name": name, "creationPolicy": "Owner"}}
        ref = pod_spec(out, "api/deployment-api.yaml")["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": name, "key": "token"}


def test_external_secret_keys_are_checked(tmp_path: Path) -> None:
    output = refused(eso_repo(tmp_path, pod=USES_API_KEY.replace("key: token", "key: tokn")))
    assert "uses key 'tokn' of Secret 'api-key'" in output and "did you mean 'token'" in output


def test_external_secret_v1beta1_and_opt_out(tmp_path: Path) -> None:
    eso_repo(tmp_path, ESO_APP.replace("refreshInterval: 30m", "refreshInterval: 30m\n        apiVersion: external-secrets.io/v1beta1\n        hash: false"))
    es = render(tmp_path)["api/externalsecret-api-key.yaml"]
    assert es["apiVersion"] == "external-secrets.io/v1beta1"
    assert es["metadata"]["name"] == es["spec"]["target"]["name"] == "api-key"
    assert ESO_HASH_ANNOTATION == HASH_ANNOTATION
    assert es["metadata"]["annotations"] == {HASH_ANNOTATION: "false"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("secretStore: {kind: ClusterSecretStore, name: \"vault-{{ env }}\"}", ""), "missing `secretStore`"),
        (("kind: ClusterSecretStore", "kind: Vault"), "'Vault' is not one of: SecretStore, ClusterSecretStore"),
        (("refreshInterval: 30m", "refreshInterval: 30 minutes"), "'30 minutes' is not a duration"),
        (("refreshInterval: 30m", "refreshIntervall: 30m"), "did you mean 'refreshInterval'"),
        (("secretKey: token", "secretKey: to/ken"), "invalid Secret key 'to/ken'"),
        (("remoteRef: {key: ", "remoteRef: {path: "), "unknown key 'path'"),
        (("- name: api-key", "- nam: api-key"), "did you mean 'name'"),
    ],
)
def test_external_secret_declaration_is_strictly_checked(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    output = refused(eso_repo(tmp_path, ESO_APP.replace(*change)))
    assert "base/api/app.yaml:" in output and message in output


def test_hand_written_external_secret_merging_into_an_outside_secret_is_not_renamed(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/es.yaml": """
            apiVersion: external-secrets.io/v1
            kind: ExternalSecret
            metadata: {name: merge-into-db}
            spec:
              secretStoreRef: {kind: SecretStore, name: vault}
              target: {name: db, creationPolicy: Merge}
              data: [{secretKey: extra, remoteRef: {key: x}}]
        """,
        "base/api/deployment.yaml": deployment("api", USES_DB),
        "environments/dev/env.yaml": "namespace: dev\n",
        "gitops-gen.yaml": "external: {secrets: [db]}\n",
    })
    out = render(tmp_path)
    assert out["api/externalsecret-merge-into-db.yaml"]["metadata"]["name"] == "merge-into-db"
    assert get(pod_spec(out, "api/deployment-api.yaml"), SITES[1]) == "db"


def test_hand_written_external_secret_with_its_own_target_name_and_template(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/es.yaml": """
            apiVersion: external-secrets.io/v1
            kind: ExternalSecret
            metadata: {name: api-es}
            spec:
              secretStoreRef: {kind: SecretStore, name: vault}
              target:
                name: api-creds
                template:
                  data: {dsn: "postgres://app:{{ .password }}@db/app"}
              data: [{secretKey: password, remoteRef: {key: db, property: password}}]
        """,
        "base/api/deployment.yaml": deployment("api", """
            containers:
              - name: api
                image: api:1
                env:
                  - name: DSN
                    valueFrom: {secretKeyRef: {name: api-creds, key: dsn}}
        """),
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    out = render(tmp_path)
    es = out["api/externalsecret-api-es.yaml"]
    suffix = es["metadata"]["name"].removeprefix("api-es-")
    assert len(suffix) == 10 and es["spec"]["target"]["name"] == f"api-creds-{suffix}"
    assert es["metadata"]["annotations"][SECRET_NAME_ANNOTATION] == "api-creds"
    ref = pod_spec(out, "api/deployment-api.yaml")["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"api-creds-{suffix}", "key": "dsn"}
    path = tmp_path / "base/api/deployment.yaml"
    path.write_text(path.read_text().replace("key: dsn", "key: password"))  # the template replaces the data keys
    result = run("render", "--repo", tmp_path)
    assert result.exit_code == 1 and "uses key 'password' of Secret 'api-creds'" in result.output


# --- rotation ---------------------------------------------------------------------------------

def test_rotating_a_secret_rolls_exactly_the_pods_that_use_it(tmp_path: Path) -> None:
    uses_db_in_a_job = """
        containers:
          - name: migrate
            image: api:1
            envFrom: [{secretRef: {name: db}}]
        restartPolicy: Never
    """
    write_repo(tmp_path, {
        "base/api/deployment.yaml": deployment("api", USES_DB),
        "base/api/sealed.yaml": sealed_secret("db"),
        "base/migrate/job.yaml": deployment("migrate", uses_db_in_a_job, kind="Job", api="batch/v1"),
        "base/web/deployment.yaml": deployment("web", "containers: [{name: web, image: nginx:1}]"),
        "base/web/sealed.yaml": sealed_secret("web-tls"),
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    render(tmp_path)
    before = snapshot(tmp_path / "out")
    path = tmp_path / "base/api/sealed.yaml"
    path.write_text(path.read_text().replace("AgBy3i4OJSWK+PiTySYZZA9rO43cGDEq", "AgCRotatedCipherTextAAAAAAAAAAAAA"))
    render(tmp_path)
    after = snapshot(tmp_path / "out")
    old_name = yaml.safe_load(before["dev/api/sealedsecret-db.yaml"])["metadata"]["name"]
    # each object keeps its path; the old SealedSecret stays beside it for rollbacks (retention)
    assert sorted(set(after) - set(before)) == [f"dev/api/sealedsecret-{old_name}.yaml"]
    assert set(before) <= set(after)
    changed = sorted(p for p in before if after[p] != before[p])
    assert changed == [
        "dev/api/deployment-api.yaml",
        "dev/api/sealedsecret-db.yaml",
        "dev/kustomization.yaml",
        "dev/migrate/job-migrate.yaml",
    ]


# --- scanning ConfigMaps ----------------------------------------------------------------------

def test_credential_in_a_literal_names_file_line_key_and_reason(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/app.yaml": """
            configMaps:
              - name: api-config
                literals:
                  LOG_LEVEL: info
                  database_url: "postgres://root:hunter2@db.{{ namespace }}:5432/app"
        """,
        "environments/dev/env.yaml": "namespace: dev\n",
    })
    output = refused(tmp_path)
    assert "base/api/app.yaml:5:" in output
    assert "ConfigMap 'api-config' key 'database_url'" in output and "URL with a password" in output
    assert "externalSecrets:" in output and "allowInOutput" in output and 'field: "data.database_url"' in output
    assert "hunter2" not in output


def test_every_finding_is_listed_with_its_own_source(tmp_path: Path) -> None:
    write_repo(tmp_path, {
        "base/api/app.yaml": """
            configMaps:
              - name: api-config
                literals: {LOG_LEVEL: info}
                files: [conf/app.ini]
                envs: [api.env]
        """,
        "base/api/conf/app.ini": "[server]\nport = 8080\n\n[db]\npassword = hunter2\n",
        "base/api/api.env": "# settings\nMODE=fast\nGITHUB_TOKEN=abc\n",
        "base/db/config.yaml": """
            apiVersion: v1
            kind: ConfigMap
            metadata: {name: db-config}
            data:
              POSTGRES_DB: app
              POSTGRES_PASSWORD: root
        """,
        "environments/dev/env.yaml": """
            namespace: dev
            configMaps:
              api-config:
                literals:
                  signing_key: "-----BEGIN EC PRIVATE KEY-----"
        """,
    })
    output = refused(tmp_path)
    assert "base/api/api.env:3: ConfigMap 'api-config' key 'GITHUB_TOKEN'" in output
    assert "base/api/conf/app.ini:5: ConfigMap 'api-config' key 'app.ini' holds a credential: the value sets 'password'" in output
    assert "environments/dev/env.yaml:5: ConfigMap 'api-config' key 'signing_key'" in output
    assert "base/db/config.yaml:6: ConfigMap 'db-config' key 'POSTGRES_PASSWORD'" in output


def test_allow_list_lets_a_reviewed_key_through(tmp_path: Path) -> None:
    files = {
        "base/api/app.yaml": """
            configMaps:
              - name: api-config
                literals: {PASSWORD_POLICY_HINT_TEXT: "x", sso_token_audience_claim: aud, token: Publ1cDemoToken}
        """,
        "environments/dev/env.yaml": "namespace: dev\n",
    }
    write_repo(tmp_path, files)
    assert "key 'token'" in refused(tmp_path)
    write_repo(tmp_path, {"gitops-gen.yaml": """
        allowInConfigMaps:
          - configMap: api-config
            key: token
            reason: "the public demo token printed on the website; grants nothing"
    """})
    assert render(tmp_path)["api/configmap-api-config.yaml"]["data"]["token"] == "Publ1cDemoToken"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("{configMap: api-config, key: token}", "missing `reason`"),
        ("{configMap: api-config, key: token, reason: '  '}", "`reason` is empty"),
        ("{configMap: api-config, key: token, reason: x, why: z}", "unknown key 'why'"),
        ("{configMap: api-config, reason: x}", "missing `key`"),
        ("{configmap: api-config, key: token, reason: x}", "did you mean 'configMap'"),
    ],
)
def test_allow_list_entries_are_strictly_checked(tmp_path: Path, entry: str, message: str) -> None:
    write_repo(tmp_path, {
        "base/api/app.yaml": "configMaps: [{name: api-config, literals: {token: t}}]\n",
        "environments/dev/env.yaml": "namespace: dev\n",
        "gitops-gen.yaml": f"allowInConfigMaps:\n  - {entry}\n",
    })
    output = refused(tmp_path)
    assert "gitops-gen.yaml:2:" in output and message in output


LEAKY_WORKLOAD = {
    "base/api/app.yaml": "configMaps: [{name: api-config, literals: {LOG_LEVEL: info}}]\n",
    "base/api/deployment.yaml": deployment("api", """
        containers:
          - name: api
            image: api:1
            args: [--listen, ":8080", --upstream-token, Zk9Qm2Lx8Vt4Rw7Yp1Nd6Hc]
            env:
              - {name: AUTH_MODE, value: oidc}
              - {name: SMTP_PASSWORD, value: hunter2-but-longer}
            envFrom: [{configMapRef: {name: api-config}}]
    """).replace("metadata:\n  name: api", "metadata:\n  name: api\n  annotations: {note: 'admin password = letmein42'}"),
    "environments/dev/env.yaml": "namespace: dev\n",
}


def test_credentials_in_any_field_of_a_workload_are_refused_with_their_field(tmp_path: Path) -> None:
    write_repo(tmp_path, LEAKY_WORKLOAD)
    output = refused(tmp_path)
    assert "base/api/deployment.yaml:5: Deployment 'api' field `metadata.annotations.note` holds a credential" in output
    assert "field `spec.template.spec.containers[api].args[3]` holds a credential: its name says" in output
    assert "field `spec.template.spec.containers[api].env[SMTP_PASSWORD].value`" in output
    assert "AUTH_MODE" not in output
    assert not any(secret in output for secret in ("letmein42", "Zk9Qm2Lx8Vt4Rw7Yp1Nd6Hc", "hunter2-but-longer"))


def test_allow_in_output_covers_any_object_and_field_and_check_reports_unused_entries(tmp_path: Path) -> None:
    write_repo(tmp_path, {**LEAKY_WORKLOAD, "gitops-gen.yaml": """
        allowInOutput:
          - {kind: Deployment, name: api, field: metadata.annotations.note, reason: "a sample line of the docs"}
          - {name: api, field: "spec.template.spec.containers[api].args[3]", reason: "the sandbox token, public"}
          - kind: Deployment
            name: api
            field: "spec.template.spec.containers[api].env[SMTP_PASSWORD].value"
            reason: "the mail relay's published demo password"
        allowInConfigMaps:
          - {configMap: api-config, key: LOG_LEVEL, reason: "kept from an old finding"}
    """})
    out = render(tmp_path)
    assert out["api/deployment-api.yaml"]["metadata"]["annotations"]["note"] == "admin password = letmein42"
    result = run("check", "--repo", tmp_path)
    assert result.exit_code == 1
    assert ("unused allow-list entry: gitops-gen.yaml:9: ConfigMap 'api-config' field `data.LOG_LEVEL` holds no finding"
            in result.output)
    assert result.output.count("unused allow-list entry") == 1
    assert run("check", "--repo", tmp_path, "--env", "dev").exit_code == 0  # known only when every env is checked


# --- the shipped example ----------------------------------------------------------------------

def example_objects(env: str) -> list[dict[str, Any]]:
    files = render_env(Repo.open(ROOT), env).files
    return [yaml.safe_load(text) for path, text in files.items() if path != "kustomization.yaml"]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_example_delivers_credentials_only_through_secrets(env: str) -> None:
    objs = example_objects(env)
    es = [o for o in objs if o["kind"] == "ExternalSecret"]
    assert [o["metadata"]["annotations"][SECRET_NAME_ANNOTATION] for o in es] == ["exchange-engine-api-key"]
    assert es[0]["spec"]["secretStoreRef"] == {"kind": "ClusterSecretStore", "name": "exchange-vault"}
    assert es[0]["spec"]["data"][0]["remoteRef"]["key"] == f"exchange/{env}/engine"
    engine = next(o for o in objs if o["kind"] == "Deployment" and o["metadata"]["name"] == "exchange-engine")
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
        for e in engine["spec"]["template"]["spec"]["containers"][0]["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {"DB_PASSWORD": "exchange-postgres-credentials", "EXCHANGE_API_KEY": es[0]["spec"]["target"]["name"]}
    postgres = next(o for o in objs if o["kind"] == "StatefulSet")
    env_refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in postgres["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env_refs["POSTGRES_USER"] == {"name": "exchange-postgres-credentials", "key": "username"}
    assert env_refs["POSTGRES_PASSWORD"] == {"name": "exchange-postgres-credentials", "key": "password"}
    assert not [o for o in objs if o["kind"] == "Secret"]


def test_example_declares_its_outside_secret() -> None:
    config = yaml.safe_load((ROOT / "gitops-gen.yaml").read_text())
    assert "exchange-postgres-credentials" in config["external"]["secrets"]


def test_a_leak_in_the_example_would_be_refused(tmp_path: Path) -> None:
    for name in ("base", "environments", "gitops-gen.yaml"):
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path / name)
    app = tmp_path / "base/db-processor/app.yaml"
    app.write_text(app.read_text().replace("postgres://exchange@", "postgres://exchange:root@"))
    output = refused(tmp_path)
    assert "base/db-processor/app.yaml:" in output and "'database_url'" in output


def test_ingress_tls_and_service_account_secrets_follow_a_hashed_secret(tmp_path: Path) -> None:
    repo = sealed_repo(tmp_path)
    write_repo(repo, {
        "base/api/ingress.yaml": """
            apiVersion: networking.k8s.io/v1
            kind: Ingress
            metadata: {name: api}
            spec:
              tls:
                - {hosts: [api.example.com], secretName: db}
                - {hosts: [www.example.com], secretName: made-by-cert-manager}
              rules:
                - host: api.example.com
                  http:
                    paths:
                      - {path: /, pathType: Prefix, backend: {service: {name: api, port: {number: 80}}}}
        """,
        "base/api/serviceaccount.yaml": """
            apiVersion: v1
            kind: ServiceAccount
            metadata: {name: api}
            imagePullSecrets: [{name: db}]
            secrets: [{name: db}]
        """,
    })
    out = render(repo)
    hashed = out["api/sealedsecret-db.yaml"]["metadata"]["name"]
    assert hashed.startswith("db-")
    tls = out["api/ingress-api.yaml"]["spec"]["tls"]
    assert [t["secretName"] for t in tls] == [hashed, "made-by-cert-manager"]
    account = out["api/serviceaccount-api.yaml"]
    assert account["imagePullSecrets"] == [{"name": hashed}] and account["secrets"] == [{"name": hashed}]
