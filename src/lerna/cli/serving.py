"""Running servers in-process: one uvicorn per part, or everything on one port (embedded)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Literal

import httpx
from fastapi import FastAPI

from lerna.server.app import create_app as create_fl_api
from lerna.server.settings import Settings

Part = Literal["all", "fl-api", "mpc", "recommender"]
PARTS: tuple[str, ...] = ("all", "fl-api", "mpc", "recommender")


def build_app(part: str, settings: Settings | None = None) -> FastAPI:
    """The ASGI app of one part; ``all`` is the FL-API with the other parts mounted under it."""
    if part == "fl-api":
        return create_fl_api(settings)
    if part == "recommender":
        from lerna.recommender.app import RecommenderSettings, create_app

        return create_app(RecommenderSettings())
    if part == "mpc":
        from lerna.mpc.app import create_app as create_mpc
        from lerna.mpc.settings import MPCSettings

        return create_mpc(MPCSettings())
    if part == "all":
        app = create_fl_api(settings)
        _mount_optional(app)
        _mount_mpc(app)
        return app
    raise ValueError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")


def app_from_env() -> FastAPI:
    """uvicorn factory for ``lerna serve --workers N``: the part comes from LERNA_SERVE_PART."""
    return build_app(os.environ.get("LERNA_SERVE_PART", "all"))


def _mount_optional(app: FastAPI) -> None:
    try:
        from lerna.recommender.app import RecommenderSettings, create_app
    except ImportError:
        return
    recommender = create_app(RecommenderSettings())
    app.mount("/recommender", recommender)
    # the FL-API's recommendations router calls it in-process, without a network hop
    app.state.recommender_transport = httpx.ASGITransport(app=recommender)


def _mount_mpc(app: FastAPI) -> None:
    """Embedded two-server mode: the MPC service at /mpc, with the secrets the FL-API holds
    (generated into the data dir), reached in-process. A deployment that names its own MPC
    service (LERNA_MPC_URL) gets no mount."""
    from lerna.mpc.app import create_app as create_mpc
    from lerna.mpc.settings import MPCSettings
    from lerna.server.services.mpc_client import SyncASGITransport

    settings: Settings = app.state.settings
    link = app.state.mpc_link
    if link is None or link.available or not settings.is_embedded:
        return
    mpc = create_mpc(
        MPCSettings(
            data_dir=settings.data_dir,
            master_key=settings.embedded_mpc_master_key(),
            ticket_key=link.ticket_key.decode(),
            api_token=link.token,
        )
    )
    app.mount("/mpc", mpc)
    link.attach(SyncASGITransport(mpc))


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``lerna serve`` as a child process: the demo's fleet and the server then each have a
    core (and a GIL) of their own, as devices and servers do in production."""

    def __init__(self, part: str, host: str, port: int, log: Path) -> None:
        self.cmd = [
            sys.executable,
            "-m",
            "lerna.cli",
            "serve",
            part,
            "--host",
            host,
            "--port",
            str(port),
        ]
        self.url = f"http://{host}:{port}"
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> ServerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not become healthy")

    def cpu_seconds(self) -> float | None:
        """CPU time the server has used so far (Linux ``/proc``; None elsewhere). Unlike wall
        time it does not grow when other work shares the machine."""
        if self.proc is None:
            return None
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
