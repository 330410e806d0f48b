"""The dashboard in a real browser against a real server and a real simulated fleet.

Runs ``node --test dashboard/e2e/`` (playwright-core driving Debian's ``/usr/bin/chromium``), then
checks from the outside what the browser did: the weights file it downloaded loads as the
project's archive format, the device it blacklisted is refused, the webhook reached the receiver.
Screenshots of every page are left in the artifacts folder (printed at the end).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest

from lerna.core.weights import load_archive
from lerna.server.spa import DASHBOARD_DIST

from .conftest import Receiver

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "dashboard"
CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))


def _missing() -> str | None:
    if not (DASHBOARD_DIST / "index.html").is_file():
        return "the dashboard is not built (bash scripts/dashboard.sh)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (DASHBOARD / "node_modules" / "playwright-core").is_dir():
        return "dashboard dependencies are not installed (bash scripts/dashboard.sh)"
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


@pytest.mark.slow
def test_dashboard_end_to_end(live_server: str, webhook_receiver: Receiver, tmp_path: Path) -> None:
    reason = _missing()
    if reason:
        if os.environ.get("CI") or os.environ.get("LERNA_E2E_REQUIRED"):
            pytest.fail(f"browser tests cannot run: {reason}")
        pytest.skip(reason)
    artifacts = Path(os.environ.get("LERNA_E2E_ARTIFACTS", tmp_path / "artifacts"))
    env = {
        **os.environ,
        "E2E_BASE_URL": live_server,
        "E2E_ARTIFACTS": str(artifacts),
        "E2E_PYTHON": sys.executable,
        "E2E_FLEET_SCRIPT": str(Path(__file__).with_name("fleet_for_app.py")),
        "E2E_WEBHOOK_URL": webhook_receiver.url,
        "CHROMIUM_PATH": str(CHROMIUM),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        ["node", "--test", "--test-reporter=spec", "--test-concurrency=1", "e2e/"],
        cwd=DASHBOARD,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(f"screenshots and downloads: {artifacts}")
    assert proc.returncode == 0, proc.stdout[-8000:] + proc.stderr[-4000:]

    result = json.loads((artifacts / "result.json").read_text())
    manifest, arrays = load_archive(Path(result["weights"]).read_bytes())
    assert manifest.kind == "model" and manifest.version == 1  # the browser exported v1
    assert arrays and all(np.all(np.isfinite(a)) for a in arrays.values())
    with np.load(result["weights"], allow_pickle=False) as npz:
        assert npz.files

    with httpx.Client(base_url=live_server, timeout=30) as http:
        login = http.post(
            "/api/auth/login", json={"email": result["email"], "password": result["password"]}
        )
        headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
        found = http.get(
            f"/api/apps/{result['appId']}/devices",
            params={"q": result["blacklisted"]},
            headers=headers,
        ).json()
        device = next(d for d in found if d["device_uid"] == result["blacklisted"])
        assert device["block_training"] and device["block_predictions"]
        profile = http.get("/api/me", headers=headers).json()
        assert profile["position"] == "Head of mobile"

    if result.get("webhook") != "off":
        assert result["webhook"].startswith("Delivered")
        assert any(b"test" in body for body in webhook_receiver.bodies)
