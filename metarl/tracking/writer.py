"""One background thread that makes every MLflow call of a tracker, in order.

The search enqueues and returns at once, so its next jitted generation runs while the last
one is being logged. When MLflow stops answering, the writer does not retry each op for
minutes: it spills to disk, says so once, and checks every `retry_interval` seconds whether
the store is back, in which case it first sends what was spilled, then carries on.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from metarl.tracking.ops import Op, describe, execute, materialize, merge
from metarl.tracking.spill import Spill

log = logging.getLogger("metarl.tracking")

_STOP = object()
BACKLOG_WARNING = 20_000


class _Barrier:
    def __init__(self, recover: bool) -> None:
        self.recover = recover
        self.done = threading.Event()


def is_rejection(e: BaseException) -> bool:
    """True when the store answered and refused the op, so sending it again cannot help."""
    from mlflow.exceptions import MlflowException

    if isinstance(e, MlflowException):
        status = e.get_http_status_code()
        # auth, timeouts and rate limits are fixed by time or configuration: retry later
        return 400 <= status < 500 and status not in (401, 403, 408, 429)
    return isinstance(e, (ValueError, TypeError, KeyError, FileNotFoundError, IsADirectoryError))


class Writer:
    def __init__(self, client: Any, tracking_uri: str, spill: Spill,
                 probe: Callable[[], None], retry_interval: float) -> None:
        self.client = client
        self.tracking_uri = tracking_uri
        self.spill = spill
        self.failed_writes = 0
        self._probe = probe
        self._retry_interval = retry_interval
        self._queue: queue.Queue = queue.Queue()
        # ops left unsent by an earlier process go first, as soon as the store answers
        self._down = spill.pending > 0
        self._next_probe = 0.0
        self._rejections_reported = 0
        self._backlog_warned = False
        self._thread = threading.Thread(target=self._run, name="metarl-tracking-writer",
                                        daemon=True)
        self._thread.start()

    @property
    def down(self) -> bool:
        return self._down

    def put(self, op: Op) -> None:
        self._queue.put(op)
        if not self._backlog_warned and self._queue.qsize() > BACKLOG_WARNING:
            self._backlog_warned = True
            log.warning("MLflow logging to %s is %d writes behind the search; log fewer "
                        "trials or metrics per generation", self.tracking_uri,
                        self._queue.qsize())

    def flush(self, timeout: float | None = None, recover: bool = False) -> bool:
        """Wait until everything put so far is written or spilled; False on timeout."""
        barrier = _Barrier(recover)
        self._queue.put(barrier)
        deadline = None if timeout is None else time.monotonic() + timeout
        while not barrier.done.wait(0.05):
            if not self._thread.is_alive():
                return False
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True

    def close(self, timeout: float | None = None) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        held: Any = None
        while True:
            if held is not None:
                item, held = held, None
            else:
                try:
                    item = self._queue.get(timeout=self._wait())
                except queue.Empty:
                    self._guarded(self._recover)
                    continue
            if item is _STOP:
                return
            if isinstance(item, _Barrier):
                if self._down and (item.recover or self._probe_due()):
                    self._guarded(self._recover)
                item.done.set()
                continue
            # coalesce queued batches into fewer log_batch calls; the first op of another kind
            # is held back and handled next, so order is kept
            while True:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(nxt, dict) and merge(item, nxt):
                    continue
                held = nxt
                break
            self._guarded(self._handle, item)

    def _guarded(self, fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:  # a bug here must not kill the thread and hang flush()
            log.exception("metarl tracking writer: unexpected error")

    def _wait(self) -> float | None:
        return max(0.0, self._next_probe - time.monotonic()) if self._down else None

    def _probe_due(self) -> bool:
        return time.monotonic() >= self._next_probe

    def _handle(self, op: Op) -> None:
        if self._down and self._probe_due():
            self._recover()
        if self._down:
            self._spill(op)
            return
        try:
            execute(op, self.client)
        except Exception as e:
            if is_rejection(e):
                self._reject(op, e)
            else:
                self._go_down(e)
                self._spill(op)

    def _go_down(self, e: BaseException) -> None:
        self._down = True
        self._next_probe = time.monotonic() + self._retry_interval
        log.warning(
            "MLflow tracking store %s failed (%s). The search goes on; tracking data is saved "
            "to %s and sent when the store answers again (checked every %g s), or later with "
            "metarl.tracking.replay_unsent(%r).", self.tracking_uri, _short(e),
            self.spill.path, self._retry_interval, str(self.spill.path))

    def _reject(self, op: Op, e: BaseException) -> None:
        self.failed_writes += 1
        self._rejections_reported += 1
        level = logging.WARNING if self._rejections_reported <= 5 else logging.DEBUG
        log.log(level, "MLflow refused %s: %s; kept in %s", describe(op), _short(e),
                self.spill.path)
        self._save(op, rejected=_short(e))

    def _spill(self, op: Op) -> None:
        self.failed_writes += 1
        self._save(op)

    def _save(self, op: Op, rejected: str | None = None) -> None:
        try:
            materialize(op)
        except Exception as e:  # a value that cannot become a float cannot be sent either
            log.error("metarl tracking: dropped %s with a non-numeric value: %s",
                      describe(op), _short(e))
            return
        try:
            self.spill.append(op, rejected=rejected)
        except OSError as e:
            log.error("metarl tracking: could not save %s to %s: %s", describe(op),
                      self.spill.path, e)

    def _recover(self) -> None:
        self._next_probe = time.monotonic() + self._retry_interval
        try:
            self._probe()
            sent = self.spill.replay(self.client, is_rejection)
        except Exception as e:
            log.debug("MLflow tracking store %s still unavailable: %s", self.tracking_uri,
                      _short(e))
            return
        self._down = False
        log.warning("MLflow tracking store %s answers again; sent %d saved writes from %s",
                    self.tracking_uri, sent, self.spill.path)


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:300]
