"""The shared Alembic runner on SQLite: a service's version table and nothing else, and with
``sqlite_one_transaction`` an upgrade that dies midway leaves no table behind, on an engine that
leaves transactions to pysqlite and on one that begins its own (with the writer lock)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text

from lerna.storage import migrations
from lerna.storage.sqlite import SQLiteSetup, sqlite_engine
from lerna.storage.writer_lock import lock_for

ENV = """
from sqlalchemy import MetaData
from lerna.storage.migrations import run_migrations

run_migrations(
    MetaData(),
    version_table="t_version",
    owns_table=lambda name: name.startswith("t_"),
    sqlite_one_transaction=True,
)
"""

REVISION = """
import sqlalchemy as sa
from alembic import op

revision = "t0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("t_one", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table("t_two", sa.Column("id", sa.Integer, primary_key=True))
    assert sa.inspect(op.get_bind()).has_table("t_two")
    if {fail}:
        raise RuntimeError("killed mid-migration")


def downgrade() -> None:
    op.drop_table("t_two")
    op.drop_table("t_one")
"""

SETUPS = {
    "pysqlite transactions": SQLiteSetup(busy_seconds=1.0, begin="driver"),
    "own BEGIN IMMEDIATE and writer lock": SQLiteSetup(busy_seconds=1.0, writer_lock=True),
}


def _scripts(tmp_path: Path, fail: bool) -> Path:
    scripts = tmp_path / "scripts"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(ENV)
    (scripts / "versions" / "t0001.py").write_text(REVISION.format(fail=fail))
    return scripts


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
def test_an_upgrade_that_dies_midway_leaves_no_table(tmp_path: Path, setup: SQLiteSetup) -> None:
    path = tmp_path / "m.db"
    engine = sqlite_engine(f"sqlite:///{path}", setup)
    with pytest.raises(RuntimeError, match="killed mid-migration"):
        migrations.upgrade(engine, _scripts(tmp_path, fail=True))
    assert _tables(engine) == set()
    assert not lock_for(str(path)).locked()
    engine.dispose()


@pytest.mark.parametrize("setup", SETUPS.values(), ids=SETUPS.keys())
def test_an_upgrade_stamps_the_service_version_table_and_gives_the_connection_back(
    tmp_path: Path, setup: SQLiteSetup
) -> None:
    path = tmp_path / "m.db"
    engine = sqlite_engine(f"sqlite:///{path}", setup)
    scripts = _scripts(tmp_path, fail=False)
    migrations.upgrade(engine, scripts)
    migrations.upgrade(engine, scripts)  # at head already: nothing to do
    assert _tables(engine) == {"t_one", "t_two", "t_version"}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM t_version")).scalar_one() == "t0001"
        # the pooled connection is back in the transaction mode its engine gave it
        raw = conn.connection.dbapi_connection
        assert raw is not None
        assert raw.isolation_level == ("" if setup.begin == "driver" else None)
    assert not lock_for(str(path)).locked()
    migrations.downgrade(engine, scripts, "base")
    assert _tables(engine) == {"t_version"}
    engine.dispose()
