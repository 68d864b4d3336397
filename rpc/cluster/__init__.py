"""The consumer's cluster layer: strategies over a directory, a balancer and invokers.

``proxy → cluster strategy → directory → balancer → client chain (per attempt) → invoker``
(see docs/architecture.md). Strategies are found by name in the ``clusters`` kind
of the extension registry.
"""

from ._cluster import ClusterInvoker
from ._invoker import Attempted, Invoker, MockInvoker
from ._socket import SocketInvoker
from ._strategies import CLUSTERS, Broadcast, ClusterStrategy, Failfast, Forking, Outcome

__all__ = [
    "CLUSTERS",
    "Attempted",
    "Broadcast",
    "ClusterInvoker",
    "ClusterStrategy",
    "Failfast",
    "Forking",
    "Invoker",
    "MockInvoker",
    "Outcome",
    "SocketInvoker",
]
