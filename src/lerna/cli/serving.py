"""Running servers in-process: one uvicorn per part, or everything on one port (embedded)."""

from __future__ import annotations

import socket
import threading
import time
from typing import Literal

import httpx
import uvicorn
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
        from lerna.mpc.app import MPCSettings
        from lerna.mpc.app import create_app as create_mpc

        return create_mpc(MPCSettings())
    if part == "all":
        app = create_fl_api(settings)
        _mount_optional(app)
        return app
    raise ValueError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")


def _mount_optional(app: FastAPI) -> None:
    try:
        from lerna.recommender.app import RecommenderSettings, create_app
    except ImportError:
        return
    recommender = create_app(RecommenderSettings())
    app.mount("/recommender", recommender)
    # the FL-API's recommendations router calls it in-process, without a network hop
    app.state.recommender_transport = httpx.ASGITransport(app=recommender)


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


class BackgroundServer:
    """uvicorn in a thread, for the demo: started and stopped from the same process."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = uvicorn.Server(
            uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
        )
        self.thread = threading.Thread(target=self.server.run, name="lerna-server", daemon=True)
        self.url = f"http://{host}:{port}"

    def start(self, timeout: float = 30.0) -> BackgroundServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
