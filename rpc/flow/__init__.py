"""Flow control on the provider and the consumer: admission gates and limits.

The provider's path is connection control → admission (gates: quotas, tiers,
masks) → server chain → handler; see docs/architecture.md, "Flow control".
"""

from ._concurrency import NO_DEFAULT, Bulkhead, Concurrency, ConcurrencyLimit, Shed
from ._connections import ConnectionLimits
from ._dynamic import FACTORS, TIERS, DynamicFlow, TierRules
from ._follow import (
    GLOBAL_FLOW,
    FlowWatch,
    ServerFlow,
    flow_key,
    follow_flow,
    parse_flow,
    parse_server_flow,
    validate_flow,
)
from ._gate import Gate, admit_all
from ._gradient import GradientLimit
from ._limiters import LIMITERS
from ._quota_limiter import QuotaLimiter
from ._quota_rule import QuotaRule, quota_key
from ._quota_status import quota_status

__all__ = [
    "FACTORS",
    "GLOBAL_FLOW",
    "LIMITERS",
    "NO_DEFAULT",
    "TIERS",
    "Bulkhead",
    "Concurrency",
    "ConcurrencyLimit",
    "ConnectionLimits",
    "DynamicFlow",
    "FlowWatch",
    "Gate",
    "GradientLimit",
    "QuotaLimiter",
    "QuotaRule",
    "ServerFlow",
    "Shed",
    "TierRules",
    "admit_all",
    "flow_key",
    "follow_flow",
    "parse_flow",
    "parse_server_flow",
    "quota_key",
    "quota_status",
    "validate_flow",
]
