"""The consumer's cluster layer: strategies over a directory, a balancer and invokers.

``proxy → cluster strategy → directory → balancer → client chain (per attempt) → invoker``
(see docs/architecture.md). Strategies are found by name in the ``clusters`` kind
of the extension registry and built per (service, method) from its settings.
Each decision is an event on the attempt it concerns and a count in :data:`DECISIONS`,
which the consumer KPIs report (``counters["governance.<decision>"]``).
"""

from ._budget import RetryBudget
from ._cluster import CLUSTERS, ClusterInvoker, in_doubt
from ._failcache import Failcache, FailcacheQueue
from ._invoker import Attempted, Invoker, MockInvoker
from ._retrying import Failback, Failover
from ._socket import SocketInvoker
from ._strategies import Broadcast, ClusterStrategy, Failfast, Failsafe, Forking, Outcome
from ._tally import DECISIONS, DecisionTally

__all__ = [
    "CLUSTERS",
    "DECISIONS",
    "Attempted",
    "Broadcast",
    "ClusterInvoker",
    "ClusterStrategy",
    "DecisionTally",
    "Failback",
    "Failcache",
    "FailcacheQueue",
    "Failfast",
    "Failover",
    "Failsafe",
    "Forking",
    "Invoker",
    "MockInvoker",
    "Outcome",
    "RetryBudget",
    "SocketInvoker",
    "in_doubt",
]
