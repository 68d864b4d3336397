"""The streaming job's clock: a window still closes when the spans topic goes quiet.

Spark's watermark moves only with the event times it reads, so without new spans the
last window before a pause would stay open (its edges unwritten, its weights unapplied)
until traffic resumes. The live job therefore reads a second topic beside the spans',
``<spans topic>.ticks``, where its driver writes a tick every few seconds: a record with
a ``start_us`` and nothing else, ``delay_s`` (a window) behind the clock. A tick moves the
watermark like a span and is never one (``pipeline/_stream_windows.py`` drops it in the
aggregate). Under traffic the ticks change nothing (the spans are ahead of them); when
quiet, the last window is emitted ``delay_s`` later than traffic would have emitted it.
They drop a span only when it reaches Kafka more than ``delay_s`` plus the watermark
after its start -- what traffic alone already drops past the watermark.

The tick topic is read in an available-now run too (ticks written earlier, real times),
so one checkpoint serves both kinds of run; only the live job writes ticks. Ticks that
cannot be written (no right to create or write the topic) are reported once: the job
then behaves as without them.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

__all__ = ["Ticker", "ensure_ticks_topic", "ticks_topic"]


def ticks_topic(spans_topic: str) -> str:
    """Where the streaming job over ``spans_topic`` writes and reads its clock ticks."""
    return f"{spans_topic}.ticks"


def ensure_ticks_topic(bootstrap: str, topic: str, report: Callable[[str], None]) -> bool:
    """Create the tick topic (one partition) unless it exists; False when that failed."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import KafkaError, TopicAlreadyExistsError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        try:
            admin.create_topics([NewTopic(topic, 1, 1)])
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()
    except KafkaError as err:
        report(f"ticks: no {topic} ({err}); a quiet topic's last window waits for a span")
        return False
    return True


class Ticker:
    """A daemon thread on the driver writing a tick every ``interval_s`` while ``alive()``."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        delay_s: int,
        interval_s: float,
        alive: Callable[[], bool],
        report: Callable[[str], None],
    ) -> None:
        from kafka import KafkaProducer

        self.topic, self.delay_s, self.interval_s = topic, delay_s, interval_s
        self.alive, self.report = alive, report
        self._producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks=1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="callscope-ticks", daemon=True)
        self._thread.start()

    def close(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        failing = False
        try:
            while not self._stop.wait(self.interval_s) and self.alive():
                start_us = int((time.time() - self.delay_s) * 1_000_000)
                try:
                    self._producer.send(self.topic, json.dumps({"start_us": start_us}).encode())
                    failing = False
                except Exception as err:  # a broker away: the next tick tries again
                    if not failing:
                        self.report(f"ticks: cannot write {self.topic}: {err}")
                    failing = True
        finally:
            self._producer.close(5)
