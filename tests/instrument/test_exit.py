"""A traced process's exit, in real processes: the final flush logs legibly, delivers to
Kafka through kafka-python, and survives a second SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from callscope.cli import main
from instrument.model import KpiSample

from .conftest import ROOT
from .kafka_tools import consume, unique_topics
from .processes import first_line, running
from .test_auto import read_spool

# An exporter that logs while it exports: what the pipeline's own "exporter unreachable"
# lines do during the final flush. With SLOW_S it says when the final KPI window's export
# starts and ends, and takes that long.
EXPORTER = """
import logging, os, sys, time
from instrument import Settings, configure, register_exporter

class Exporter:
    def export(self, records):
        logging.getLogger("callscope.instrument").warning("exporter unreachable")
        if any(r.topic == "callscope.kpis" for r in records) and os.environ.get("SLOW_S"):
            print("flushing", flush=True)
            time.sleep(float(os.environ["SLOW_S"]))
            print("flushed", flush=True)
        return ()

    def flush(self, timeout):
        pass

    def close(self):
        pass

register_exporter("test", lambda settings: Exporter())
inst = configure(Settings(service_name="exiting", exporter="test", libraries="none",
                          kpi_interval_s=600, spool_dir=sys.argv[1]), install=True)
"""


def _python(script: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(script), *args]


def test_logging_after_shutdown_keeps_its_format(tmp_path: Path) -> None:
    script = EXPORTER + textwrap.dedent("""
        inst.shutdown()
        logging.getLogger("app").warning("logged after shutdown")
    """)
    done = subprocess.run(_python(script, str(tmp_path)), capture_output=True, text=True,
                          cwd=ROOT, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Logging error" not in done.stderr and "KeyError" not in done.stderr, done.stderr
    assert "[trace_id=0 span_id=0] exporter unreachable" in done.stderr  # during the flush
    assert "[trace_id=0 span_id=0] logged after shutdown" in done.stderr


def test_a_second_sigterm_waits_for_the_final_flush(tmp_path: Path) -> None:
    script = EXPORTER + textwrap.dedent("""
        import signal
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))  # exit, run atexit
        print("ready", flush=True)
        while True:
            time.sleep(1)
    """)
    with running(_python(script, str(tmp_path)), env={**os.environ, "SLOW_S": "3"}) as proc:
        assert first_line(proc) == "ready"
        proc.send_signal(signal.SIGTERM)  # the program exits; atexit flushes
        assert first_line(proc) == "flushing"
        proc.send_signal(signal.SIGTERM)  # a supervisor's second one, mid-flush
        out, err = proc.communicate(timeout=60)
    assert out.split() == ["flushed"], err  # the flush ran to its end
    assert "SIGTERM during the final flush; acted on once it is done" in err
    assert proc.returncode == 0  # then the program's handler acted on it: sys.exit(0)


@pytest.mark.kafka
def test_kafka_python_delivers_the_last_window_at_exit(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    """kafka-python's own atexit hook used to close the producer before the final export,
    so the last KPI window went to the spool (a new producer then replayed it, when it
    could)."""
    spans_topic, kpis_topic = unique_topics()
    name = f"exit-{uuid.uuid4().hex[:8]}"
    script = """
        import instrument.auto
        from opentelemetry import trace
        with trace.get_tracer("test").start_as_current_span("work"):
            pass
        assert instrument.auto.instrumentation.force_flush(30)  # the producer exists now
    """
    # CALLSCOPE_KPI_INTERVAL_S: one KPI window, the last, closed at exit
    env = {**os.environ, "CALLSCOPE_KAFKA_CLIENT": "kafka-python",
           "CALLSCOPE_KAFKA_BOOTSTRAP": kafka_bootstrap, "CALLSCOPE_SPANS_TOPIC": spans_topic,
           "CALLSCOPE_KPIS_TOPIC": kpis_topic, "CALLSCOPE_SPOOL_DIR": str(tmp_path),
           "CALLSCOPE_SERVICE_NAME": name, "CALLSCOPE_LIBRARIES": "none",
           "CALLSCOPE_KPI_INTERVAL_S": "600"}  # fmt: skip
    done = subprocess.run(_python(script), capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "go to the spool" not in done.stderr, done.stderr  # "exporter unreachable; ..."
    spooled = read_spool(tmp_path) if tmp_path.exists() else ([], [])
    assert spooled == ([], [])
    kpis = [KpiSample.from_json(v) for _, v in consume(kafka_bootstrap, kpis_topic, expected=1)]
    assert [(k.app, k.role) for k in kpis] == [(name, "process")]


@pytest.mark.kafka
def test_what_kafka_never_took_is_named_at_exit_and_replayed_on_demand(
    kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spans_topic, kpis_topic = unique_topics()
    name = f"left-{uuid.uuid4().hex[:8]}"
    with socket.socket() as s:  # a port nothing listens on: Kafka is down
        s.bind(("127.0.0.1", 0))
        down = f"127.0.0.1:{s.getsockname()[1]}"
    script = """
        import instrument.auto
        from opentelemetry import trace
        for _ in range(3):
            with trace.get_tracer("test").start_as_current_span("work"):
                pass
    """
    # CALLSCOPE_KPI_INTERVAL_S: one KPI window, the last, closed at exit
    env = {**os.environ, "CALLSCOPE_KAFKA_BOOTSTRAP": down, "CALLSCOPE_SPANS_TOPIC": spans_topic,
           "CALLSCOPE_KPIS_TOPIC": kpis_topic, "CALLSCOPE_SPOOL_DIR": str(tmp_path),
           "CALLSCOPE_SERVICE_NAME": name, "CALLSCOPE_LIBRARIES": "none",
           "CALLSCOPE_KPI_INTERVAL_S": "600"}  # fmt: skip
    done = subprocess.run(_python(script), capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    spool = tmp_path / name
    (line,) = [x for x in done.stderr.splitlines() if "undelivered records stay" in x]
    assert f"in the spool {spool} (" in line and f"callscope spool replay {spool} --kafka" in line

    assert main(["spool", "replay", str(spool), "--kafka", kafka_bootstrap]) == 0
    assert capsys.readouterr().out.startswith("callscope spool: 4 records replayed from ")
    spans = [json.loads(v) for _, v in consume(kafka_bootstrap, spans_topic, expected=3)]
    assert [s["name"] for s in spans] == ["work"] * 3
    kpis = [KpiSample.from_json(v) for _, v in consume(kafka_bootstrap, kpis_topic, expected=1)]
    assert [(k.app, k.role) for k in kpis] == [(name, "process")]
    assert main(["spool", "replay", str(tmp_path / "nope"), "--kafka", kafka_bootstrap]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"callscope spool: no spool at {tmp_path / 'nope'}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_program_that_ignores_signals_still_flushes_when_stopped(
    tmp_path: Path, signum: int
) -> None:
    """No handler of its own: the signal used to end it without atexit, losing its last
    window. Under ``callscope run`` it flushes first, then dies of the signal as before."""
    script = """
        import time
        from opentelemetry import trace
        with trace.get_tracer("test").start_as_current_span("work"):
            pass
        print("ready", flush=True)
        time.sleep(60)
    """
    command = [sys.executable, "-m", "callscope", "run", "--service-name", "stopped",
               "--spool-dir", str(tmp_path), "--", *_python(script)]  # fmt: skip
    env = {**os.environ, "CALLSCOPE_LIBRARIES": "none", "CALLSCOPE_KPI_INTERVAL_S": "600"}
    env.pop("CALLSCOPE_KAFKA_BOOTSTRAP", None)
    # The program starts with the signal at its default whatever this run inherited (under
    # nohup SIGHUP is ignored, and an ignored signal is left alone: the program sleeps on)
    with running(
        command, env=env, preexec_fn=lambda: signal.signal(signum, signal.SIG_DFL)
    ) as proc:
        assert first_line(proc) == "ready"
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signum, err  # died of it, as it would have
    spans, kpis = read_spool(tmp_path)
    assert [s.name for s in spans] == ["work"]
    assert [(k.app, k.role) for k in kpis] == [("stopped", "process")]  # the last window


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="reads /proc (Linux)")
def test_the_export_thread_leaves_terminating_signals_to_the_main_thread(tmp_path: Path) -> None:
    """A signal the kernel hands to the export thread would not wake a main thread asleep in
    ``time.sleep``: the flush-then-die handler would wait out the sleep."""
    script = EXPORTER + textwrap.dedent("""
        import threading
        exporting = next(t for t in threading.enumerate() if t.name == "callscope-export")
        time.sleep(0.5)  # past the first step of its loop
        with open(f"/proc/self/task/{exporting.native_id}/status") as status:
            print(next(line.split()[1] for line in status if line.startswith("SigBlk:")))
        inst.shutdown()
    """)
    with running(_python(script, str(tmp_path))) as proc:
        blocked = int(first_line(proc), 16)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        assert blocked & 1 << (signum - 1), f"{signum.name} not blocked: mask {blocked:#x}"
