"""The link between an app's ML task and an engine of the recommendation service.

The FL-API keeps only this row; events, item properties and models live in the recommender's
own store. ``pseudonym_key`` is a per-link secret: the recommender sees each device under
``HMAC(key, device id)``, never the device's id, and a new link (a new key) unlinks the
pseudonyms an old engine may hold from the devices.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from lerna.server.models import Base, utcnow


class RecommenderLink(Base):
    __tablename__ = "recommender_links"
    app_id: Mapped[int] = mapped_column(ForeignKey("apps.id", ondelete="CASCADE"), primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("ml_tasks.id", ondelete="CASCADE"), index=True)
    engine_id: Mapped[str] = mapped_column(String(64))
    forward_events: Mapped[bool] = mapped_column(Boolean, default=False)
    pseudonym_key: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
