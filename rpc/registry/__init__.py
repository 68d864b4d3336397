"""Service registry and configuration centre: who provides what, and governance settings.

One API (:class:`Registry`) with three backends chosen by URL (:func:`connect`):
``memory://`` (in-process), ``callscope://host:port`` (the embedded registry
server, :class:`RegistryServer`, persisted in SQLite) and
``zookeeper://host:port/root`` (kazoo). :class:`RegistryDirectory` is the RPC
client's view of it, with a disk cache and empty-push protection;
:func:`publish` registers a server's services and unregisters before draining.
"""

from ._api import Registry
from ._auth import Principal, load_tokens
from ._directory import RegistryDirectory
from ._embedded import EmbeddedRegistry
from ._errors import CONFLICT, ConflictError
from ._memory import MemoryRegistry
from ._model import ConfigDocument, Consumer, ServiceInstance
from ._publish import Publication, publish
from ._quotas import Quotas
from ._server import DEFAULT_PORT, RegistryServer
from ._state import validate_document
from ._store import default_path as default_db_path
from ._url import REGISTRY_URL_ENV, client_tls, connect, server_tls
from ._validate import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_METADATA_KEY_LENGTH,
    MAX_METADATA_KEYS,
    MAX_METADATA_STRING_LENGTH,
)
from ._zookeeper import ZooKeeperRegistry

__all__ = [
    "CONFLICT",
    "DEFAULT_PORT",
    "MAX_METADATA_BYTES",
    "MAX_METADATA_DEPTH",
    "MAX_METADATA_KEYS",
    "MAX_METADATA_KEY_LENGTH",
    "MAX_METADATA_STRING_LENGTH",
    "REGISTRY_URL_ENV",
    "ConfigDocument",
    "ConflictError",
    "Consumer",
    "EmbeddedRegistry",
    "MemoryRegistry",
    "Principal",
    "Publication",
    "Quotas",
    "Registry",
    "RegistryDirectory",
    "RegistryServer",
    "ServiceInstance",
    "ZooKeeperRegistry",
    "client_tls",
    "connect",
    "default_db_path",
    "load_tokens",
    "publish",
    "server_tls",
    "validate_document",
]
