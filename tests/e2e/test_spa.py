"""lerna.server.spa: the built dashboard at / with history-mode fallback, never in the API's way."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lerna.server.spa import mount_spa

INDEX = "<!doctype html><div id=app></div>"


@pytest.fixture
def client(tmp_path: Path) -> TestClient:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log(1)")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside dist")

    app = FastAPI()

    @app.get("/api/apps")
    def apps() -> list[int]:
        return [1]

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    mount_spa(app, dist)
    # Mounted after the SPA, as `lerna serve all` mounts the recommender: it must still answer.
    sub = FastAPI()

    @sub.get("/engines")
    def engines() -> list[str]:
        return ["e1"]

    app.mount("/recommender", sub)
    return TestClient(app)


def test_page_paths_get_index_html_for_the_router(client: TestClient) -> None:
    for path in ("/", "/apps", "/apps/3/models", "/login?next=/apps"):
        r = client.get(path)
        assert r.status_code == 200 and r.text == INDEX, path
        assert r.headers["cache-control"] == "no-cache"


def test_built_files_are_served_and_fingerprinted_assets_cached(client: TestClient) -> None:
    r = client.get("/assets/index-abc123.js")
    assert r.status_code == 200 and r.text == "console.log(1)"
    assert "immutable" in r.headers["cache-control"]
    assert client.get("/favicon.svg").headers["cache-control"] == "no-cache"


def test_a_missing_asset_is_a_404_not_html(client: TestClient) -> None:
    r = client.get("/assets/index-old.js")
    assert r.status_code == 404 and "html" not in r.headers["content-type"]


def test_api_and_ops_paths_are_never_shadowed(client: TestClient) -> None:
    assert client.get("/api/apps").json() == [1]
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/recommender/engines").json() == ["e1"]
    for path in ("/api/nope", "/v1/device/nope", "/openapi.json.bak", "/metrics"):
        r = client.get(path)
        assert r.status_code == 404 and r.text != INDEX, path
    assert client.post("/apps").status_code in (404, 405)  # only GET/HEAD get the page


def test_paths_cannot_escape_the_build_folder(client: TestClient) -> None:
    for path in ("/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt"):
        assert "outside dist" not in client.get(path).text, path


def test_refuses_a_folder_without_a_build(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"dashboard\.sh"):
        mount_spa(FastAPI(), tmp_path)
