"""Alarm rules in the jobs: where rules come from, and what happens to the alarms.

Rules come from a JSON file (``--alarms FILE``), from the registry's
``governance/_global/alarms`` document, or both: the registry's are read again at every
micro-batch, so an edit takes effect on the next window without a restart, and a registry
rule replaces the file's rule of the same name. A registry that cannot be read keeps the
last rules it gave (logged). Each window's alarms are written through the
``AnalyticsStore`` of every store (idempotent per rule, scope and window) and logged on
``callscope.pipeline.alarms``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from callscope_contract import KpiSample
from storage import Alarm, open_analytics_store

from ._alarm_rules import AlarmRule, registry_rules
from ._alarms import AlarmEvaluator, observations
from ._errors import PipelineError

__all__ = ["AlarmJob"]

log = logging.getLogger("callscope.pipeline.alarms")
RESUME_PAGES = 10


class AlarmJob:
    """One job's alarm rules and their memory; :meth:`on_windows` once per batch of windows."""

    def __init__(self, rules: Sequence[AlarmRule] = (), registry: Any = None) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise PipelineError("BAD_ALARM_RULE", "two alarm rules share a name")
        self.file_rules = list(rules)
        self.registry = registry
        self.evaluator = AlarmEvaluator(self.file_rules)
        self._registry_rules: list[AlarmRule] = []
        self._resumed = False

    def rules(self) -> list[AlarmRule]:
        """The rules in force now: the file's, then the registry's over them by name."""
        if self.registry is not None:
            try:
                self._registry_rules = registry_rules(self.registry)
            except PipelineError as err:  # a bad edit must not stop the job: keep the last
                log.error("alarm rules in the registry refused, keeping the last: %s", err)
            except Exception as err:  # the registry is down: keep the last rules it gave
                log.warning("alarm rules: registry unreadable, keeping the last: %s", err)
        by_name = {r.name: r for r in self.file_rules}
        by_name.update((r.name, r) for r in self._registry_rules)
        return list(by_name.values())

    def on_windows(
        self,
        samples: Sequence[KpiSample],
        stores: Sequence[str],
        report: Callable[[str], None] = lambda line: None,
        *,
        resume: bool = False,
    ) -> list[Alarm]:
        """Evaluate the windows the samples cover, oldest first; store and log the alarms.

        ``resume`` (the stream): before the first window, read the alarms the stores hold
        from before it, so a restarted job keeps a firing alarm's silence.
        """
        self.evaluator.set_rules(self.rules())
        seen = observations(samples)
        if not self.evaluator.rules or not seen:
            return []
        window_s = samples[0].window_s
        if resume and not self._resumed and stores:
            self._resume(stores[0], min(seen), window_s)
        self._resumed = True
        alarms = []
        for start_us in sorted(seen):
            alarms += self.evaluator.evaluate(start_us, window_s, seen[start_us])
        if alarms:
            for url in stores:
                with open_analytics_store(url) as analytics:
                    analytics.write_alarms(alarms)
            firing = sum(a.state == "firing" for a in alarms)
            report(f"alarms: {firing} firing, {len(alarms) - firing} resolved")
        return alarms

    def _resume(self, url: str, first_us: int, window_s: float) -> None:
        rules = self.evaluator.rules.values()
        horizon = max(r.period + r.silence_windows + 1 for r in rules)
        since = max(0, first_us - int(horizon * window_s * 1_000_000))
        found: list[Alarm] = []
        with open_analytics_store(url) as analytics:
            cursor = None
            for _ in range(RESUME_PAGES):
                page = analytics.alarms(since, first_us, limit=500, cursor=cursor)
                found += [a for a in page.alarms if a.window_s == window_s]  # this job's
                cursor = page.next_cursor
                if cursor is None:
                    break
        self.evaluator.resume(found, window_s)
