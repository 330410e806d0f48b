"""The MPC service's Alembic migrations, on SQLite and PostgreSQL: they build exactly the ORM
schema under their own version table, adopt a database made by the pre-migration service without
losing its answered sets, and a downgrade that drops the running sums mid-round still leaves the
round answerable, exactly."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, inspect, text

from lerna.core.secagg import two_server
from lerna.core.secagg.tickets import issue_ticket
from lerna.mpc.app import create_app
from lerna.mpc.db import Base, make_engine
from lerna.mpc.migrate import VERSION_TABLE, downgrade, upgrade
from lerna.mpc.settings import MPCSettings

TICKET_KEY = "t" * 8 + "ticket-key-for-tests-only-0123456789"
API_TOKEN = "a" * 8 + "api-token-for-tests-only-0123456789"
MASTER = "m" * 8 + "master-key-for-tests-only-0123456789"
D = 64


def _settings(database_url: str, tmp_path: Path) -> MPCSettings:
    return MPCSettings(
        data_dir=tmp_path,
        database_url=database_url,
        master_key=SecretStr(MASTER),
        ticket_key=SecretStr(TICKET_KEY),
        api_token=SecretStr(API_TOKEN),
        threshold=2,
    )


def _seed(client: TestClient, device: str, round_id: str) -> bytes:
    t = issue_ticket(TICKET_KEY.encode(), device, round_id, int(time.time()), vector_length=D)
    r = client.post("/gateway/v1/seed", headers={"Authorization": f"Bearer {t}"})
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["seed"])


def _ask(client: TestClient, round_id: str, devices: list[str]) -> tuple[int, bytes]:
    r = client.post(
        f"/v1/rounds/{round_id}/mask-sum",
        json={"device_ids": devices, "vector_length": D},
        headers={"Authorization": f"Bearer {API_TOKEN}"},
    )
    return r.status_code, base64.b64decode(r.json().get("negated_mask_sum", ""))


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)  # applying again is a no-op
    with engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn,
            opts={
                "compare_type": True,
                "include_name": lambda name, type_, _p: (
                    type_ != "table" or name in Base.metadata.tables
                ),
                "version_table": VERSION_TABLE,
            },
        )
        assert compare_metadata(ctx, Base.metadata) == []
        assert ctx.get_current_revision() == "m0003"
        assert "alembic_version" not in inspect(conn).get_table_names()
    engine.dispose()


def test_a_database_from_before_migrations_is_adopted(database_url: str, tmp_path: Path) -> None:
    engine = make_engine(database_url)
    old = MetaData()  # the schema the service's create_all made before it had migrations
    issues = Table(
        "seed_issues",
        old,
        Column("round_id", String(128), primary_key=True),
        Column("device_id", String(128), primary_key=True),
        Column("issued_at", DateTime(timezone=True), nullable=False),
    )
    answered = Table(
        "answered_sets",
        old,
        Column("round_id", String(128), primary_key=True),
        Column("device_count", Integer, nullable=False),
        Column("devices_sha256", String(64), nullable=False),
        Column("answered_at", DateTime(timezone=True), nullable=False),
    )
    old.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            issues.insert(),
            [
                {"round_id": r, "device_id": d, "issued_at": now}
                for r, d in (("old:1", "dev-0"), ("old:2", "dev-0"), ("old:2", "dev-1"))
            ],
        )
        conn.execute(
            answered.insert(),
            {
                "round_id": "old:1",
                "device_count": 5,
                "devices_sha256": "0" * 64,
                "answered_at": now,
            },
        )
    engine.dispose()
    app = create_app(_settings(database_url, tmp_path))
    with TestClient(app) as client:
        status, _ = _ask(client, "old:1", ["dev-0", "dev-1"])
        assert status == 409, "the answered set survived the adoption"
        status, answer = _ask(client, "old:2", ["dev-0", "dev-1"])  # an old open round
        assert status == 200
        master = MASTER.encode()
        seeds = [two_server.device_seed(master, "old:2", d) for d in ("dev-0", "dev-1")]
        np.testing.assert_array_equal(
            np.frombuffer(answer, dtype="<u4"), two_server.negated_mask_sum(seeds, D)
        )
    with app.state.engine.connect() as conn:
        version = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
    assert version == "m0003"
    app.state.engine.dispose()


def test_downgrade_and_upgrade_mid_round_keep_the_sum_exact(
    database_url: str, tmp_path: Path
) -> None:
    settings = _settings(database_url, tmp_path)
    app = create_app(settings)
    zero = np.zeros(D, dtype=np.uint32)
    with TestClient(app) as client:
        masked = {d: two_server.mask_update(_seed(client, d, "r:1"), zero, D) for d in "abc"}
    downgrade(app.state.engine, "m0002")  # the stored running sums of the previous version
    assert "running_mask_sums" in inspect(app.state.engine).get_table_names()
    downgrade(app.state.engine, "m0001")
    assert "running_mask_sums" not in inspect(app.state.engine).get_table_names()
    upgrade(app.state.engine)
    assert "running_mask_sums" not in inspect(app.state.engine).get_table_names()
    app.state.engine.dispose()
    app = create_app(settings)
    with TestClient(app) as client:
        masked["d"] = two_server.mask_update(_seed(client, "d", "r:1"), zero, D)
        status, answer = _ask(client, "r:1", ["a", "c", "d"])
    assert status == 200
    total = np.frombuffer(answer, dtype="<u4").astype(np.uint32)
    for d in "acd":
        total += masked[d]
    assert not total.any()
    app.state.engine.dispose()
