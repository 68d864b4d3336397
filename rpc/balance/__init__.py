"""Load balancers (kind ``balancers``) and the weights they apply.

Built-ins: ``random`` (weighted), ``round_robin`` (smooth weighted, the default),
``least_active``, ``ewma`` (latency), ``p2c`` (adaptive power of two choices),
``consistent_hash`` and ``sticky``. Effective weight = the provider's own *
the registry's ``governance/<service>/weights`` factor * the warm-up ramp.
"""

from ._adaptive import EwmaBalancer, LeastActiveBalancer, P2CBalancer, ProviderStats
from ._basic import RandomBalancer, RoundRobinBalancer, StickyBalancer, weighted_choice
from ._hash import ConsistentHashBalancer
from ._weights import InstanceWeight, WeightsDocument, WeightTable, weights_key

__all__ = [
    "ConsistentHashBalancer",
    "EwmaBalancer",
    "InstanceWeight",
    "LeastActiveBalancer",
    "P2CBalancer",
    "ProviderStats",
    "RandomBalancer",
    "RoundRobinBalancer",
    "StickyBalancer",
    "WeightTable",
    "WeightsDocument",
    "weighted_choice",
    "weights_key",
]
