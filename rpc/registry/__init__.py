"""Service registry: who provides what, with push notifications to consumers.

For now the in-process ``memory`` backend; the registry issue adds leases,
configuration documents and the embedded and ZooKeeper backends behind the
same API. :class:`RegistryDirectory` is the client's view of it.
"""

from ._directory import RegistryDirectory
from ._memory import MemoryRegistry
from ._model import ServiceInstance

__all__ = ["MemoryRegistry", "RegistryDirectory", "ServiceInstance"]
