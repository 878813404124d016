"""The production compose file: its services, probes and start order, and that every
knob it or the settings read is documented in docs/deploy.md. No docker needed."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
SETTINGS_DIR = ROOT / "webapp" / "settings"

LONG_RUNNING = ("postgres", "redis", "web", "worker", "beat", "tgi", "tgi-2", "llamacpp", "proxy")
ONE_SHOTS = ("migrate",)
APP_SERVICES = ("web", "worker", "beat")
MODEL_SERVERS = {"tgi": 80, "tgi-2": 80, "llamacpp": 8080}

# env("NAME", env.bool("NAME", env.int(... env.db(... env.email(...: every read of a variable.
SETTINGS_READ = re.compile(
    r"\benv(?:\.(?:str|bool|int|float|list|tuple|dict|json|url|db|db_url|email|email_url"
    r"|cache|cache_url|search_url|path))?\(\s*[\"']([A-Za-z_][A-Za-z0-9_]*)[\"']"
)
# ${NAME}, ${NAME:-default}, ${NAME:?message}; "$$" is a literal dollar sign.
COMPOSE_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def doc() -> str:
    return DEPLOY_DOC.read_text()


def strings_in(node: Any) -> list[str]:
    """Every string in the parsed file, keys included (comments are not in it)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in [*strings_in(key), *strings_in(value)]]
    if isinstance(node, list):
        return [s for item in node for s in strings_in(item)]
    return [node] if isinstance(node, str) else []


def healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def undocumented(names: set[str], doc: str) -> list[str]:
    return sorted(name for name in names if f"`{name}`" not in doc)


def test_every_production_service_is_defined(services):
    for name in ("postgres", "redis", "migrate", "web", "worker", "beat", "tgi", "llamacpp"):
        assert name in services, name


def test_the_model_servers_run_only_under_their_profiles(services):
    assert services["tgi"]["profiles"] == ["gpu"]
    assert services["llamacpp"]["profiles"] == ["cpu"]
    assert "profiles" in services["tgi-2"]
    for name in ("postgres", "redis", "migrate", "web", "worker", "beat"):
        assert "profiles" not in services[name], f"{name} must start without a profile"


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOTS:
            continue
        assert name in LONG_RUNNING, f"{name}: new service, say whether it is long-running"
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
        assert service.get("restart") == "unless-stopped", name


def test_one_shot_services_are_not_restarted(services):
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no"


def test_the_postgres_and_redis_healthchecks_ask_the_servers_themselves(services):
    assert "pg_isready" in healthcheck_text(services["postgres"])
    assert "redis-cli ping" in healthcheck_text(services["redis"])


def test_web_is_healthy_when_it_answers_healthz(services):
    assert "/healthz" in healthcheck_text(services["web"])


def test_tgi_probes_its_health_endpoint_on_port_80(services):
    for name in ("tgi", "tgi-2"):
        assert "http://localhost:80/health" in healthcheck_text(services[name])


def test_the_cpu_model_server_probes_its_health_endpoint(services):
    assert "http://localhost:8080/health" in healthcheck_text(services["llamacpp"])


def test_every_tgi_replica_reserves_its_own_nvidia_gpu(services):
    gpus = []
    for name in ("tgi", "tgi-2"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia"
        assert "gpu" in device["capabilities"]
        gpus.append(tuple(device["device_ids"]))
        assert services[name]["shm_size"] == "1g"
        assert services[name]["image"].startswith(
            "ghcr.io/huggingface/text-generation-inference:${TGI_VERSION:-"
        )
        assert "--model-id" in services[name]["command"]
    assert len(set(gpus)) == len(gpus), "two replicas on one GPU"


def test_the_app_waits_for_healthy_databases_and_finished_migrations(services):
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_migrate_applies_migrations_then_loads_the_mounted_models_file(services):
    command = " ".join(services["migrate"]["command"])
    assert command.index("manage.py migrate") < command.index("manage.py load_models")
    assert "load_models /app/deploy/models.yaml" in command
    assert any(
        volume.endswith(":/app/deploy/models.yaml:ro") for volume in services["migrate"]["volumes"]
    )


def test_web_worker_and_beat_run_the_documented_commands(services):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uvicorn" in dockerfile and "webapp.asgi:application" in dockerfile
    worker = services["worker"]["command"]
    assert worker[:4] == ["celery", "-A", "webapp", "worker"]
    assert worker[worker.index("-P") + 1] == "threads"
    assert services["beat"]["command"][:4] == ["celery", "-A", "webapp", "beat"]


def test_the_worker_consumes_the_queue_that_tasks_are_sent_to(services):
    from django.conf import settings

    worker = services["worker"]["command"]
    assert worker[worker.index("-Q") + 1] == settings.CELERY_TASK_DEFAULT_QUEUE


def test_the_app_runs_production_settings_as_a_non_root_user(compose):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "DJANGO_SETTINGS_MODULE=webapp.settings.production" in dockerfile
    user = re.findall(r"^USER\s+(\S+)", dockerfile, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    assert compose["x-app-env"]["DJANGO_SETTINGS_MODULE"] == "webapp.settings.production"


def test_required_secrets_stop_compose_with_a_message_when_unset():
    text = COMPOSE_FILE.read_text()
    for name in ("SECRET_KEY", "POSTGRES_PASSWORD", "ALLOWED_HOSTS"):
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), name
        assert not re.search(r"\$\{" + name + r":-", text), f"{name} must have no default"


def test_every_dollar_sign_is_a_variable_or_escaped():
    # A bare $NAME would be filled in by compose (usually with nothing); a shell
    # variable inside a container command must be written $$NAME.
    for line in COMPOSE_FILE.read_text().splitlines():
        code = line.split(" #", 1)[0] if not line.lstrip().startswith("#") else ""
        assert not re.search(r"\$(?![{$])", code.replace("$$", "")), line


def test_every_compose_variable_is_documented(compose, doc):
    names = {m for s in strings_in(compose) for m in COMPOSE_VARIABLE.findall(s.replace("$$", ""))}
    assert "TGI_MODEL_ID" in names  # the pattern finds them
    assert not undocumented(names, doc)


def test_every_variable_passed_into_a_container_is_documented(services, doc):
    names = set()
    for service in services.values():
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), "use the mapping form"
        names |= set(environment)
    assert not undocumented(names, doc)


def test_every_variable_the_settings_read_is_documented(doc):
    names = set()
    for path in SETTINGS_DIR.glob("*.py"):
        names |= set(SETTINGS_READ.findall(path.read_text()))
    assert {"SECRET_KEY", "DATABASE_URL", "EMAIL_URL", "GENERATION_LOG_TTL"} <= names
    assert not undocumented(names, doc)


def test_every_setting_that_compose_passes_through_is_read_by_the_settings(compose):
    read = set()
    for path in SETTINGS_DIR.glob("*.py"):
        read |= set(SETTINGS_READ.findall(path.read_text()))
    # TRUSTED_PROXIES is read by the image's uvicorn command, not by Django.
    passed = set(compose["x-app-env"]) - {"DJANGO_SETTINGS_MODULE", "TRUSTED_PROXIES"}
    assert passed <= read, sorted(passed - read)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["models.example.yaml", "models.cpu.example.yaml"])
def test_the_example_models_files_are_valid_and_point_at_compose_services(name, services):
    from webapp.catalog.services import _plan

    data = yaml.safe_load((ROOT / "deploy" / name).read_text())
    assert data["models"]
    slugs: set[str] = set()
    for spec in data["models"]:
        for endpoint in _plan(spec, slugs).endpoints:  # raises on any invalid field
            url = endpoint.url
            match = re.match(r"https?://([^:/]+):(\d+)", url)
            assert match, url
            host, port = match[1], int(match[2])
            assert host in services and MODEL_SERVERS[host] == port, url


def test_the_default_models_file_exists(services):
    (volume,) = services["migrate"]["volumes"]
    default = re.match(r"\$\{MODELS_FILE:-([^}]+)\}", volume)
    assert default and (ROOT / default[1]).is_file()


def load_healthcheck_module() -> Any:
    spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("allowed_hosts", "host"),
    [
        ("chat.example.org,localhost", "chat.example.org"),
        (" .example.org ", "example.org"),
        ("*", "localhost"),
        ("*,chat.example.org", "chat.example.org"),
        ("", "localhost"),
    ],
)
def test_the_web_healthcheck_sends_a_host_that_django_allows(allowed_hosts, host):
    assert load_healthcheck_module().allowed_host(allowed_hosts) == host


def test_the_beat_healthcheck_fails_without_a_recent_schedule(tmp_path, monkeypatch):
    module = load_healthcheck_module()
    monkeypatch.setattr(module, "BEAT_SCHEDULE", str(tmp_path / "celerybeat-schedule"))
    assert not module.check_beat(600)
    (tmp_path / "celerybeat-schedule.db").write_bytes(b"")
    assert module.check_beat(600)
    assert not module.check_beat(-1)
