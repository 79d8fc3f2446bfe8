"""The deployment files hang together: docker-compose.yml, Dockerfile, nginx.

No container is started: these tests read the files the way Docker Compose and
nginx would and catch what would only fail at `docker compose up` (a dependency
on a missing service, an undeclared volume, a mount of a file that is not in the
repository, a setting `.env.example` does not document, an upload limit nginx
would refuse first, a configuration `nginx -t` rejects).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from functools import cache
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
NGINX_CONF = ROOT / "nginx" / "nginx.conf"
NGINX_TEST = ROOT / "nginx" / "test-config.sh"
ENV_EXAMPLE = ROOT / ".env.example"

EXPECTED_SERVICES = {"postgres", "redis", "migrate", "api", "nginx"}
DOSSIER_SUBCOMMANDS = {"serve", "migrate", "worker"}
MIB = 1024 * 1024


@cache
def compose() -> dict[str, Any]:
    # safe_load resolves the `<<: *app` merge keys the file uses.
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict), "docker-compose.yml is not a mapping"
    return document


def services() -> dict[str, dict[str, Any]]:
    return compose()["services"]


def app_services() -> dict[str, dict[str, Any]]:
    """The services that run the Dossier image (built from this repository)."""
    return {name: spec for name, spec in services().items() if "build" in spec}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    env = spec.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def depends_on(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deps = spec.get("depends_on") or {}
    if isinstance(deps, list):  # short form: plain service names
        return {name: {"condition": "service_started"} for name in deps}
    return {name: options or {} for name, options in deps.items()}


def volume_mounts(spec: dict[str, Any]) -> list[tuple[str, str]]:
    """(type, source) of each mount: `volume` for named volumes, `bind` for paths."""
    mounts = []
    for entry in spec.get("volumes") or []:
        if isinstance(entry, dict):
            mounts.append((entry.get("type", "volume"), str(entry.get("source", ""))))
            continue
        source, sep, _ = entry.partition(":")
        if not sep:  # an anonymous volume: only a container path
            continue
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        mounts.append((kind, source))
    return mounts


def dockerfile_instruction(name: str) -> list[str]:
    """The arguments of each `name` instruction of the Dockerfile (continuations joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    pattern = re.compile(rf"^\s*{name}\s+(.+)$", re.IGNORECASE | re.MULTILINE)
    return [match.group(1).strip() for match in pattern.finditer(text)]


def dockerfile_entrypoint() -> list[str]:
    entrypoints = dockerfile_instruction("ENTRYPOINT")
    assert entrypoints, "the Dockerfile has no ENTRYPOINT"
    value = entrypoints[-1]  # the last one wins
    return json.loads(value) if value.startswith("[") else shlex.split(value)


def argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def bytes_of(size: str) -> int:
    """An nginx size (`101m`, `512k`, `1g`, `1048576`) in bytes."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", size)
    assert match, f"not an nginx size: {size!r}"
    factor = {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[match.group(2).lower()]
    return int(match.group(1)) * factor


def interpolated_default(value: str) -> str:
    """`${NAME:-default}` -> `default`; any other value as it is."""
    match = re.fullmatch(r"\$\{\w+:?-([^}]*)\}", value)
    return match.group(1) if match else value


def test_expected_services_exist() -> None:
    missing = EXPECTED_SERVICES - services().keys()
    assert not missing, f"docker-compose.yml lacks services: {sorted(missing)}"


def test_depends_on_names_existing_services() -> None:
    for name, spec in services().items():
        unknown = depends_on(spec).keys() - services().keys()
        assert not unknown, f"{name} depends on unknown services {sorted(unknown)}"


def test_healthy_dependencies_have_healthchecks() -> None:
    # Compose refuses to start a service waiting for the health of one that has none.
    for name, spec in services().items():
        for dependency, options in depends_on(spec).items():
            if options.get("condition") == "service_healthy":
                assert "healthcheck" in services()[dependency], (
                    f"{name} waits for {dependency} to be healthy, which has no healthcheck"
                )


def test_api_starts_after_migrations_and_redis() -> None:
    deps = depends_on(services()["api"])
    assert deps["migrate"].get("condition") == "service_completed_successfully"
    assert deps["redis"].get("condition") == "service_healthy"
    assert depends_on(services()["migrate"])["postgres"].get("condition") == "service_healthy"
    assert depends_on(services()["nginx"])["api"].get("condition") == "service_healthy"


def test_named_volumes_are_declared() -> None:
    declared = set(compose().get("volumes") or {})
    for name, spec in services().items():
        for kind, source in volume_mounts(spec):
            if kind == "volume":
                assert source in declared, f"{name} uses undeclared volume {source!r}"


def test_bind_mounted_files_exist() -> None:
    for name, spec in services().items():
        for kind, source in volume_mounts(spec):
            if kind == "bind":
                assert (ROOT / source).exists(), f"{name} mounts {source}, which does not exist"


def test_build_context_has_the_dockerfile() -> None:
    for name, spec in app_services().items():
        build = spec["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = (
            "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        )
        assert (ROOT / context / dockerfile).is_file(), f"{name} builds from a missing Dockerfile"


def test_app_commands_run_dossier_subcommands() -> None:
    assert app_services(), "no service builds the Dossier image"
    for name, spec in app_services().items():
        # Compose runs `command` as the arguments of the entrypoint (the
        # Dockerfile's unless the service overrides it).
        entrypoint = argv(spec["entrypoint"]) if "entrypoint" in spec else dockerfile_entrypoint()
        command = entrypoint + argv(spec.get("command"))
        assert command[:1] == ["dossier"], f"{name} runs {command}, not `dossier`"
        assert len(command) > 1, f"{name} runs `dossier` without a subcommand"
        assert command[1] in DOSSIER_SUBCOMMANDS, f"{name} runs unknown `dossier {command[1]}`"


def test_app_settings_are_documented_in_env_example() -> None:
    if not ENV_EXAMPLE.exists():
        pytest.skip(".env.example does not exist yet")
    # `NAME=value`, or `# NAME=value` for settings with no default.
    documented = set(
        re.findall(r"^\s*(?:#\s*)?([A-Z][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), re.MULTILINE)
    )
    for name, spec in app_services().items():
        undocumented = environment(spec).keys() - documented
        assert not undocumented, f"{name} sets {sorted(undocumented)}, not in .env.example"


def test_trusted_proxies_cover_the_compose_network() -> None:
    # nginx gets its address from the compose network; the API must trust it.
    subnets = [
        ip_network(pool["subnet"])
        for pool in compose()["networks"]["default"]["ipam"]["config"]
        if "subnet" in pool
    ]
    assert subnets, "the default network has no fixed subnet for TRUSTED_PROXIES to name"
    for name, spec in app_services().items():
        trusted = [
            ip_network(item.strip(), strict=False)
            for item in environment(spec)["TRUSTED_PROXIES"].split(",")
            if item.strip()
        ]
        assert any(
            net.version == subnet.version and subnet.subnet_of(net)
            for subnet in subnets
            for net in trusted
        ), f"{name}: TRUSTED_PROXIES {trusted} does not cover the network {subnets}"


def test_nginx_accepts_the_largest_upload() -> None:
    sizes = re.findall(r"^\s*client_max_body_size\s+(\S+);", NGINX_CONF.read_text(), re.MULTILINE)
    assert sizes, "nginx.conf sets no client_max_body_size (nginx's default is 1m)"
    max_upload = max(
        int(interpolated_default(environment(spec).get("MAX_UPLOAD_BYTES", str(100 * MIB))))
        for spec in app_services().values()
    )
    assert max_upload >= 100 * MIB
    for size in sizes:
        assert bytes_of(size) >= max_upload, (
            f"client_max_body_size {size} is below MAX_UPLOAD_BYTES {max_upload}"
        )


def test_nginx_proxies_to_the_api_service() -> None:
    assert re.search(r"^\s*server\s+api:8000\b", NGINX_CONF.read_text(), re.MULTILINE)
    assert "8000" in argv(services()["api"]["command"])
    mounts = [str(entry) for entry in services()["nginx"].get("volumes") or []]
    assert any("nginx/nginx.conf" in m and "/etc/nginx/nginx.conf" in m for m in mounts)


def test_nginx_config_passes_nginx_t() -> None:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx), so `nginx -t` cannot run")
    result = subprocess.run(
        ["sh", str(NGINX_TEST), str(NGINX_CONF)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"nginx -t failed:\n{result.stdout}{result.stderr}"


def test_dockerfile_entrypoint_is_dossier() -> None:
    assert DOCKERFILE.is_file()
    assert dockerfile_entrypoint() == ["dossier"]
    assert any(line.startswith("python:3.11") for line in dockerfile_instruction("FROM"))


def test_dockerfile_copies_existing_files() -> None:
    for arguments in dockerfile_instruction("COPY"):
        parts = [part for part in shlex.split(arguments) if not part.startswith("--")]
        for source in parts[:-1]:  # the last one is the destination
            assert (ROOT / source).exists(), f"the Dockerfile copies missing {source}"


def test_dockerfile_drops_root() -> None:
    users = dockerfile_instruction("USER")
    assert users, "the Dockerfile never leaves root"
    assert users[-1].split(":")[0] not in {"root", "0"}
