"""The Kafka dead-letter producer through a broker outage, on the real Kafka."""

from __future__ import annotations

import gc
import logging
import threading
import time

import pytest

from collector import KafkaDeadLetters, Message, Rejection

from .helpers import topics
from .socks_proxy import Socks5Proxy


# kafka-python 3.0's SOCKS5 path (the test's means of cutting the broker off) leaves the
# socket of each refused attempt to the garbage collector (kafka/net/socks5.py, line 72).
@pytest.mark.kafka
@pytest.mark.filterwarnings("ignore:Exception ignored in:pytest.PytestUnraisableExceptionWarning")
def test_an_outage_is_told_in_one_line_per_change(kafka_bootstrap: str, caplog) -> None:
    names = topics(kafka_bootstrap)
    proxy = Socks5Proxy().start()
    dlq = KafkaDeadLetters(kafka_bootstrap, names["dlq_topic"], report_every_s=2.0,
                           proxy_url=proxy.url)  # fmt: skip
    letter = [(Message(names["spans_topic"], b"{"), Rejection("NOT_JSON", "not JSON"))]
    outcome: list[object] = []

    def send() -> None:  # waits for Kafka (up to 30 s), as the collector's worker does
        try:
            dlq.send(letter)
            outcome.append("sent")
        except Exception as exc:
            outcome.append(exc)

    try:
        dlq.send(letter)
        caplog.set_level(logging.INFO)
        caplog.clear()
        proxy.stop()  # Kafka, as this producer sees it, is gone
        sending = threading.Thread(target=send)
        sending.start()
        time.sleep(7)
        proxy.start()
        sending.join(40)
        assert outcome == ["sent"]
    finally:
        proxy.stop()
        dlq.close()
        gc.collect()  # those sockets go now, under this test's filter
    theirs = [r for r in caplog.records if r.name.split(".")[0] == "kafka"
              and "callscope-collector-dlq" in r.threadName]  # fmt: skip
    assert theirs == [], f"{len(theirs)} kafka-python lines, e.g. {theirs[0].getMessage()}"
    ours = [r.getMessage() for r in caplog.records if r.name == "callscope.collector"]
    down = [m for m in ours if "Kafka unreachable (" in m]
    still = [m for m in ours if "still unreachable after" in m]
    back = [m for m in ours if "reachable again after" in m]
    assert len(down) == 1 and len(back) == 1 and len(still) <= 4, ours
    assert len(ours) == len(down) + len(still) + len(back), ours


@pytest.mark.parametrize("every", [0.0, float("nan"), float("inf"), True])
def test_the_report_interval_is_checked_before_connecting(every: float) -> None:
    with pytest.raises(ValueError, match="report_every_s"):
        KafkaDeadLetters("127.0.0.1:1", report_every_s=every)
