"""Background training jobs: queued, executing, then successful, failed or cancelled.

Jobs run on a small thread pool (training is numpy/scipy work that releases the GIL for most of
its time). Cancelling a queued job stops it from ever starting; cancelling an executing one sets
a flag that the trainer checks between stages, and the model is installed only after the last
check, so a cancelled job never changes what queries see.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from lerna.recommender.errors import ConflictError, JobCancelledError, NotFoundError
from lerna.recommender.service import RecommenderService
from lerna.recommender.store import JobInfo

FINISHED = ("successful", "failed", "cancelled")


class JobManager:
    def __init__(self, service: RecommenderService, workers: int = 1) -> None:
        self.service = service
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rec-train")
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self.on_checkpoint: Callable[[str, int], None] | None = None
        """Called with (job id, checkpoint number) at each checkpoint of an executing job, before
        the cancel flag is read: a progress hook, and how tests cancel at a chosen stage."""
        service.store.fail_unfinished_jobs("the service restarted before this job finished")

    def submit(self, engine_id: str) -> JobInfo:
        self.service.state(engine_id)  # 404 before anything is written
        job = self.service.store.add_job(str(uuid.uuid4()), engine_id)
        with self._lock:
            self._flags[job.id] = threading.Event()
        self.executor.submit(self._run, job.id, engine_id)
        return job

    def cancel(self, engine_id: str, job_id: str) -> JobInfo:
        with self._lock:
            job = self.service.store.get_job(job_id)
            if job is None or job.engine_id != engine_id:
                raise NotFoundError(f"no job {job_id!r} in engine {engine_id!r}")
            flag = self._flags.get(job_id)
            if job.status in FINISHED or flag is None:
                raise ConflictError(f"job {job_id!r} already finished: {job.status}")
            flag.set()
            if job.status == "queued":
                self.service.store.set_job(job_id, "cancelled", "cancelled before it started")
        info = self.service.store.get_job(job_id)
        assert info is not None
        return info

    def _run(self, job_id: str, engine_id: str) -> None:
        with self._lock:
            flag = self._flags[job_id]
            if flag.is_set():
                self._flags.pop(job_id, None)
                return
            self.service.store.set_job(job_id, "executing")

        reached = 0

        def checkpoint() -> None:
            nonlocal reached
            reached += 1
            if self.on_checkpoint is not None:
                self.on_checkpoint(job_id, reached)
            if flag.is_set():
                raise JobCancelledError("cancelled while executing")

        try:
            model = self.service.train(engine_id, checkpoint)
        except JobCancelledError as exc:
            self.service.store.set_job(job_id, "cancelled", str(exc))
        except Exception as exc:  # a failed job must be recorded, whatever failed
            self.service.store.set_job(job_id, "failed", f"{type(exc).__name__}: {exc}")
        else:
            stats = ", ".join(f"{k}={v:g}" for k, v in model.stats.items())
            self.service.store.set_job(job_id, "successful", stats)
        finally:
            with self._lock:
                self._flags.pop(job_id, None)

    def shutdown(self) -> None:
        with self._lock:
            for flag in self._flags.values():
                flag.set()
        self.executor.shutdown(wait=True, cancel_futures=False)
