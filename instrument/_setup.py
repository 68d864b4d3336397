"""Wiring: settings → exporter, spool, pipeline, tracer provider, KPI recorder, interceptors.

:func:`configure` builds it all; :meth:`Instrumentation.install` makes it the
process's: the global OpenTelemetry tracer provider, global RPC interceptors for
every client and server created afterwards, log correlation, a flush at exit.
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Callable

from opentelemetry import trace

import rpc
from rpc.degrade import add_local_event_sink

from ._exit import flush_before_termination, restore_termination, signals_held
from ._exporters import Exporter, SpoolExporter, get_exporter
from ._interceptors import ClientTracing, ServerTracing
from ._kpi import KpiRecorder, ProcessStats
from ._libraries import instrument_libraries
from ._local_events import on_local_event
from ._logs import disable_log_correlation, enable_log_correlation
from ._pipeline import ExportPipeline
from ._sampling import get_sampler
from ._settings import Settings
from ._span import Resource
from ._spool import Spool, open_spool
from ._tracer import TracerProvider

__all__ = ["Instrumentation", "configure", "current"]

log = logging.getLogger("callscope.instrument")

_current: Instrumentation | None = None
_lock = threading.Lock()


class Instrumentation:
    """One process's tracing and KPI machinery; :meth:`shutdown` flushes it."""

    def __init__(
        self,
        settings: Settings,
        provider: TracerProvider,
        pipeline: ExportPipeline,
        recorder: KpiRecorder,
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.pipeline = pipeline
        self.recorder = recorder
        self.client_interceptor = ClientTracing(provider, recorder)
        self.server_interceptor = ServerTracing(provider, recorder)
        self.installed = False
        self.libraries: list[str] = []
        self._on_termination: Callable[..., None] | None = None
        self._local_events: Callable[[], None] | None = None

    @property
    def exporter(self) -> Exporter:
        return self.pipeline.exporter

    @property
    def tracer(self) -> trace.Tracer:
        return self.provider.get_tracer("callscope")

    @property
    def hot_path(self) -> str:
        """``"c"`` when the interceptors' common calls run in C, else ``"python"`` (not
        built, ``CALLSCOPE_NATIVE=0``, or a setting the C path does not cover: a sampler
        that is not parent-based, or a plugin sampler for roots)."""
        hot = self.client_interceptor._hot is not None and self.server_interceptor._hot is not None
        return "c" if hot else "python"

    def install(self) -> Instrumentation:
        """Make this the process's instrumentation (see the module docstring), and turn on the
        installed OpenTelemetry library instrumentations. Idempotent."""
        global _current
        if self.installed:
            return self
        with _lock:
            if _current is not None and _current is not self:
                raise RuntimeError("instrumentation is already installed in this process")
            _current = self
        existing = trace.get_tracer_provider()
        if isinstance(existing, trace.ProxyTracerProvider):
            trace.set_tracer_provider(self.provider)
        elif existing is not self.provider:
            log.warning(
                "callscope: another OpenTelemetry tracer provider (%s) is installed; "
                "spans of other libraries will not reach callscope",
                type(existing).__name__,
            )
        rpc.add_global_interceptor(self.client_interceptor, side="client")
        rpc.add_global_interceptor(self.server_interceptor, side="server")
        self._local_events = add_local_event_sink(on_local_event)
        if self.settings.log_correlation:
            enable_log_correlation()
        self.libraries = instrument_libraries(self.provider, self.settings.libraries)
        atexit.register(self.shutdown)
        self._on_termination = flush_before_termination(self.shutdown)
        self.installed = True
        return self

    def force_flush(self, timeout: float = 30.0) -> bool:
        return self.pipeline.force_flush(timeout)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Flush spans and the last KPI window, then stop; clients made later are untraced.

        A SIGTERM or SIGINT arriving during the flush waits for it (:mod:`._exit`); log
        correlation goes off only after it, so what is logged while flushing keeps its format.
        """
        global _current
        correlated = self.installed and self.settings.log_correlation
        if self.installed:
            rpc.remove_global_interceptor(self.client_interceptor, side="client")
            rpc.remove_global_interceptor(self.server_interceptor, side="server")
            if self._local_events is not None:
                self._local_events()
                self._local_events = None
            atexit.unregister(self.shutdown)
            restore_termination(self._on_termination)
            self.installed = False
            with _lock:
                if _current is self:
                    _current = None
        try:
            with signals_held():
                self.pipeline.shutdown(timeout)
        finally:
            if correlated:
                disable_log_correlation()


def current() -> Instrumentation | None:
    """The installed instrumentation, if any."""
    return _current


def configure(
    settings: Settings | None = None,
    *,
    exporter: Exporter | None = None,
    install: bool = False,
) -> Instrumentation:
    """Build the instrumentation (from ``CALLSCOPE_*`` variables when no settings are given).

    ``exporter`` replaces the one named in the settings (tests pass a
    :class:`~instrument.MemoryExporter`). With ``install=True`` it also becomes the
    process's (what ``import instrument.auto`` does).
    """
    settings = settings or Settings.from_env()
    spool: Spool | None = None
    exporter_is_spool = False
    if exporter is None and settings.exporter == "spool":
        exporter = SpoolExporter(_open_spool(settings, required=True))  # type: ignore[arg-type]
        exporter_is_spool = True
    elif exporter is None:
        exporter = get_exporter(settings.exporter, settings)
        if settings.exporter == "kafka":
            spool = _open_spool(settings, required=False)
    recorder = KpiRecorder(settings.service_name, settings.instance)
    pipeline = ExportPipeline(
        exporter,
        spool=spool,
        spans_topic=settings.spans_topic,
        kpis_topic=settings.kpis_topic,
        queue_size=settings.queue_size,
        flush_interval_s=settings.flush_interval_s,
        recorder=recorder,
        kpi_interval_s=settings.kpi_interval_s,
        process_stats=ProcessStats(),
        exporter_is_spool=exporter_is_spool,
    )
    provider = TracerProvider(
        Resource(settings.service_name, settings.instance, settings.host),
        pipeline,
        get_sampler(settings.sampler, settings.sample_ratio),
    )
    instrumentation = Instrumentation(settings, provider, pipeline, recorder)
    return instrumentation.install() if install else instrumentation


def _open_spool(settings: Settings, *, required: bool) -> Spool | None:
    try:
        return open_spool(
            settings.spool_dir,
            settings.service_name,
            max_bytes=settings.spool_max_bytes,
            fsync=settings.spool_fsync,
        )
    except OSError as exc:
        if required:
            raise
        log.error(
            "callscope: no spool at %s (%s); while Kafka is unreachable records are dropped "
            "and counted",
            settings.spool_dir,
            exc,
        )
        return None
