"""Fixtures: a real app called through httpx's ASGITransport, on a temporary SQLite file and on
a throwaway PostgreSQL database (``database_url`` from tests/conftest.py; PostgreSQL runs are
marked ``postgres`` and skipped where no server is installed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lerna.recommender.app import create_app
from lerna.recommender.settings import RecommenderSettings

from .helpers import Harness, SyncClient, buy_events


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> RecommenderSettings:
    return RecommenderSettings(
        data_dir=tmp_path, database_url=database_url, admin_tokens=[], client_tokens={}
    )


@pytest.fixture
def client(settings: RecommenderSettings) -> Iterator[SyncClient]:
    c = SyncClient(create_app(settings))
    yield c
    c.close()


@pytest.fixture
def harness(client: SyncClient) -> Harness:
    return Harness(client)


@pytest.fixture
def shop(harness: Harness) -> Harness:
    """Engine ``shop`` trained on the hand-checked purchases."""
    harness.create(num=10)
    harness.send(buy_events())
    harness.train()
    return harness
