"""Prometheus metrics, one registry per app (several apps in one process never share counters).

Labels stay bounded: the route template (``/v1/programs/{program_id}/calculate``), never the raw
path; methods outside the standard set are counted as ``other``; programs are the rule book's.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no route: 404s for arbitrary paths share one label
# Seconds; the engine answers in milliseconds, audits of large files take seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("method", "route", "status")
        self.requests = Counter(
            "http_requests_total", "HTTP requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time from the request's arrival to the end of its response",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.evaluations = Counter(
            "subsidy_evaluations_total",
            "Applications evaluated by check / calculate, by program and outcome",
            ("program_id", "outcome"),
            registry=self.registry,
        )

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        labels = (method if method in METHODS else "other", route, str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)

    def count_evaluation(self, program_id: str, eligible: bool) -> None:
        self.evaluations.labels(program_id, "eligible" if eligible else "ineligible").inc()


def metrics_of(app: FastAPI) -> Metrics:
    metrics: Metrics = app.state.metrics
    return metrics


async def metrics_endpoint(request: Request) -> Response:
    """Prometheus text exposition of this app's registry."""
    return Response(
        generate_latest(metrics_of(request.app).registry), media_type=CONTENT_TYPE_LATEST
    )
