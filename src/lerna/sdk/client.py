"""``LernaClient``: the facade a host app uses.

Lifecycle: ``start()`` enrolls once (the credential is kept in the local store), fetches
remote switches, the task and its catalog, and the current model. The app then feeds events
(``capture``) and asks for rankings (``top_n``); ``train_round()`` takes part in a federated
round when the device's conditions allow. Everything the user did stays in the local store.
"""

from __future__ import annotations

import io
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import httpx
import numpy as np
from pydantic import ValidationError

from lerna.core.features import (
    FeatureError,
    FeatureSchema,
    ItemCatalog,
    MetadataValue,
    encode_context,
)
from lerna.core.models import Model, ModelSpec, create_model
from lerna.core.protocol import TaskPublic, Telemetry, UploadMeta
from lerna.core.secure_update import contribution
from lerna.core.weights import (
    Manifest,
    WeightsFormatError,
    dump_archive,
    flatten,
    layout_of,
)
from lerna.sdk import recommendations, shared, two_server
from lerna.sdk.api import DeviceAPI
from lerna.sdk.errors import ConsentError, InputError, LernaSDKError, ProtocolError
from lerna.sdk.secure import SecureRound
from lerna.sdk.store import Event, LocalStore
from lerna.sdk.trainer import evaluate, split_events, to_examples, training_hyper

MAX_CANDIDATES = 100_000


@dataclass
class TrainingConditions:
    """When the device may train, as the original SDK did: enough sessions, unmetered network, battery."""

    min_events: int = 1
    require_unmetered: bool = False
    min_battery: float = 0.0
    holdout_fraction: float = 0.2
    relevance_min_value: float | None = None  # held-out successes below this value are not hits


@dataclass
class DeviceState:
    unmetered: bool = True
    battery: float = 1.0


OutcomeStatus = Literal[
    "uploaded",
    "waiting",
    "skipped",
    "already_uploaded",
    "in_progress",
    "completed",
    "failed",
    "dropped",
]


@dataclass(frozen=True)
class RoundOutcome:
    status: Literal[
        "uploaded",
        "waiting",
        "skipped",
        "already_uploaded",
        "in_progress",
        "completed",
        "failed",
        "dropped",
    ]
    round_id: int | None = None
    version: int | None = None
    num_examples: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""


class LernaClient:
    def __init__(
        self,
        app_token: str,
        storage_dir: str | Path,
        server_url: str | None = None,
        *,
        http: httpx.Client | None = None,
        task: str | None = None,
        device_uid: str | None = None,
        conditions: TrainingConditions | None = None,
        seed: int | None = None,
    ) -> None:
        if http is None and server_url is None:
            raise InputError("give server_url or an httpx.Client")
        self.app_token = app_token
        self.store = LocalStore(Path(storage_dir))
        self.api = DeviceAPI(http or httpx.Client(base_url=server_url or "", timeout=60.0))
        self.task_name = task
        self.device_uid = device_uid or self.store.get("device_uid") or uuid.uuid4().hex
        self.conditions = conditions or TrainingConditions()
        self.device_state = DeviceState()
        self.rng = np.random.default_rng(seed)
        self.custom_context: list[float] = []
        self.candidates: dict[str, Mapping[str, MetadataValue]] = {}
        self.task: TaskPublic | None = None
        self.schema = FeatureSchema()
        self.catalog = ItemCatalog((), np.zeros((0, 0), np.float32))
        self.index: dict[str, int] = {}
        self.model: Model | None = None
        self.version = -1
        self.training_enabled = True
        self.predictions_enabled = True
        self._shown: dict[str, int] = {}
        self._pending = {"predictions": 0, "successes": 0}
        self._secure: SecureRound | None = None
        self._pending_outcome = RoundOutcome("in_progress")

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> LernaClient:
        credential = self.store.get("credential")
        if credential is None:
            enrolled = self.api.enroll(self.app_token, self.device_uid)
            credential = enrolled.credential
            self.store.put(
                credential=credential, device_uid=self.device_uid, device_id=enrolled.device_id
            )
        self.api.credential = credential
        self.refresh_config()
        tasks = self.api.tasks()
        chosen = [t for t in tasks if self.task_name in (None, t.name)]
        if not chosen:
            raise ProtocolError(f"the app has no ML task named {self.task_name!r}", "no_task")
        self.task = chosen[0]
        self.schema = self.task.feature_schema
        try:
            self.catalog = shared.catalog(self.schema.items, self.api.catalog_body(self.task.id))
        except (ValidationError, FeatureError) as exc:
            raise ProtocolError(f"catalog refused: {exc}", "bad_catalog") from None
        self.index = self.catalog.index_of()
        spec = ModelSpec(self.schema.context_size, self.schema.items.size, len(self.catalog))
        hyper = training_hyper(self.task.model_type, self.task.hyper, self.task.privacy)
        self.model = create_model(self.task.model_type, spec, hyper, seed=0)
        self._restore_personal_state()
        self._load_cached_model()
        self._sync_to(self.task.current_version)  # the task list just said which is current
        return self

    def stop(self) -> None:
        """Close pending predictions as failures and send the counters."""
        self._shown.clear()
        self.flush_telemetry()
        self.store.close()

    def refresh_config(self) -> None:
        config = self.api.config()
        self.training_enabled, self.predictions_enabled = (
            config.training_enabled,
            config.predictions_enabled,
        )

    # --- host-app inputs -------------------------------------------------------------------
    def set_user_id(self, user_id: str) -> None:
        previous = self.store.get("user_id")
        if previous is not None and previous != user_id:
            self._forget_user()
        self.store.put(user_id=user_id)

    def set_context(self, values: Sequence[float]) -> None:
        """The app's custom context features, in the order of the task's schema."""
        vals = [float(v) for v in values]
        if len(vals) != len(self.schema.context_custom) or not all(math.isfinite(v) for v in vals):
            raise InputError(
                f"expected {len(self.schema.context_custom)} finite custom features {self.schema.context_custom}"
            )
        self.custom_context = vals

    def set_device_state(
        self, *, unmetered: bool | None = None, battery: float | None = None
    ) -> None:
        if unmetered is not None:
            self.device_state.unmetered = unmetered
        if battery is not None:
            if not 0.0 <= battery <= 1.0:
                raise InputError("battery must be between 0 and 1")
            self.device_state.battery = battery

    def add_items(self, items: Mapping[str, Mapping[str, MetadataValue]]) -> None:
        """Candidate items for ranking, with their metadata (validated against the schema now)."""
        if len(self.candidates) + len(items) > MAX_CANDIDATES:
            raise InputError(f"at most {MAX_CANDIDATES} candidate items")
        for item_id, meta in items.items():
            try:
                self.schema.items.encode(meta)
            except FeatureError as exc:
                raise InputError(f"item {item_id!r}: {exc}") from None
        self.candidates.update(items)

    def set_consent(self, enabled: bool) -> None:
        """Consent to on-device training; withdrawing it deletes the user's events and personal state."""
        self.store.put(consent=enabled)
        if not enabled:
            self._forget_user()

    @property
    def consent(self) -> bool:
        return bool(self.store.get("consent", True))

    # --- inference -------------------------------------------------------------------------
    def _context(self, when: datetime | None) -> np.ndarray:
        try:
            return encode_context(self.schema, when or datetime.now(UTC), self.custom_context)
        except FeatureError as exc:
            raise InputError(str(exc)) from None

    def top_n(
        self,
        n: int = 10,
        *,
        when: datetime | None = None,
        exclude_seen: bool = True,
        candidates: Literal["app", "server", "catalog"] = "app",
    ) -> list[str]:
        """The n best items for this user now, among the app's candidates (the catalog when it
        gave none), the catalog, or the recommendation service's candidates re-ranked here
        (``"server"``, see ``lerna.sdk.recommendations``)."""
        if self.model is None:
            raise LernaSDKError("call start() first")
        if n < 1:
            raise InputError("n must be at least 1")
        if candidates == "server":
            ids = recommendations.server_pool(self, n)
            rows = np.asarray([self.index[i] for i in ids], dtype=np.int64)
            feats = self.catalog.features[rows]
        elif self.candidates and candidates == "app":
            ids = list(self.candidates)
            feats = np.stack([self.schema.items.encode(self.candidates[i]) for i in ids])
            rows = np.asarray([self.index.get(i, -1) for i in ids], dtype=np.int64)
        else:
            ids, feats, rows = (
                list(self.catalog.item_ids),
                self.catalog.features,
                np.arange(len(self.catalog)),
            )
        if not self.predictions_enabled:
            return ids[:n]
        scores = self.model.score(self._context(when), feats, rows)
        if candidates == "server":
            scores = recommendations.fuse(scores)
        seen = {e.item_id for e in self.store.events()} if exclude_seen else set()
        order = [i for i in np.argsort(-scores, kind="stable") if ids[i] not in seen][:n]
        chosen = [ids[i] for i in order]
        for item in chosen:
            self._shown[item] = self.version
        self._pending["predictions"] += len(chosen)
        return chosen

    def capture(
        self,
        item_id: str,
        success: bool,
        *,
        when: datetime | None = None,
        value: float | None = None,
    ) -> None:
        """Record the outcome of showing ``item_id``: the label on-device training learns from.

        ``value`` optionally says how strong the outcome was (a rating, a watch time)."""
        if not item_id or len(item_id) > 128:
            raise InputError("item_id must be 1 to 128 characters")
        if value is not None and not math.isfinite(value):
            raise InputError("value must be a finite number")
        moment = when or datetime.now(UTC)
        if success and self._shown.pop(item_id, None) is not None:
            self._pending["successes"] += 1
        if self.consent:
            ctx = self._context(moment)
            self.store.add_events(
                [Event(moment.timestamp(), item_id, 1.0 if success else 0.0, ctx.tolist())]
            )

    def record_history(
        self, events: Sequence[tuple[datetime, str, bool] | tuple[datetime, str, bool, float]]
    ) -> None:
        """Bulk-add past interactions (app migration, or a simulator replaying a user's history):
        tuples of (when, item id, success) with an optional value."""
        if not self.consent:
            raise ConsentError("the user has not consented to on-device learning")
        rows = []
        for event in events:
            when, item, success = event[0], event[1], event[2]
            value = float(event[3]) if len(event) > 3 else None
            rows.append(
                Event(
                    when.timestamp(),
                    item,
                    1.0 if success else 0.0,
                    self._context(when).tolist(),
                    value,
                )
            )
        self.store.add_events(rows)
        self._personalize()

    # --- federated learning ------------------------------------------------------------------
    def sync(self) -> bool:
        """Pick up a newer global model; True when one was installed."""
        assert self.task is not None
        current = next(t for t in self.api.tasks() if t.id == self.task.id).current_version
        return self._sync_to(current)

    def _sync_to(self, current: int) -> bool:
        assert self.task is not None
        if current == self.version:
            return False
        return self._install(self.api.model(self.task.id, current))

    def _install(self, archive: bytes) -> bool:
        """Install a downloaded model; a file that does not fit the task is refused and the old one kept."""
        assert self.model is not None and self.task is not None
        try:
            manifest, arrays = shared.archive(archive)
            if manifest.kind != "model" or manifest.model != self.task.model_type:
                raise WeightsFormatError(
                    f"expected a {self.task.model_type} model, got {manifest.kind} {manifest.model}"
                )
            self.model.set_global_weights(arrays)
        except (WeightsFormatError, ValueError) as exc:
            raise ProtocolError(f"downloaded model refused: {exc}", "bad_model") from None
        self.version = manifest.version
        self.store.put_blob(f"model_{self.task.id}", archive)
        self._personalize()
        return True

    def _personalize(self) -> None:
        """Fit the user's personal part to the installed version (a no-op for models without one)."""
        if self.model is None or self.version < 0:
            return
        split = split_events(self.store.events(), self.conditions.holdout_fraction)
        examples = to_examples(split.train, self.index, self.schema.context_size)
        if len(examples):
            self.model.personalize(examples, self.catalog.features)

    def _load_cached_model(self) -> None:
        assert self.task is not None
        cached = self.store.get_blob(f"model_{self.task.id}")
        if cached is not None:
            try:
                self._install(cached)
            except ProtocolError:
                self.store.delete_blobs(f"model_{self.task.id}")

    def evaluate(self, k: int = 10) -> dict[str, float] | None:
        """Metrics of the current model (with personal state) on this user's held-out events."""
        assert self.model is not None
        split = split_events(self.store.events(), self.conditions.holdout_fraction)
        return evaluate(
            self.model,
            split,
            self.index,
            self.catalog.features,
            k,
            self.conditions.relevance_min_value,
        )

    def can_train(self) -> str | None:
        """None when training may run now, else the reason it may not."""
        if not self.training_enabled:
            return "training disabled for this device"
        if not self.consent:
            return "no user consent"
        if self.conditions.require_unmetered and not self.device_state.unmetered:
            return "metered network"
        if self.device_state.battery < self.conditions.min_battery:
            return "battery low"
        if self.store.count_events() < self.conditions.min_events:
            return "not enough events"
        return None

    def train_round(self, *, timeout: float = 3600.0, poll: float = 0.25) -> RoundOutcome:
        """Take part in one round, blocking until it ends (secure rounds have several stages)."""
        outcome = self.round_step()
        deadline = time.monotonic() + timeout
        while outcome.status == "in_progress" and time.monotonic() < deadline:
            time.sleep(poll)
            outcome = self.round_step()
        return outcome

    def round_step(self) -> RoundOutcome:
        """Advance this device's part in the current round as far as possible without waiting.

        For a plain round that is check-in, training and upload. For a secure round it is
        check-in and training the first time, then one protocol stage per call until this
        device's last message is in: ``uploaded`` once its unmasking answer was accepted (the
        round finishes without it, as a plain round does after the upload), or ``completed``
        / ``failed`` / ``dropped`` when the round ended first.
        """
        if self._secure is not None:
            secure = self._secure
            progress = secure.step()
            status: OutcomeStatus = "in_progress"
            if progress in ("completed", "failed", "dropped"):
                status = progress
            elif progress == "unmasking" and "unmasking" in secure.sent:
                status = "uploaded"  # nothing left for this device to do
            if status != "in_progress":
                self._secure = None
            base = self._pending_outcome
            return RoundOutcome(
                status,
                secure.round_id,
                base.version,
                base.num_examples,
                base.metrics,
                secure.failure,
            )
        assert self.model is not None and self.task is not None
        reason = self.can_train()
        if reason:
            return RoundOutcome("skipped", reason=reason)
        assignment = self.api.checkin(self.task.id)
        if (
            assignment.action != "train"
            or assignment.round_id is None
            or assignment.base_version is None
        ):
            return RoundOutcome(
                "waiting", reason=assignment.reason or f"retry after {assignment.retry_after:.0f}s"
            )
        prepared = self._train_for(assignment.base_version)
        if prepared is None:
            return RoundOutcome("skipped", reason="no training examples for catalog items")
        update, num_examples, metrics = prepared
        outcome = RoundOutcome(
            "in_progress", assignment.round_id, assignment.base_version, num_examples, metrics
        )
        if assignment.two_server is not None or assignment.secure:
            # clipped (and under DP bounded to S) here; quantised and noised on the lattice
            # only when it is masked, by the mode's own step
            vector = contribution(
                flatten(update, layout_of(update)), num_examples, metrics, self.task.privacy
            )
        if assignment.two_server is not None:
            two_server.upload(self.api, assignment.round_id, assignment.base_version,
                              assignment.two_server, vector, self.task.privacy, self.rng)  # fmt: skip
            return RoundOutcome(
                "uploaded", assignment.round_id, assignment.base_version, num_examples, metrics
            )
        if assignment.secure:
            self._secure = SecureRound(
                self.api, assignment.round_id, vector, self.task.privacy, self.rng
            )
            self._pending_outcome = outcome
            # the first stage opens only when the cohort is full: the next call polls for it
            return outcome
        meta = UploadMeta(
            round_id=assignment.round_id,
            base_version=assignment.base_version,
            num_examples=num_examples,
            upload_id=uuid.uuid4().hex,
            metrics=metrics,
        )
        manifest = Manifest(
            kind="update",
            model=self.task.model_type,
            version=assignment.base_version,
            arrays=layout_of(update),
            meta=meta.model_dump(),
        )
        try:
            self.api.upload(assignment.round_id, dump_archive(manifest, update))
        except ProtocolError as exc:
            if exc.code == "already_uploaded":
                return RoundOutcome(
                    "already_uploaded", assignment.round_id, assignment.base_version
                )
            raise
        return RoundOutcome(
            "uploaded", assignment.round_id, assignment.base_version, num_examples, metrics
        )

    def _train_for(
        self, base_version: int
    ) -> tuple[dict[str, np.ndarray], int, dict[str, float]] | None:
        """Evaluate the base version on held-out events, train on the rest, return the change of the global part."""
        assert self.model is not None and self.task is not None
        if base_version != self.version:
            self._install(self.api.model(self.task.id, base_version))
        base = self.model.global_weights()
        split = split_events(self.store.events(), self.conditions.holdout_fraction)
        metrics = (
            evaluate(
                self.model,
                split,
                self.index,
                self.catalog.features,
                10,
                self.conditions.relevance_min_value,
            )
            or {}
        )
        examples = to_examples(split.train, self.index, self.schema.context_size)
        if len(examples) == 0:
            return None
        for _ in range(self.task.local_epochs):
            self.model.fit_local(examples, self.catalog.features, self.rng)
        update = {
            name: (w - base[name]).astype(np.float32)
            for name, w in self.model.global_weights().items()
        }
        self.model.set_global_weights(base)  # the device keeps serving the published global model
        self._save_personal_state()
        return update, len(examples), metrics

    # --- telemetry and personal state ----------------------------------------------------------
    def flush_telemetry(self) -> None:
        if self.task is None or self._pending["predictions"] == 0 or self.version < 0:
            return
        data = Telemetry(
            version=self.version,
            predictions=self._pending["predictions"],
            successes=self._pending["successes"],
        )
        self.api.telemetry(self.task.id, data)
        self._pending = {"predictions": 0, "successes": 0}

    def _save_personal_state(self) -> None:
        assert self.model is not None and self.task is not None
        buf = io.BytesIO()
        np.savez(buf, allow_pickle=False, **self.model.personal_state())
        self.store.put_blob(f"personal_{self.task.id}", buf.getvalue())

    def _restore_personal_state(self) -> None:
        assert self.model is not None and self.task is not None
        blob = self.store.get_blob(f"personal_{self.task.id}")
        if blob is None:
            return
        with np.load(io.BytesIO(blob), allow_pickle=False) as npz:
            try:
                self.model.set_personal_state({k: npz[k] for k in npz.files})
            except ValueError:
                self.model.reset_personal_state()

    def _forget_user(self) -> None:
        self.store.clear_events()
        self.store.delete_blobs("personal_")
        if self.model is not None:
            self.model.reset_personal_state()
