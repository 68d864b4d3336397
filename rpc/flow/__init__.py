"""Flow control on the provider and the consumer: admission gates and limits.

The provider's path is connection control → admission (gates: quotas, tiers,
masks) → server chain → handler; see docs/architecture.md, "Flow control".
"""

from ._concurrency import NO_DEFAULT, Bulkhead, Concurrency, ConcurrencyLimit, Shed
from ._gate import Gate, admit_all

__all__ = [
    "NO_DEFAULT",
    "Bulkhead",
    "Concurrency",
    "ConcurrencyLimit",
    "Gate",
    "Shed",
    "admit_all",
]
