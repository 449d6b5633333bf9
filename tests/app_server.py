"""Start the real app (`python app.py`) on a free loopback port for the browser and API tests.

with running_app(built_settings, tmp_path) as app:
    page.goto(app.url)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from assistant.config import Settings

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT = 120.0


@dataclass
class AppServer:
    url: str
    feedback_db: Path
    log: Path
    process: subprocess.Popen[bytes]

    def log_text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_ingest(settings: Settings, *flags: str) -> subprocess.CompletedProcess[str]:
    """`python ingest.py` as a user runs it, with ``settings`` (and nothing from the shell)."""
    return subprocess.run(
        [sys.executable, "ingest.py", *flags],
        cwd=REPO,
        env=settings.environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@contextmanager
def running_app(
    settings: Settings, workdir: Path, *, extra_env: dict[str, str] | None = None
) -> Iterator[AppServer]:
    """The app in a subprocess with its own data dir and feedback database; stopped on exit."""
    port = free_port()
    data_dir = workdir / "data"
    feedback_db = workdir / "feedback.sqlite3"
    env = {
        **settings.environment(),
        "ASSISTANT_AUTH": "",  # no login unless a test asks for one (a .env may set it)
        "ASSISTANT_HOST": "127.0.0.1",
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_FEEDBACK_DB": str(feedback_db),
        **(extra_env or {}),
    }
    log = workdir / "app.log"
    with log.open("wb") as out:
        # run from the work dir: a developer's .env in the repo must not reach this app
        process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py")],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = AppServer(f"http://127.0.0.1:{port}/", feedback_db, log, process)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _wait_until_serving(server: AppServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"app.py exited with {server.process.returncode}:\n{server.log_text()}"
            )
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200 and "Plan Guide is running" in server.log_text():
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(
        f"app.py did not serve {server.url} in {START_TIMEOUT:.0f} s:\n{server.log_text()}"
    )
