"""The deployment files agree with the project, with each other and with the running node.

Checked without a container engine or a cluster: the Dockerfile installs the extra and
runs the console script that pyproject declares; the compose stack wires iqgate, Orthanc,
Prometheus and Grafana together with valid settings; the Kubernetes manifests validate
against the Kubernetes schemas offline (kubernetes-validate), the Prometheus operator's
CRDs by hand; every metric that an alert rule, the Grafana dashboard, the HPA's adapter
rule or the preStop hook reads is one that a real node exports on ``/metrics``; and the
rules and the dashboard's queries parse with ``promtool`` (Debian package prometheus).
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from iqgate.cli import build_parser
from iqgate.config import Settings, load_settings, parse_destination
from iqgate.node.ingest.dimse import ACCEPTED_TRANSFER_SYNTAXES, STORAGE_CLASSES, DimseStatus
from iqgate_testkit.peers import http_get, running_node

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
BASE = K8S / "base"
OVERLAY = K8S / "overlays" / "example"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
ALERT_TESTS = DEPLOY / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY / "grafana" / "iqgate-dashboard.json"
ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"

KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
"""An older release many hospital clusters still run, and the newest schemas we have."""

PROMETHEUS_OWN_SERIES = frozenset({"up"})
"""Series Prometheus writes itself for every target, which rules may use beside ours."""

OPERATOR_GROUP = "monitoring.coreos.com/v1"
POD_LABELS = {"app.kubernetes.io/name": "iqgate", "app.kubernetes.io/component": "dicom-node"}


# -- helpers: Dockerfile ------------------------------------------------------------------
def dockerfile_instructions(text: str) -> list[tuple[int, str, str]]:
    """(stage index, INSTRUCTION, arguments) with continuations joined and comments gone."""
    instructions: list[tuple[int, str, str]] = []
    stage = -1
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined = (pending + stripped).strip()
        pending = ""
        keyword, _, arguments = joined.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append((stage, keyword, arguments.strip()))
    return instructions


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an exec-form instruction (ENTRYPOINT, CMD, HEALTHCHECK CMD)."""
    value = json.loads(arguments)
    if not isinstance(value, list):
        raise TypeError(f"{arguments!r} is not the exec form of an instruction")
    return [str(v) for v in value]


def env_pairs(arguments: str) -> dict[str, str]:
    """KEY=value pairs of an ENV instruction."""
    return dict(part.split("=", 1) for part in shlex.split(arguments) if "=" in part)


GLOB_TOKENS = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
"""Docker's .dockerignore wildcards (Go filepath.Match plus ``**``) as regular expressions."""


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Whether Docker leaves ``path`` out of the build context (last matching line wins)."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = (pattern[1:] if negate else pattern).strip("/")
        regex = "".join(
            GLOB_TOKENS.get(token, re.escape(token))
            for token in re.split(r"(\*\*/|\*\*|\*|\?)", body)
        )
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            excluded = not negate
    return excluded


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[int, str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text())


def final_stage(instructions: list[tuple[int, str, str]]) -> list[tuple[str, str]]:
    last = max(stage for stage, _, _ in instructions)
    return [(keyword, args) for stage, keyword, args in instructions if stage == last]


def build_args(instructions: list[tuple[int, str, str]]) -> dict[str, str]:
    """Every ARG with a default, from any stage."""
    found: dict[str, str] = {}
    for _, keyword, arguments in instructions:
        if keyword == "ARG" and "=" in arguments:
            name, value = arguments.split("=", 1)
            found[name] = value
    return found


def substitute(text: str, values: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values.get(m[1] or m[2], m[0]), text)


# -- Dockerfile -----------------------------------------------------------------------------
def test_the_image_installs_the_gpu_extra_of_pyproject_and_never_the_cpu_one(dockerfile, pyproject):
    extras_declared = pyproject["project"]["optional-dependencies"]
    installs = [
        args for _, keyword, args in dockerfile if keyword == "RUN" and "pip install" in args
    ]
    project_installs = [re.search(r"""["']?\.\[([\w,\s-]+)\]["']?""", run) for run in installs]
    extras = {extra.strip() for match in project_installs if match for extra in match[1].split(",")}
    assert extras == {"gpu"}, f"the Dockerfile installs the project with extras {extras}"
    assert any(r.startswith("onnxruntime-gpu") for r in extras_declared["gpu"])
    assert not any(re.search(r"onnxruntime(?!-gpu)\b", run) for run in installs)


def test_the_image_pins_torch_as_the_makefile_does(dockerfile):
    args = build_args(dockerfile)
    makefile = (ROOT / "Makefile").read_text()
    for package, arg in (("torch", "TORCH_VERSION"), ("torchvision", "TORCHVISION_VERSION")):
        pinned = re.search(rf"\b{package}==([\w.+-]+)", makefile)
        if pinned is None:
            continue
        assert args.get(arg) == pinned[1], f"Dockerfile ARG {arg} differs from the Makefile"


def test_the_image_runs_the_console_script_that_pyproject_declares(dockerfile, pyproject):
    scripts = pyproject["project"]["scripts"]
    stage = final_stage(dockerfile)
    entrypoint = [exec_form(args) for keyword, args in stage if keyword == "ENTRYPOINT"]
    command = [exec_form(args) for keyword, args in stage if keyword == "CMD"]
    assert entrypoint and entrypoint[-1][0] in scripts
    assert scripts[entrypoint[-1][0]] == "iqgate.cli:main"
    assert command and build_parser().parse_args(command[-1]).command == "serve"


def test_the_image_is_multi_stage_on_a_cuda_runtime_and_runs_as_a_user(dockerfile):
    args = build_args(dockerfile)
    bases = [substitute(a.split()[0], args) for _, k, a in dockerfile if k == "FROM"]
    assert len(bases) >= 2, "builder and runtime stages"
    assert re.fullmatch(r"nvidia/cuda:[\d.]+-cudnn-runtime-ubuntu[\d.]+", bases[-1]), bases[-1]
    stage = final_stage(dockerfile)
    user = [substitute(a, args) for k, a in stage if k == "USER"][-1]
    assert user.split(":")[0] not in {"root", "0"}
    assert any(k == "COPY" and "--from=" in a and "/opt/venv" in a for k, a in stage)


def test_the_image_settings_ports_volumes_and_health_check_agree_with_the_node(dockerfile):
    stage = final_stage(dockerfile)
    settings = load_settings(environ=image_environment())
    exposed = {int(p.split("/")[0]) for k, a in stage if k == "EXPOSE" for p in a.split()}
    assert {settings.port, settings.http_port} <= exposed
    volumes = {v for k, a in stage if k == "VOLUME" for v in json.loads(a)}
    assert {str(settings.spool_dir), str(settings.results_dir)} <= volumes
    assert str(settings.models_dir) == "/models"
    health = [a for k, a in stage if k == "HEALTHCHECK"]
    assert health and "/healthz" in health[-1] and "IQGATE_HTTP_PORT" in health[-1]


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_private(dockerfile):
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copied = [
        source
        for _, keyword, args in dockerfile
        if keyword == "COPY" and "--from=" not in args
        for source in args.split()[:-1]
        if source != "."
    ]
    assert copied
    for source in [*copied, "service/iqgate/cli.py", "models/cxr/model.json"]:
        assert not dockerignore_excludes(patterns, source.rstrip("/")), source
    for private in (
        ".venv/bin/python",
        ".git/HEAD",
        "var/spool/jobs.sqlite",
        "runs/log.txt",
        "tests/integration/test_deploy.py",
        "models/cxr/model.onnx",
        "service/iqgate/__pycache__/cli.cpython-311.pyc",
    ):
        assert dockerignore_excludes(patterns, private), private


# -- compose --------------------------------------------------------------------------------
def interpolate(value: object) -> str:
    """A compose value with ``${NAME:-default}`` replaced by its default."""
    return re.sub(r"\$\{\w+(?::?-([^}]*))?\}", lambda m: m[1] or "", str(value))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((COMPOSE_DIR / "docker-compose.yml").read_text())


def image_environment() -> dict[str, str]:
    """The IQGATE_* settings the image's ENV instructions set."""
    stage = final_stage(dockerfile_instructions((ROOT / "Dockerfile").read_text()))
    env = {k: v for keyword, a in stage if keyword == "ENV" for k, v in env_pairs(a).items()}
    return {k: v for k, v in env.items() if k.startswith("IQGATE_")}


@pytest.fixture(scope="module")
def compose_settings(compose) -> Settings:
    """The settings of the iqgate container: the image's, overridden by the compose file."""
    env = {k: interpolate(v) for k, v in compose["services"]["iqgate"]["environment"].items()}
    return load_settings(environ=image_environment() | env)


def container_ports(service: dict) -> set[int]:
    return {int(str(p).rsplit(":", 1)[-1].split("/")[0]) for p in service.get("ports", [])}


def test_compose_runs_iqgate_with_a_pacs_prometheus_and_grafana(compose, compose_settings):
    services = compose["services"]
    assert {"iqgate", "orthanc", "prometheus", "grafana"} <= set(services)
    iqgate = services["iqgate"]
    assert iqgate["build"]["context"] == "../.." and iqgate["build"]["dockerfile"] == "Dockerfile"
    assert (COMPOSE_DIR / iqgate["build"]["context"] / iqgate["build"]["dockerfile"]).is_file()
    assert container_ports(iqgate) == {compose_settings.port, compose_settings.http_port}
    mounts = {v.split(":")[1] for v in iqgate["volumes"]}
    assert {str(compose_settings.spool_dir), str(compose_settings.results_dir)} <= mounts
    assert compose_settings.allowed_calling_aes, "the demo stack keeps an allow-list"


def test_compose_bind_mounts_point_at_files_of_this_repository(compose):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_DIR / source).exists(), f"{name} mounts missing {source}"


def test_iqgate_and_orthanc_know_each_other(compose, compose_settings):
    orthanc = json.loads((COMPOSE_DIR / "orthanc.json").read_text())
    [destination] = [parse_destination(p) for p in compose_settings.pacs]
    assert destination.host in compose["services"]
    assert (destination.ae_title, destination.port) == (orthanc["DicomAet"], orthanc["DicomPort"])
    peers = orthanc["DicomModalities"].values()
    assert any(
        (p["AET"], p["Host"], p["Port"])
        == (compose_settings.ae_title, "iqgate", compose_settings.port)
        and p["AllowStore"]
        for p in peers
    ), "Orthanc must accept C-STORE from iqgate's AE title"


def test_prometheus_scrapes_iqgate_under_the_job_the_rules_select(compose, compose_settings):
    config = yaml.safe_load((COMPOSE_DIR / "prometheus.yml").read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "iqgate"]
    targets = [t for c in job["static_configs"] for t in c["targets"]]
    assert targets == [f"iqgate:{compose_settings.http_port}"]
    assert 'job="iqgate"' in ALERTS.read_text()
    rules_mount = [v for v in compose["services"]["prometheus"]["volumes"] if "alerts.yml" in v]
    assert rules_mount and rules_mount[0].split(":")[1].startswith("/etc/prometheus/rules/")


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard(compose):
    provisioning = COMPOSE_DIR / "grafana" / "provisioning"
    datasources = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())
    assert datasources["datasources"][0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((provisioning / "dashboards" / "iqgate.yml").read_text())
    path = providers["providers"][0]["options"]["path"]
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts.get("../grafana") == path
    assert (COMPOSE_DIR / "../grafana" / DASHBOARD.name).is_file()


def test_the_gpu_override_gives_iqgate_one_nvidia_gpu():
    override = yaml.safe_load((COMPOSE_DIR / "docker-compose.gpu.yml").read_text())
    iqgate = override["services"]["iqgate"]
    [device] = iqgate["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["count"] == 1 and "gpu" in device["capabilities"]
    assert load_settings(environ=iqgate["environment"]).device == "cuda"


def compose_plugin_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def test_docker_compose_accepts_the_stack():
    if not compose_plugin_available():
        pytest.skip("needs the docker compose plugin (no container engine or plugin here)")
    command = "docker compose -f docker-compose.yml -f docker-compose.gpu.yml config --quiet"
    run = subprocess.run(
        command.split(), cwd=COMPOSE_DIR, capture_output=True, text=True, check=False, timeout=60
    )
    assert run.returncode == 0, run.stderr


# -- Kubernetes -----------------------------------------------------------------------------
def kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return None


def read_kustomization(folder: Path) -> Iterator[dict]:
    """The resources a kustomization lists, read as files (patches and transformers skipped).

    The fallback where neither kustomize nor kubectl is installed: every whole resource is
    still validated, only the site's patches are not applied.
    """
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    for entry in kustomization.get("resources", []):
        path = folder / entry
        if path.is_dir():
            yield from read_kustomization(path)
        else:
            yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


@functools.cache
def kustomize_build(folder: Path) -> str:
    command = kustomize_command()
    assert command is not None
    run = subprocess.run(
        [*command, str(folder)], capture_output=True, text=True, check=False, timeout=120
    )
    assert run.returncode == 0, f"{' '.join(command)} {folder}: {run.stderr}"
    return run.stdout


def rendered(folder: Path) -> list[dict]:
    """The manifests of a kustomization: built when a tool is there, else read as files."""
    if kustomize_command() is None:
        return list(read_kustomization(folder))
    return [d for d in yaml.safe_load_all(kustomize_build(folder)) if d]


@pytest.fixture(scope="module", params=[BASE, OVERLAY], ids=["base", "example-overlay"])
def manifests(request) -> list[dict]:
    return rendered(request.param)


@pytest.fixture(scope="module")
def overlay() -> list[dict]:
    if kustomize_command() is None:
        pytest.skip("needs kustomize or kubectl to apply the example overlay's patches")
    return rendered(OVERLAY)


def one(documents: list[dict], kind: str, name: str | None = None) -> dict:
    found = [
        d
        for d in documents
        if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def test_the_kustomizations_list_the_same_resources_as_the_files_read_directly():
    if kustomize_command() is None:
        pytest.skip("needs kustomize or kubectl to compare with the built output")
    for folder in (BASE, OVERLAY):
        built = {(d["kind"], d["metadata"]["name"]) for d in rendered(folder)}
        read = {(d["kind"], d["metadata"]["name"]) for d in read_kustomization(folder)}
        assert built == read


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifests_validate_against_the_kubernetes_schemas(manifests, version):
    kubernetes_validate = pytest.importorskip(
        "kubernetes_validate", reason="needs kubernetes-validate (pip, the dev extra)"
    )
    checked = []
    for document in manifests:
        if document["apiVersion"] == OPERATOR_GROUP:
            continue  # CRDs of the Prometheus operator: no schema offline, checked below
        kubernetes_validate.validate(document, version, strict=True)
        checked.append(document["kind"])
    assert {
        "StatefulSet",
        "Service",
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
    } <= set(checked)


def test_the_schema_validation_catches_a_misspelt_field():
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    statefulset = one(rendered(BASE), "StatefulSet")
    broken = json.loads(json.dumps(statefulset))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProb"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def configmap_settings(documents: list[dict]) -> Settings:
    return load_settings(environ=one(documents, "ConfigMap", "iqgate-settings")["data"])


def test_each_replica_has_one_gpu_one_spool_volume_and_probes_on_the_node_endpoints(manifests):
    settings = configmap_settings(manifests)
    statefulset = one(manifests, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    [container] = pod["containers"]
    [claim] = statefulset["spec"]["volumeClaimTemplates"]
    resources = container["resources"]
    assert str(resources["limits"]["nvidia.com/gpu"]) == "1"
    assert str(resources["requests"]["nvidia.com/gpu"]) == "1"
    assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"dicom": settings.port, "http-metrics": settings.http_port}
    for probe, path in (
        ("readinessProbe", "/readyz"),
        ("livenessProbe", "/healthz"),
        ("startupProbe", "/healthz"),
    ):
        assert container[probe]["httpGet"] == {"path": path, "port": "http-metrics"}
    [mount] = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    for folder in (settings.spool_dir, settings.results_dir):
        assert str(folder).startswith(mount["mountPath"] + "/")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert statefulset["spec"]["selector"]["matchLabels"] == POD_LABELS
    assert settings.device == "cuda"


def test_the_services_pdb_and_hpa_point_at_the_statefulset(manifests):
    statefulset = one(manifests, "StatefulSet")
    container_ports = {
        p["name"] for p in statefulset["spec"]["template"]["spec"]["containers"][0]["ports"]
    }
    dicom = one(manifests, "Service", "iqgate-dicom")
    metrics = one(manifests, "Service", "iqgate-metrics")
    for service in (dicom, metrics):
        assert service["spec"]["selector"] == POD_LABELS
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= container_ports
    assert [p["targetPort"] for p in dicom["spec"]["ports"]] == ["dicom"]
    assert [p["targetPort"] for p in metrics["spec"]["ports"]] == ["http-metrics"]
    assert metrics["spec"]["clusterIP"] == "None"
    assert statefulset["spec"]["serviceName"] == metrics["metadata"]["name"]
    assert one(manifests, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == POD_LABELS
    hpa = one(manifests, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "name": statefulset["metadata"]["name"],
    }


def test_the_hpa_scales_on_the_metric_the_adapter_rule_serves(manifests):
    hpa = one(manifests, "HorizontalPodAutoscaler")
    [metric] = hpa["spec"]["metrics"]
    assert metric["type"] in {"Pods", "External"}
    name = metric[metric["type"].lower()]["metric"]["name"]
    rules = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    served = {rule["name"]["as"] for rule in rules}
    assert name in served
    [rule] = [r for r in rules if r["name"]["as"] == name]
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}


def test_the_operator_resources_match_the_rules_file_and_the_metrics_service(manifests):
    rule = one(manifests, "PrometheusRule")
    assert rule["apiVersion"] == OPERATOR_GROUP
    assert rule["spec"]["groups"] == yaml.safe_load(ALERTS.read_text())["groups"]
    monitor = one(manifests, "ServiceMonitor")
    metrics = one(manifests, "Service", "iqgate-metrics")
    labels = metrics["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert labels[monitor["spec"]["jobLabel"]] == "iqgate", "rules select job=iqgate"
    port_names = {p["name"] for p in metrics["spec"]["ports"]}
    assert all(
        e["port"] in port_names and e["path"] == "/metrics" for e in monitor["spec"]["endpoints"]
    )


def test_the_example_overlay_has_an_allow_list_pacs_and_tls_from_a_secret(overlay):
    settings = configmap_settings(overlay)
    assert settings.allowed_callers and settings.destinations and settings.tls_enabled
    secret = one(overlay, "Secret", "iqgate-dicom-tls")
    assert secret["type"] == "kubernetes.io/tls"
    assert "REPLACE-ME" in json.dumps(secret), "the example holds placeholders, never a key"
    pod = one(overlay, "StatefulSet")["spec"]["template"]["spec"]
    [volume] = [
        v
        for v in pod["volumes"]
        if v.get("secret", {}).get("secretName") == secret["metadata"]["name"]
    ]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
    keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for path in (settings.tls_cert, settings.tls_key, settings.tls_ca):
        assert path.parent == Path(mount["mountPath"]) and path.name in keys
    dicom = one(overlay, "Service", "iqgate-dicom")
    assert dicom["spec"]["externalTrafficPolicy"] == "Local", "keeps callers' addresses"


# -- metrics: rules, dashboard, adapter and hooks read only what the node exports -----------
@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, object]:
    """Series names, and the label values seen, on the /metrics of a running node."""
    workdir = tmp_path_factory.mktemp("node")
    models = workdir / "models"
    models.mkdir()
    with running_node(workdir, models) as node:
        status, body = http_get(node.metrics_url)
    assert status == 200
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: set[str] = set()
    states: set[str] = set()
    for family in text_string_to_metric_families(body.decode()):
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
        states.update(
            s.labels["state"] for s in family.samples if family.name == "iqgate_queue_depth"
        )
    return {"names": names, "queue_states": states}


def without_strings(expression: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expression)


def metric_names(expression: str) -> set[str]:
    """Series names a PromQL expression (or text holding one) reads."""
    bare = without_strings(expression)
    selected = set(re.findall(r"\b([a-zA-Z_:][\w:]*)\s*\{", bare))
    unknown = {n for n in selected if not n.startswith("iqgate_")} - PROMETHEUS_OWN_SERIES
    assert not unknown, f"{expression!r} selects series iqgate does not export: {unknown}"
    return set(re.findall(r"\biqgate_\w+", bare)) | (selected & PROMETHEUS_OWN_SERIES)


def alert_expressions() -> dict[str, str]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return {r.get("alert") or r["record"]: r["expr"] for g in groups for r in g["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text())
    found: dict[str, str] = {}

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            title = node.get("title") or node.get("name") or where
            if isinstance(node.get("expr"), str):
                found[f"{title} {node.get('refId', '')}".strip()] = node["expr"]
            if isinstance(node.get("definition"), str) and node["definition"]:
                found[f"variable {title}"] = node["definition"]
            for value in node.values():
                walk(value, title)
        elif isinstance(node, list):
            for value in node:
                walk(value, where)

    walk(dashboard, "dashboard")
    return found


def adapter_queries() -> dict[str, str]:
    rules = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    return {
        f"adapter rule {r['name']['as']}": r["seriesQuery"] + " " + r["metricsQuery"] for r in rules
    }


def prestop_hook() -> str:
    """The drain script of the StatefulSet's preStop hook (Python reading /metrics)."""
    statefulset = one(list(read_kustomization(BASE)), "StatefulSet")
    container = statefulset["spec"]["template"]["spec"]["containers"][0]
    return " ".join(container["lifecycle"]["preStop"]["exec"]["command"])


def test_every_metric_the_alert_rules_read_is_exported_by_the_node(exported):
    for alert, expression in alert_expressions().items():
        names = metric_names(expression)
        assert names, f"alert {alert} reads no metric"
        missing = names - exported["names"] - PROMETHEUS_OWN_SERIES
        assert not missing, f"alert {alert} reads {missing}, which the node does not export"


def test_every_metric_the_dashboard_reads_is_exported_by_the_node(exported):
    expressions = dashboard_expressions()
    assert len(expressions) >= 10
    for panel, expression in expressions.items():
        names = metric_names(expression)
        assert names, f"panel {panel!r} reads no metric"
        missing = names - exported["names"]
        assert not missing, f"panel {panel!r} reads {missing}, which the node does not export"


def test_the_adapter_rule_and_the_prestop_hook_read_exported_metrics(exported):
    for reader, query in adapter_queries().items():
        names = metric_names(query)
        assert names and not names - exported["names"], f"{reader} reads {names}"
    hook_reads = set(re.findall(r"iqgate_[a-z_]+", prestop_hook()))
    assert hook_reads and not hook_reads - exported["names"], hook_reads


def test_the_queue_states_named_anywhere_are_states_the_node_reports(exported):
    texts = [
        *alert_expressions().values(),
        *dashboard_expressions().values(),
        *adapter_queries().values(),
        prestop_hook(),
    ]
    named: set[str] = set()
    for text in texts:
        for selector in re.findall(r"iqgate_queue_depth\\?\{([^}]*)\}", text):
            for value in re.findall(r'state\s*[!=]~?\s*\\?"([^"\\]+)', selector):
                named.update(re.sub(r"[()?:]", "", v) for v in value.split("|"))
    assert named and named <= exported["queue_states"], named - exported["queue_states"]


# -- promtool ---------------------------------------------------------------------------------
def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    if shutil.which("promtool") is None:
        pytest.skip("needs promtool (Debian package prometheus, installed by .ci/run)")
    return subprocess.run(
        ["promtool", *args], capture_output=True, text=True, cwd=cwd, check=False, timeout=120
    )


def test_the_alert_rules_pass_promtool_check_rules():
    run = promtool("check", "rules", str(ALERTS))
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_alert_rules_fire_as_their_unit_tests_expect():
    run = promtool("test", "rules", ALERT_TESTS.name, cwd=ALERT_TESTS.parent)
    assert run.returncode == 0, run.stdout + run.stderr


def test_the_compose_prometheus_configuration_passes_promtool():
    run = promtool("check", "config", "--syntax-only", str(COMPOSE_DIR / "prometheus.yml"))
    assert run.returncode == 0, run.stdout + run.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path):
    grafana_variables = {
        "$__rate_interval": "5m",
        "$__interval": "1m",
        "$job": ".*",
        "$instance": ".*",
    }
    rules = []
    for index, (panel, expression) in enumerate(dashboard_expressions().items()):
        if panel.startswith("variable "):
            match = re.fullmatch(r"label_values\((.+),\s*\w+\)", expression)
            assert match, f"{panel}: {expression!r}"
            expression = match[1]
        for variable, value in grafana_variables.items():
            expression = expression.replace(variable, value)
        assert "$" not in expression, f"{panel}: unknown Grafana variable in {expression!r}"
        rules.append({"record": f"dashboard:query_{index}", "expr": expression})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = promtool("check", "rules", str(path))
    assert run.returncode == 0, run.stdout + run.stderr


# -- documentation ----------------------------------------------------------------------------
def test_the_conformance_statement_lists_every_class_syntax_and_status_the_scp_uses():
    statement = (ROOT / "docs" / "conformance.md").read_text()
    for uid in (*STORAGE_CLASSES, *ACCEPTED_TRANSFER_SYNTAXES):
        assert f"`{uid}`" in statement, f"{uid.name} ({uid}) is missing"
    for status in DimseStatus:
        assert f"`0x{status.value:04X}`" in statement, f"{status.name} is missing"


def test_the_deployment_guide_explains_every_alert():
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for alert in alert_expressions():
        assert f"| {alert} |" in guide, f"docs/deploy.md does not explain {alert}"
