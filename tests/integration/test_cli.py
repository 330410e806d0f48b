"""The README's main job, small: ``lerna demo`` end to end in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.pgserver import free_port as _free_port


def test_demo_runs_rounds_and_writes_the_report(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    env = {**os.environ, "LERNA_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "lerna.cli", "demo", "--devices", "12", "--rounds", "2", "--report", str(report),
         "--no-serve", "--port", str(_free_port())],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    body = json.loads(report.read_text())
    assert body["dataset"] == "movielens-100k" and body["devices"] == 12
    assert [r["round"] for r in body["rounds"]] == [1, 2]
    assert [r["version"] for r in body["rounds"]] == [1, 2]
    for r in body["rounds"]:
        assert r["participants"] == 12 and r["dropouts"] == 0 and r["seconds"] > 0
        assert set(r["metrics"]) >= {"ndcg@10", "precision@10"}
    for name in ("federated", "popularity"):
        assert set(body["final"][name]) >= {"ndcg@10", "precision@10", "recall@10"}
        assert all(0.0 <= v <= 1.0 for v in body["final"][name].values())
    assert "Final model against baselines" in proc.stdout


def test_serve_rejects_unknown_part() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "lerna.cli", "serve", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown part" in proc.stdout + proc.stderr


def test_eval_writes_figures_for_every_baseline(tmp_path: Path) -> None:
    report = tmp_path / "eval.json"
    proc = subprocess.run(
        [sys.executable, "-m", "lerna.cli", "eval", "--devices", "60", "--rounds", "2",
         "--report", str(report)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    final = json.loads(report.read_text())["final"]
    assert set(final) == {"federated", "centralized", "popularity", "als", "bpr"}
    assert all(0 <= row["ndcg@10"] <= 1 for row in final.values())


def test_serve_with_several_workers_answers(tmp_path: Path) -> None:
    import signal
    import time

    import httpx

    port = _free_port()
    env = {**os.environ, "LERNA_DATA_DIR": str(tmp_path / "data")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lerna.cli", "serve", "fl-api", "--port", str(port), "--workers", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline, answers = time.monotonic() + 90, 0
        while time.monotonic() < deadline and answers < 4:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                answers += r.status_code == 200
            except httpx.HTTPError:
                time.sleep(0.3)
        assert answers == 4
        signup = httpx.post(
            f"http://127.0.0.1:{port}/api/auth/register",
            json={"email": "w@example.com", "password": "password-123", "name": "W"},
        )
        assert signup.status_code == 201, signup.text
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
