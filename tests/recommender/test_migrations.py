"""The recommender store's migrations on SQLite are one transaction: an upgrade that dies part
way leaves no half-made schema behind, and the next start migrates cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.operations import Operations
from sqlalchemy import create_engine, inspect

from lerna.recommender.db import make_engine


def test_an_upgrade_that_fails_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'rec.db'}"
    real_create_table = Operations.create_table
    made: list[str] = []

    def dies_after_two_tables(self: Operations, name: str, *args: object, **kw: object) -> object:
        if len(made) == 2:
            raise RuntimeError("killed mid-migration")
        made.append(name)
        return real_create_table(self, name, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Operations, "create_table", dies_after_two_tables)
    with pytest.raises(RuntimeError, match="killed mid-migration"):
        make_engine(url)
    assert len(made) == 2  # two tables were created before the failure...
    plain = create_engine(url)
    assert [
        t for t in inspect(plain).get_table_names() if t.startswith("rec")
    ] == []  # ...and undone
    plain.dispose()
    monkeypatch.undo()
    engine = make_engine(url)  # the next start migrates from scratch
    tables = set(inspect(engine).get_table_names())
    assert {"rec_engines", "rec_events", "recommender_alembic_version"} <= tables
    engine.dispose()
