"""Tracing and logging, set up once per process.

Spans go to OTLP when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; otherwise to JSON lines under
``.lgsp/traces/<service>.jsonl``, which ``lgsp trace`` reads, so an operator can follow a
dossier where no tracing backend runs. Logs carry the trace id. Personal data (ID numbers,
phones, e-mail addresses) is masked in every log line as a last line of defence; code must
not put it in span attributes or log arguments in the first place.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path
from typing import Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link

_PD_PATTERNS = (
    (re.compile(r"(?<!\d)\d{12}(?!\d)"), "***id***"),  # CCCD / personal ID
    (re.compile(r"(?<![\w.])(?:\+?84|0)[35789]\d{8}(?!\d)"), "***phone***"),
    (re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+"), "***email***"),
)


def mask_personal_data(text: str) -> str:
    for pattern, replacement in _PD_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class JsonLinesSpanExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ctx = s.get_span_context()
            if ctx is None:  # only a span never started has none
                continue
            lines.append(
                json.dumps(
                    {
                        "trace_id": format(ctx.trace_id, "032x"),
                        "span_id": format(ctx.span_id, "016x"),
                        "parent_id": format(s.parent.span_id, "016x") if s.parent else None,
                        "name": s.name,
                        "kind": s.kind.name,
                        "service": s.resource.attributes.get("service.name"),
                        "start": s.start_time,
                        "end": s.end_time,
                        "status": s.status.status_code.name,
                        "attributes": {k: _jsonable(v) for k, v in (s.attributes or {}).items()},
                        "links": [format(link.context.trace_id, "032x") for link in s.links],
                    },
                    ensure_ascii=False,
                )
            )
        with self._lock, self._path.open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _jsonable(value):
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return [_jsonable(v) for v in value]


_provider: TracerProvider | None = None


def setup_tracing(service_name: str, trace_dir: Path, otlp_endpoint: str | None = None) -> TracerProvider:
    """Install the process's tracer provider once; later calls return the same one."""
    global _provider
    if _provider is not None:
        return _provider
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{otlp_endpoint.rstrip('/')}/v1/traces"))
        )
    else:
        provider.add_span_processor(
            BatchSpanProcessor(JsonLinesSpanExporter(trace_dir / f"{service_name}.jsonl"), schedule_delay_millis=200)
        )
    trace.set_tracer_provider(provider)
    _provider = provider
    return provider


def shutdown_tracing() -> None:
    if _provider is not None:
        _provider.force_flush(5000)
        _provider.shutdown()


def tracer(name: str = "lgsp") -> trace.Tracer:
    return trace.get_tracer(name)


def current_trace_headers() -> dict[str, str]:
    """``traceparent``/``tracestate`` of the current span, to store with an outbox row."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from_headers(headers: dict[str, str]) -> Context:
    return propagate.extract(headers)


def in_trace(tracer_name: str, traceparent: str | None, name: str, *, link_here: bool = False):
    """A span in a dossier's own trace (``traceparent`` kept from its receipt), so the events
    emitted inside join its journey; ``link_here`` links it to the span current now (the HTTP
    request, a worker's pass, or the trace an event came in on)."""
    here = trace.get_current_span().get_span_context()
    return tracer(tracer_name).start_as_current_span(
        name,
        context=context_from_headers({"traceparent": traceparent} if traceparent else {}),
        links=[Link(here)] if link_here and here.is_valid else [],
    )


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id a W3C ``traceparent`` names (``00-<trace id>-<span id>-<flags>``)."""
    parts = (traceparent or "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


class _TraceAndMaskFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id = current_trace_id() or "-"
        record.msg = mask_personal_data(record.getMessage())
        record.args = None
        return True


def setup_logging(service_name: str, level: str = "INFO") -> None:
    """Logs to stderr as ``time level service trace_id event message``, personal data masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_TraceAndMaskFilter())
    handler.setFormatter(
        logging.Formatter(f"%(asctime)s %(levelname)s {service_name} trace=%(trace_id)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "uvicorn.access", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
