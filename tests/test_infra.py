"""infra/ deploys what it says: manifests that reference only what they define, one image, a manager probed
where it listens, a systemd unit systemd accepts, scripts that parse, and no password written anywhere.

The manager's entrypoint runs for real, with stand-in ``ray`` and ``farm`` commands that record the
command lines they were given.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from farm.settings import REPO_ROOT

INFRA = REPO_ROOT / "infra"
KUBERNETES = INFRA / "kubernetes"
IMAGE = INFRA / "image"
UNIT = INFRA / "systemd" / "farm-manager.service"
ENTRYPOINT = IMAGE / "manager-entrypoint.sh"
PLACEHOLDER = "CHANGE-ME"

Manifest = dict[str, Any]


# ---- reading the manifests ---------------------------------------------------------------------------------


def manifests(folder: Path = KUBERNETES) -> list[Manifest]:
    """Every document of every manifest in ``folder`` (the kustomization itself is not one)."""
    documents = []
    for path in sorted(folder.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return documents


def kustomization() -> Manifest:
    return yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())


def the(documents: list[Manifest], kind: str, name: str) -> Manifest:
    found = [doc for doc in documents if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name} in infra/kubernetes, found {len(found)}"
    return found[0]


def references(node: Any) -> Iterator[tuple[str, str]]:
    """(kind, name) of every Secret, ConfigMap and PersistentVolumeClaim that ``node`` names, at any depth."""
    if isinstance(node, list):
        for item in node:
            yield from references(item)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("secretKeyRef", "secretRef") and isinstance(value, dict):
            yield "Secret", value["name"]
        elif key == "secret" and isinstance(value, dict) and "secretName" in value:
            yield "Secret", value["secretName"]
        elif key == "imagePullSecrets":
            yield from (("Secret", entry["name"]) for entry in value)
        elif key in ("configMapKeyRef", "configMapRef", "configMap") and isinstance(value, dict):
            yield "ConfigMap", value["name"]
        elif key == "persistentVolumeClaim" and isinstance(value, dict):
            yield "PersistentVolumeClaim", value["claimName"]
        yield from references(value)


def pod_specs(document: Manifest) -> list[Manifest]:
    """The pod templates of a Deployment or a RayCluster (its head and every worker group)."""
    spec = document.get("spec", {})
    if document["kind"] == "RayCluster":
        groups = [spec["headGroupSpec"], *spec.get("workerGroupSpecs", [])]
        return [group["template"]["spec"] for group in groups]
    if "template" in spec:
        return [spec["template"]["spec"]]
    return []


def images(documents: list[Manifest]) -> dict[str, str]:
    """``kind/name/container`` -> image, for every container of every pod template."""
    return {
        f"{doc['kind']}/{doc['metadata']['name']}/{container['name']}": container["image"]
        for doc in documents
        for pod in pod_specs(doc)
        for container in [*pod.get("initContainers", []), *pod["containers"]]
    }


def manager_container(documents: list[Manifest]) -> Manifest:
    return pod_specs(the(documents, "Deployment", "farm-manager"))[0]["containers"][0]


def port_number(container: Manifest, port: int | str) -> int:
    """A probe's or Service's port, by number or by the container port's name."""
    if isinstance(port, int):
        return port
    named = {entry["name"]: entry["containerPort"] for entry in container.get("ports", []) if "name" in entry}
    assert port in named, f"port {port!r} is not a named port of container {container['name']}"
    return int(named[port])


# ---- finding a written password ----------------------------------------------------------------------------

URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^\s:/@'\"]*:([^\s@/'\"]+)@")
ASSIGNED_PASSWORD = re.compile(r"(?i)\b\w*password(?!\w*_env\b)\w*\s*[:=]\s*['\"]?([^\s'\"#,}]+)")
"""``password = ...``, but not ``password_env = ...`` (farm.toml names the variable that holds it)."""
SQL_PASSWORD = re.compile(r"(?i)\bPASSWORD\s+'([^']*)'")


def written_passwords(text: str) -> list[str]:
    """Every password ``text`` spells out, placeholders (CHANGE-ME) and ``$VARIABLE`` references aside."""
    found = [match for pattern in (URL_PASSWORD, ASSIGNED_PASSWORD, SQL_PASSWORD) for match in pattern.findall(text)]
    return [value for value in found if value != PLACEHOLDER and not value.startswith("$")]


def infra_files() -> list[Path]:
    return sorted(path for path in INFRA.rglob("*") if path.is_file() and "__pycache__" not in path.parts)


# ---- reading the systemd unit ------------------------------------------------------------------------------


def unit_entries(path: Path = UNIT) -> dict[str, list[tuple[str, str]]]:
    """Section -> (key, value) in order; a key may repeat (Environment=), so no configparser."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        else:
            assert current is not None, f"{path.name}: {line!r} is outside any section"
            key, _, value = line.partition("=")
            current.append((key.strip(), value.strip()))
    return sections


def unit_value(section: str, key: str) -> str | None:
    values = [value for name, value in unit_entries().get(section, []) if name == key]
    return values[-1] if values else None


# ---- Kubernetes ------------------------------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest_in_the_folder() -> None:
    listed = set(kustomization()["resources"])
    on_disk = {path.name for path in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}

    assert listed == on_disk
    assert {"raycluster.yaml", "manager.yaml", "secret.yaml", "storage.yaml"} <= listed


def test_every_secret_config_map_and_volume_claim_a_manifest_names_is_defined_there() -> None:
    documents = manifests()
    defined = {(doc["kind"], doc["metadata"]["name"]) for doc in documents}

    used = set(references(documents))

    assert {("Secret", "farm-db"), ("PersistentVolumeClaim", "projects"), ("ConfigMap", "farm-settings")} <= used
    assert used - defined == set(), f"referenced in infra/kubernetes but defined nowhere there: {used - defined}"


def test_the_shared_volumes_can_be_mounted_by_pods_on_many_nodes() -> None:
    claims = [doc for doc in manifests() if doc["kind"] == "PersistentVolumeClaim"]

    assert {claim["metadata"]["name"] for claim in claims} == {"farm-data", "projects"}
    assert all(claim["spec"]["accessModes"] == ["ReadWriteMany"] for claim in claims)


def test_the_ray_cluster_and_the_manager_run_one_image() -> None:
    by_container = images(manifests())
    repository = kustomization()["images"][0]["name"]

    assert {"RayCluster/farm/ray-head", "RayCluster/farm/ray-worker", "Deployment/farm-manager/manager"} <= set(
        by_container
    )
    assert len(set(by_container.values())) == 1, by_container
    assert next(iter(by_container.values())).rsplit(":", 1)[0] == repository


def test_the_managers_probes_ask_for_api_health_on_the_port_it_listens_on() -> None:
    documents = manifests()
    container = manager_container(documents)
    default_listen = re.search(r"FARM_LISTEN:-[\d.]+:(\d+)", ENTRYPOINT.read_text())
    assert default_listen, "manager-entrypoint.sh sets no default FARM_LISTEN"
    listen_port = int(default_listen.group(1))

    for probe in ("readinessProbe", "livenessProbe"):
        check = container[probe]["httpGet"]
        assert check["path"] == "/api/health", probe
        assert port_number(container, check["port"]) == listen_port == 8765, probe


def test_the_farm_api_service_reaches_the_managers_http_port() -> None:
    documents = manifests()
    service, deployment = the(documents, "Service", "farm-api"), the(documents, "Deployment", "farm-manager")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    assert port["port"] == 8765
    assert port_number(manager_container(documents), port["targetPort"]) == 8765


def test_the_manager_takes_the_database_url_from_the_secret_and_runs_the_images_entrypoint() -> None:
    container = manager_container(manifests())
    environment = {entry["name"]: entry for entry in container["env"]}
    installed_as = re.search(r"COPY infra/image/manager-entrypoint.sh (\S+)", (IMAGE / "Dockerfile").read_text())

    assert environment["FARM_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "farm-db", "key": "url"}
    assert "value" not in environment["FARM_DATABASE_URL"]
    assert installed_as and Path(installed_as.group(1)).name == container["args"][0]
    assert the(manifests(), "Deployment", "farm-manager")["spec"]["replicas"] == 2


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_builds_the_folder_with_one_image_everywhere() -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=120, check=False
    )

    assert built.returncode == 0, built.stderr
    documents = [doc for doc in yaml.safe_load_all(built.stdout) if doc]
    assert {doc["kind"] for doc in documents} >= {"RayCluster", "Deployment", "Service", "Secret", "ConfigMap"}
    assert len(set(images(documents).values())) == 1


# ---- no password written -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("FARM_DATABASE_URL=postgresql://farm:hunter2@db/farm", ["hunter2"]),
        ("      POSTGRES_PASSWORD: farm          # change this", ["farm"]),
        ("CREATE ROLE farm LOGIN PASSWORD 'change-me';", ["change-me"]),
        ("url: postgresql://farm:CHANGE-ME@postgres:5432/farm", []),
        ("POSTGRES_PASSWORD: ${FARM_DB_PASSWORD:?set it}", []),
        ('password_env = "FARM_SMTP_PASSWORD"', []),
        ('smtp_password = "hunter2"', ["hunter2"]),
        ("keep the password in ~/.pgpass and give --db postgresql://farm@db/farm", []),
    ],
)
def test_the_password_finder_sees_a_written_password_and_lets_placeholders_be(text: str, found: list[str]) -> None:
    assert written_passwords(text) == found


def test_no_password_is_written_anywhere_in_infra() -> None:
    files = infra_files()
    written = {str(path.relative_to(REPO_ROOT)): written_passwords(path.read_text()) for path in files}

    assert len(files) >= 12
    assert {name: values for name, values in written.items() if values} == {}
    assert PLACEHOLDER in (KUBERNETES / "secret.yaml").read_text()
    assert PLACEHOLDER in (INFRA / "systemd" / "manager.env.example").read_text()


# ---- systemd -----------------------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_manager_unit(tmp_path: Path) -> None:
    # verify insists that ExecStart's program exists: point it at this checkout's farm instead of /opt/farm's.
    farm_program = Path(sys.executable).parent / "farm"
    if not farm_program.is_file():
        pytest.skip(f"no farm program beside {sys.executable}")
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/farm/.venv/bin/farm", str(farm_program)))

    verified = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )

    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout + verified.stderr == ""  # an unknown key is only a warning, with status 0


def test_the_manager_unit_restarts_forever_as_its_own_user_with_the_secret_in_a_file() -> None:
    exec_start = unit_value("Service", "ExecStart") or ""

    assert unit_value("Unit", "StartLimitIntervalSec") == "0"
    assert unit_value("Service", "Restart") == "always"
    assert unit_value("Service", "RestartSec")
    assert unit_value("Service", "User") not in (None, "root")
    assert unit_value("Service", "EnvironmentFile") == "/etc/farm/manager.env"
    assert exec_start.startswith("/opt/farm/.venv/bin/farm serve --address ${FARM_RAY_ADDRESS}")
    assert "--db" not in exec_start and "FARM_DATABASE_URL" not in exec_start
    assert unit_value("Service", "PrivateTmp") in (None, "no")  # Ray's sockets are in /tmp/ray


def test_every_variable_the_unit_passes_to_farm_serve_is_set() -> None:
    example = (INFRA / "systemd" / "manager.env.example").read_text()
    defaults = {value.split("=", 1)[0] for key, value in unit_entries()["Service"] if key == "Environment"}
    in_example = set(re.findall(r"^([A-Z_]+)=", example, flags=re.MULTILINE))

    used = set(re.findall(r"\$\{(\w+)\}", unit_value("Service", "ExecStart") or ""))

    assert used == {"FARM_RAY_ADDRESS", "FARM_LISTEN"}
    assert used <= defaults & in_example
    assert "FARM_DATABASE_URL" in in_example


# ---- the image -----------------------------------------------------------------------------------------------


def test_the_image_installs_the_pinned_torch_before_farm() -> None:
    lines = (IMAGE / "Dockerfile").read_text().splitlines()
    render = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["render"]
    pin = next(dependency for dependency in render if dependency.startswith("torch=="))

    torch_line = next(i for i, line in enumerate(lines) if re.search(r"pip install torch==", line))
    farm_line = next(i for i, line in enumerate(lines) if re.search(r"pip install .*/opt/farm/src$", line))

    assert torch_line < farm_line
    assert f"pip install {pin} --index-url" in lines[torch_line]
    assert lines[0].startswith("# syntax=") and "FROM python:3.12-slim" in lines


def test_the_image_runs_as_a_user_under_tini_with_ffmpeg() -> None:
    dockerfile = (IMAGE / "Dockerfile").read_text()
    user = re.findall(r"^USER (\S+)", dockerfile, flags=re.MULTILINE)

    assert re.search(r"apt-get install .*\bffmpeg\b.*\btini\b", dockerfile)
    assert user and user[-1] not in ("root", "0")
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in dockerfile


def test_the_build_context_keeps_what_the_image_needs_and_leaves_the_rest() -> None:
    ignored = {
        line.strip() for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line.strip()[:1] not in "#"
    }
    needed = {"farm", "schemas", "models", "pyproject.toml", "README.md", "infra"}

    assert needed.isdisjoint(ignored)
    assert {".git", ".venv", "tests"} <= ignored
    assert all(not line.startswith("!") for line in ignored)


# ---- shell scripts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("script", sorted(INFRA.rglob("*.sh")), ids=lambda path: str(path.relative_to(INFRA)))
def test_every_shell_script_parses(script: Path) -> None:
    parsed = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)

    assert parsed.returncode == 0, parsed.stderr
    assert os.access(script, os.X_OK), f"{script.name} is not executable"


def run_entrypoint(tmp_path: Path, **environment: str) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    """The entrypoint with stand-in ``ray`` and ``farm`` on PATH; returns the run and each command's argv."""
    bin_dir, record = tmp_path / "bin", tmp_path / "argv"
    bin_dir.mkdir()
    record.mkdir()
    for program in ("ray", "farm"):
        stub = bin_dir / program
        stub.write_text(f'#!/bin/sh\necho "$*" > "{record}/{program}"\n')
        stub.chmod(0o755)
    run = subprocess.run(
        ["bash", str(ENTRYPOINT)],
        env={"PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin", **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return run, {path.name: path.read_text().strip() for path in record.iterdir()}


def test_the_manager_entrypoint_joins_ray_then_serves_with_the_password_only_in_its_environment(
    tmp_path: Path,
) -> None:
    run, argv = run_entrypoint(
        tmp_path, FARM_RAY_ADDRESS="farm-head-svc:6379", FARM_DATABASE_URL="postgresql://farm:s3cret@db/farm"
    )

    assert run.returncode == 0, run.stderr
    assert argv["ray"].startswith("start --address farm-head-svc:6379 --num-cpus 0 --num-gpus 0")
    assert argv["farm"] == "serve --address farm-head-svc:6379 --listen 0.0.0.0:8765"
    assert "s3cret" not in " ".join(argv.values())


def test_the_manager_entrypoint_needs_no_raylet_for_ray_client(tmp_path: Path) -> None:
    run, argv = run_entrypoint(
        tmp_path, FARM_RAY_ADDRESS="ray://farm-head-svc:10001", FARM_DATABASE_URL="postgresql://farm@db/farm"
    )

    assert run.returncode == 0, run.stderr
    assert set(argv) == {"farm"}


def test_the_manager_entrypoint_refuses_to_start_without_a_database_url(tmp_path: Path) -> None:
    run, argv = run_entrypoint(tmp_path, FARM_RAY_ADDRESS="farm-head-svc:6379")

    assert run.returncode != 0
    assert "FARM_DATABASE_URL" in run.stderr
    assert argv == {}
