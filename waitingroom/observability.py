"""Structured JSON logs and CloudWatch metrics (Embedded Metric Format, via Powertools).

A waiting poll must not write a log line: at 200,000 polls/s that would cost more than the
rest of the system. API containers therefore add counts up in memory and emit them at most once
a minute per container (an EMF line per room); the drainer emits once per tick per room.
Counts a container held when it was frozen or recycled are lost: metrics are approximate, the
room state in DynamoDB is not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

# Never written to a log, whatever a caller passes in `extra`.
_SECRET_KEYS = {"token", "ticket", "authorization", "admin_key", "secret", "pem"}


class JsonFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON log lines (level, location, message, timestamp, the record's extras),
    with the values of secret-looking extras replaced before they are written."""

    def format(self, record: logging.LogRecord) -> str:
        secret = [k for k in record.__dict__ if k.lower() in _SECRET_KEYS]
        if secret:
            record = logging.makeLogRecord(record.__dict__)  # other handlers keep theirs
            for key in secret:
                setattr(record, key, "[redacted]")
        return super().format(record)


def configure_logging(level: str = "INFO") -> None:
    """JSON logs on the root logger (idempotent: warm invocations do not stack handlers)."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root.handlers = [handler]
    root.setLevel(level)
    # Mangum logs every request at INFO: one CloudWatch line per poll would cost more than
    # everything else at scale (API Gateway access logs exist for that).
    logging.getLogger("mangum").setLevel(logging.WARNING)


Emit = Callable[[str, str, Mapping[str, float], Mapping[str, float]], None]


def emit_emf(
    service: str, room: str, counts: Mapping[str, float], gauges: Mapping[str, float]
) -> None:
    """One EMF document for one room (Powertools prints it to stdout for CloudWatch)."""
    from aws_lambda_powertools.metrics import Metrics, MetricUnit

    metrics = Metrics(namespace="waitingroom", service=service)
    metrics.add_dimension(name="room", value=room)
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    for name, value in gauges.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    metrics.flush_metrics()


def emit_nothing(
    service: str, room: str, counts: Mapping[str, float], gauges: Mapping[str, float]
) -> None:
    return None


class MetricsBuffer:
    """Counts and gauges per room, emitted at most every `flush_seconds`. Thread-safe."""

    def __init__(
        self,
        service: str,
        emit: Emit = emit_nothing,
        flush_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.emit = emit
        self.flush_seconds = flush_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self._gauges: dict[str, dict[str, float]] = defaultdict(dict)
        self._last_flush = clock()

    def count(self, room: str, name: str, n: float = 1) -> None:
        with self._lock:
            self._counts[room][name] += n
        self.maybe_flush()

    def gauge(self, room: str, name: str, value: float) -> None:
        with self._lock:
            self._gauges[room][name] = value

    def maybe_flush(self) -> None:
        if self.clock() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, defaultdict(lambda: defaultdict(float))
            gauges, self._gauges = self._gauges, defaultdict(dict)
            self._last_flush = self.clock()
        for room in sorted(set(counts) | set(gauges)):
            c, g = dict(counts.get(room, {})), dict(gauges.get(room, {}))
            if c or g:
                try:
                    self.emit(self.service, room, c, g)
                except Exception:  # metrics must never break a request
                    logging.getLogger("waitingroom.metrics").exception("metrics not emitted")
