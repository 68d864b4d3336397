"""The ZooKeeper backend (``zookeeper://host:port/root``), through kazoo.

Layout (DESIGN §3.6): ``<root>/services/<service>/providers/<instance>`` and
``.../consumers/<consumer>`` are ephemeral (they go with the session),
``<root>/config/<scope>/<name>`` is persistent; a document's version is the
znode's version + 1, so compare-and-set is ZooKeeper's own. Notifications are
kazoo's ``ChildrenWatch`` and ``DataWatch``, which re-arm after a session
expiry; a providers folder deleted and created again is watched again
(:mod:`._zk_watch`), and every ``check_interval`` seconds each watched folder is
re-read, so a missed event heals. Our registrations are re-created on every
(re)connection. Consensus (ZAB) and elasticity are the ensemble's, not ours.

The first connection is waited for (``connect_timeout``) only while it can come:
once every address of the ensemble has refused, the client returns and goes on
connecting in the background, so a consumer calls from its disk cache at once.

Security is ZooKeeper's digest scheme: with ``credentials="user:password"`` the
nodes we create grant ALL to that identity and to ``writers``, READ to
``readers`` (to anyone when no readers are named). A refused write raises
PERMISSION_DENIED, or UNAUTHENTICATED when we hold no credentials at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any
from urllib.parse import quote

from .._errors import (
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RpcError,
    UnauthenticatedError,
    UnavailableError,
)
from ._api import ConfigListener, InstancesListener
from ._errors import ConflictError
from ._listeners import Listeners, deliver
from ._model import (
    MAX_KEY_LENGTH,
    ConfigDocument,
    Consumer,
    ServiceInstance,
    check_key,
    check_name,
    validate_instance,
)
from ._state import validate_document
from ._validate import MAX_INSTANCES_PER_SERVICE, check_int, check_number, check_text
from ._zk_watch import ProvidersWatch

log = logging.getLogger("callscope.registry")
MAX_LISTED = 10_000


class ZooKeeperRegistry:
    """The registry API on a ZooKeeper ensemble; ``client`` is the underlying KazooClient."""

    def __init__(
        self,
        hosts: str,
        root: str = "/callscope",
        *,
        credentials: str | None = None,
        writers: Sequence[str] = (),
        readers: Sequence[str] = (),
        session_timeout: float = 10.0,
        timeout: float = 5.0,
        connect_timeout: float = 5.0,
        check_interval: float = 30.0,
    ) -> None:
        from kazoo.client import KazooClient
        from kazoo.retry import KazooRetry

        from ._zk_connect import FailureCountingHandler, wait_connected

        try:
            check_number(check_interval, "check_interval", 0.05, 86_400.0)
        except RpcError as err:
            raise ValueError(err.message) from None
        self.root = "/" + root.strip("/")
        self._timeout = timeout
        self._credentials = credentials
        self._acl = _acl(credentials, writers, readers)
        handler = FailureCountingHandler()
        self.client = KazooClient(
            hosts=hosts,
            handler=handler,
            timeout=session_timeout,
            auth_data=[("digest", credentials)] if credentials else None,
            connection_retry=KazooRetry(max_tries=-1, delay=0.1, max_delay=1.0),
            command_retry=KazooRetry(max_tries=3, delay=0.1, max_delay=1.0),
        )
        self._lock = threading.RLock()
        self._armed = threading.Condition(self._lock)  # a providers watch finished arming
        self._registered: dict[tuple[str, str, str, str], ServiceInstance] = {}
        self._consumers: dict[tuple[str, str], Consumer] = {}
        self._services = Listeners()
        self._config = Listeners()
        self._watched: dict[str, ProvidersWatch | None] = {}  # None: being armed
        self._known: dict[str, dict[str, ServiceInstance]] = {}  # child data, read once
        self._docs: dict[str, object] = {}  # key -> the token of its armed DataWatch
        self._pushed: dict[str, list[str]] = {}  # ids last pushed per service
        self._reading = threading.Lock()  # _known is read and filled by one thread at a time
        self._check_interval = check_interval
        self._checker: threading.Thread | None = None
        self._closing = threading.Event()
        self._closed = False
        self.client.add_listener(self._state_changed)
        if not wait_connected(self.client, handler, connect_timeout):
            log.warning("ZooKeeper %s unreachable for now; connecting in the background", hosts)

    # -- plumbing -----------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        from kazoo import exceptions as zk
        from kazoo.handlers.threading import KazooTimeoutError

        try:
            yield
        except zk.NoAuthError:
            if self._credentials:
                raise PermissionDeniedError(f"{what}: these credentials may not") from None
            raise UnauthenticatedError(f"{what}: needs credentials") from None
        except zk.AuthFailedError:
            raise UnauthenticatedError(f"{what}: ZooKeeper refused the credentials") from None
        except zk.NoNodeError:
            raise NotFoundError(f"{what}: no such node") from None
        except (zk.BadVersionError, zk.NodeExistsError):
            raise ConflictError(f"{what}: the version moved") from None
        except (zk.ConnectionLoss, zk.SessionExpiredError, zk.ConnectionClosedError,
                zk.OperationTimeoutError, KazooTimeoutError) as exc:  # fmt: skip
            raise UnavailableError(f"{what}: ZooKeeper unreachable ({exc!r})") from None

    def _do(self, op: str, *args: Any, **kwargs: Any) -> Any:
        """One ZooKeeper call, bounded by ``timeout`` (kazoo's sync calls wait forever)."""
        return getattr(self.client, op + "_async")(*args, **kwargs).get(timeout=self._timeout)

    def _provider_dir(self, service: str) -> str:
        return f"{self.root}/services/{service}/providers"

    def _config_path(self, key: str) -> str:
        return f"{self.root}/config/{key}"

    def _ensure(self, path: str) -> int:
        """Create a folder and its parents: parents let anyone add below them (the service
        folder holds consumers' nodes too), ``consumers`` lets anyone list themselves, and
        ``providers`` carries our ACL: only its writers register providers there.

        Returns how many children the folder had (0 when it was just created)."""
        from kazoo.exceptions import NodeExistsError
        from kazoo.security import ACL, ANYONE_ID_UNSAFE, Permissions

        stat = self._do("exists", path)
        if stat is not None:
            return int(stat.numChildren)
        acl, tree = self._acl, self._acl
        if self._credentials:
            mine = [a for a in self._acl if a.id != ANYONE_ID_UNSAFE]
            tree = [*mine, ACL(Permissions.READ | Permissions.CREATE, ANYONE_ID_UNSAFE)]
            if path.endswith("/consumers"):
                everyone = Permissions.READ | Permissions.CREATE | Permissions.DELETE
                acl = [*mine, ACL(everyone, ANYONE_ID_UNSAFE)]
        parts = path.strip("/").split("/")
        for n in range(1, len(parts) + 1):
            node = "/" + "/".join(parts[:n])
            with contextlib.suppress(NodeExistsError):
                if n == len(parts) or self._do("exists", node) is None:
                    self._do("create", node, b"", acl=acl if n == len(parts) else tree)
        return 0

    def _state_changed(self, state: str) -> None:
        if state == "CONNECTED" and not self._closed:
            # Never block kazoo's connection thread: reconcile on a handler thread.
            self.client.handler.spawn(self._reconcile)

    def _reconcile(self) -> None:
        """After every (re)connection: our nodes exist, our watches are armed."""
        with self._lock:
            instances, consumers = list(self._registered.values()), list(self._consumers.values())
            unwatched = [s for s in self._services.names() if s not in self._watched]
            documents = [k for k in self._config.names() if k not in self._docs]
        try:
            for inst in instances:
                self._put_ephemeral(self._provider_dir(inst.service), inst.id, inst.to_dict(),
                                    MAX_INSTANCES_PER_SERVICE)  # fmt: skip
            for consumer in consumers:
                self._list_consumer(consumer)
            for service in unwatched:
                self._start_watch(service)
            for key in documents:
                self._start_doc_watch(key)
        except Exception:
            log.warning("re-registration on ZooKeeper failed; next reconnection retries",
                        exc_info=True)  # fmt: skip

    def _put_ephemeral(
        self, folder: str, name: str, data: dict[str, Any], limit: int | None = None
    ) -> None:
        """Create (or replace) our node; RESOURCE_EXHAUSTED when the folder holds ``limit``
        others already (counted from the folder's stat, which ``_ensure`` reads anyway)."""
        from kazoo.exceptions import NodeExistsError, NoNodeError

        path = f"{folder}/{quote(name, safe='')}"
        raw = json.dumps(data).encode()
        held = self._ensure(folder)
        if limit is not None and held >= limit and self._do("exists", path) is None:
            raise ResourceExhaustedError(
                f"{folder} lists {held} instances already (the per-service limit)"
            )
        for _ in range(3):
            try:
                self._do("create", path, raw, acl=self._acl, ephemeral=True)
                return
            except NodeExistsError:
                try:
                    old, stat = self._do("get", path)
                    if old == raw and stat.ephemeralOwner == self.client.client_id[0]:
                        return
                    self._do("delete", path)  # a former session's node, or stale data
                except NoNodeError:
                    pass

    # -- providers ----------------------------------------------------------
    def register(self, instance: ServiceInstance) -> None:
        """Create the ephemeral node now, or on the next connection while ZooKeeper is down.

        Checked as the embedded server checks (BAD_REQUEST); a service already listing
        ``MAX_INSTANCES_PER_SERVICE`` others is RESOURCE_EXHAUSTED (counted, not atomic:
        ZooKeeper's own quotas are the hard bound).
        """
        validate_instance(instance)
        with self._lock:
            self._registered[instance.key] = instance
        if not self.client.connected:
            log.warning("ZooKeeper unreachable; %s registers when it is back", instance.id)
            return
        try:
            with self._errors(f"register {instance.service}"):
                self._put_ephemeral(self._provider_dir(instance.service), instance.id,
                                    instance.to_dict(), MAX_INSTANCES_PER_SERVICE)  # fmt: skip
        except UnavailableError as err:
            log.warning("%s; will register when ZooKeeper is back", err)
        except Exception:
            with self._lock:
                self._registered.pop(instance.key, None)
            raise

    def unregister(self, instance: ServiceInstance) -> None:
        from kazoo.exceptions import NoNodeError

        check_name(instance.service, "service")  # a path segment: never "..", never "a/b"
        with self._lock:
            self._registered.pop(instance.key, None)
        path = f"{self._provider_dir(instance.service)}/{quote(instance.id, safe='')}"
        with self._errors(f"unregister {instance.service}"), contextlib.suppress(NoNodeError):
            self._do("delete", path)

    def lookup(self, service: str) -> list[ServiceInstance]:
        check_name(service, "service")
        with self._errors(f"lookup {service}"):
            names = self._children(self._provider_dir(service))
            return self._read_children(service, names, {})

    def _children(self, path: str) -> list[str]:
        from kazoo.exceptions import NoNodeError

        try:
            return list(self._do("get_children", path))[:MAX_LISTED]
        except NoNodeError:
            return []

    def _read_children(
        self, service: str, names: list[str], known: dict[str, ServiceInstance]
    ) -> list[ServiceInstance]:
        """The instances named ``names``, reading only those ``known`` does not hold yet."""
        from kazoo.exceptions import NoAuthError, NoNodeError

        for gone in set(known) - set(names):
            del known[gone]
        for name in names:
            if name not in known:
                try:
                    raw, _ = self._do("get", f"{self._provider_dir(service)}/{name}")
                    known[name] = ServiceInstance.from_dict(json.loads(raw))
                except NoNodeError:
                    continue
                except (ValueError, RpcError) as err:  # one bad node never hides the others
                    log.warning("ignoring a malformed provider node %s/%s: %s", service, name, err)
                except NoAuthError:
                    log.warning("ignoring provider node %s/%s: no right to read it", service, name)
        return [known[n] for n in names if n in known]

    def services(self) -> list[str]:
        with self._errors("list services"):
            names = self._children(f"{self.root}/services")
            return sorted(n for n in names if self._children(self._provider_dir(n)))

    def consumers(self, service: str | None = None) -> list[Consumer]:
        if service is not None:
            check_name(service, "service")
        with self._errors("list consumers"):
            names = [service] if service else self._children(f"{self.root}/services")
            out = []
            for name in names:
                folder = f"{self.root}/services/{name}/consumers"
                for child in self._children(folder):
                    with contextlib.suppress(Exception):
                        raw, _ = self._do("get", f"{folder}/{child}")
                        out.append(Consumer.from_dict(json.loads(raw)))
            return out

    # -- consumers ----------------------------------------------------------
    def subscribe(self, service: str, listener: InstancesListener) -> Callable[[], None]:
        """Watch ``service``'s providers; the first push comes at once (while connected)."""
        check_name(service, "service")
        consumer = Consumer(service, f"{Consumer(service).id}:{id(self):x}")
        with self._lock:
            first = service not in self._services
            remove = self._services.add(service, listener)
            self._consumers[(service, consumer.id)] = consumer

        def unsubscribe() -> None:
            if remove():
                with self._lock:
                    self._consumers.pop((service, consumer.id), None)
                    watch = self._watched.pop(service, None)
                    self._pushed.pop(service, None)
                if watch is not None:
                    watch.stop()

        self._start_checks()
        if not self.client.connected:  # never block a caller: _reconcile catches up
            log.warning("ZooKeeper unreachable; watching %s once it is back", service)
            return unsubscribe
        self._list_consumer(consumer)
        try:
            with self._errors(f"subscribe {service}"):
                if first:
                    self._start_watch(service)
                else:
                    with self._reading:
                        known = list(self._known.get(service, {}).values())
                    deliver(listener, known, service)
        except UnavailableError as err:
            log.warning("%s; watching %s once ZooKeeper is back", err, service)

        return unsubscribe

    def _list_consumer(self, consumer: Consumer) -> None:
        """Best effort: a reader that may not list itself still gets its pushes."""
        folder = f"{self.root}/services/{consumer.service}/consumers"
        try:
            with self._errors(f"list consumer of {consumer.service}"):
                self._put_ephemeral(folder, consumer.id, consumer.to_dict())
        except (PermissionDeniedError, UnauthenticatedError, UnavailableError) as err:
            log.debug("%s", err)

    def _emit(self, service: str, instances: list[ServiceInstance]) -> bool:
        """Push unless it is what was pushed last; returns whether it pushed."""
        ids = sorted(i.id for i in instances)
        with self._lock:
            if self._pushed.get(service) == ids:
                return False
            self._pushed[service] = ids
        self._services.emit(service, instances)
        return True

    def _start_watch(self, service: str) -> None:
        """Watch the providers folder (and, until a provider creates it, for it).

        A consumer never creates the folder: the namespace's ACL is the providers' to set.
        """
        with self._lock:
            # Being armed by another thread (_reconcile, after a connection): its first push
            # reaches our listener too; wait for it, as our caller expects it on return.
            self._armed.wait_for(lambda: self._watched.get(service, 0) is not None, self._timeout)
            if service in self._watched:
                return
            self._watched[service] = None
        watch = None
        try:
            watch = ProvidersWatch(self.client, self._provider_dir(service),
                                   partial(self._changed, service), self._do)  # fmt: skip
        finally:
            with self._lock:
                if self._watched.get(service, 0) is None:
                    if watch is not None and service in self._services:
                        self._watched[service] = watch
                        watch = None
                    else:
                        del self._watched[service]
                self._armed.notify_all()
            if watch is not None:
                watch.stop()  # unsubscribed meanwhile

    def _changed(self, service: str, children: list[str]) -> bool:
        """Push the providers named by ``children``; returns whether that changed the list."""
        try:
            with self._reading:
                known = self._known.setdefault(service, {})
                instances = self._read_children(service, children[:MAX_LISTED], known)
        except Exception:
            log.warning("reading %s's providers failed", service, exc_info=True)
            return False
        return self._emit(service, instances)

    def _start_checks(self) -> None:
        with self._lock:
            if self._checker is not None or self._closed:
                return
            self._checker = threading.Thread(
                target=self._check_loop, name="callscope-zookeeper-check", daemon=True
            )
        self._checker.start()

    def _check_loop(self) -> None:
        """Every ``check_interval``: each subscribed service is watched, and what was pushed
        is what ZooKeeper holds (a missed watch event heals here)."""
        while not self._closing.wait(self._check_interval):
            if self.client.connected:
                self._check_watches()

    def _check_watches(self) -> int:
        """Re-read every watched providers folder now, arm what is not armed yet; returns
        how many folders had missed a change."""
        healed = 0
        for service in self._services.names():
            with self._lock:
                armed, watch = service in self._watched, self._watched.get(service)
            try:
                with self._errors(f"check {service}"):
                    if not armed:
                        self._start_watch(service)
                    elif watch is not None:
                        healed += watch.check()
            except RpcError as err:
                log.debug("checking %s's providers: %s", service, err)
        for key in self._config.names():
            with self._lock:
                armed = key in self._docs
            if not armed:
                try:
                    with self._errors(f"watch {key}"):
                        self._start_doc_watch(key)
                except RpcError as err:
                    log.debug("watching %s: %s", key, err)
        return healed

    # -- configuration ------------------------------------------------------
    def get_config(self, key: str) -> ConfigDocument | None:
        from kazoo.exceptions import NoNodeError

        with self._errors(f"get {key}"):
            try:
                raw, stat = self._do("get", self._config_path(check_key(key)))
            except NoNodeError:
                return None
            return _document(key, raw, stat)

    def put_config(self, key: str, value: Any, expected: int | None = None) -> ConfigDocument:
        from kazoo.exceptions import NodeExistsError, NoNodeError

        validate_document(key, value)
        if expected is not None:
            check_int(expected, "expected version")
        path, raw = self._config_path(key), json.dumps({"value": value}).encode()
        with self._errors(f"put {key}"):
            if expected is not None and expected > 0:
                try:
                    stat = self._do("set", path, raw, version=expected - 1)
                except NoNodeError:
                    raise ConflictError(f"config {key!r} does not exist") from None
                return ConfigDocument(key, value, stat.version + 1)
            try:
                self._do("create", path, raw, acl=self._acl, makepath=True)
                return ConfigDocument(key, value, 1)
            except NodeExistsError:
                old, stat = self._do("get", path)
                if expected == 0 and old:
                    raise ConflictError(f"config {key!r} exists already") from None
                stat = self._do("set", path, raw, version=stat.version)
                return ConfigDocument(key, value, stat.version + 1)

    def delete_config(self, key: str, expected: int | None = None) -> None:
        from kazoo.exceptions import NotEmptyError

        if expected is not None:
            check_int(expected, "expected version")
        doc = self.get_config(key)
        if doc is None:
            raise NotFoundError(f"no config {key!r}")
        version = -1 if expected is None else expected - 1
        with self._errors(f"delete {key}"):
            try:
                self._do("delete", self._config_path(key), version=version)
            except NotEmptyError:  # documents live below: leave an empty folder node
                self._do("set", self._config_path(key), b"", version=version)

    def list_config(self, prefix: str = "") -> list[ConfigDocument]:
        base = check_text(prefix, "prefix", limit=MAX_KEY_LENGTH).rpartition("/")[0]
        out: list[ConfigDocument] = []
        with self._errors(f"list {prefix}"):
            self._walk(base, prefix, out)
        return sorted(out, key=lambda d: d.key)

    def _walk(self, key: str, prefix: str, out: list[ConfigDocument]) -> None:
        from kazoo.exceptions import NoNodeError

        if len(out) >= MAX_LISTED:
            return
        path = self._config_path(key) if key else f"{self.root}/config"
        if key and key.startswith(prefix):
            with contextlib.suppress(NoNodeError):
                raw, stat = self._do("get", path)
                doc = _document(key, raw, stat)
                if doc is not None:
                    out.append(doc)
        for child in self._children(path):
            sub = f"{key}/{child}" if key else child
            if sub.startswith(prefix) or prefix.startswith(sub + "/"):
                self._walk(sub, prefix, out)

    def watch_config(self, key: str, listener: ConfigListener) -> Callable[[], None]:
        """Watch one document (kazoo DataWatch); ``None`` when it is deleted.

        Never blocks while ZooKeeper is down: the watch is armed on the next connection,
        and its first push comes then."""
        remove = self._config.add(check_key(key), listener)
        self._start_checks()

        def unwatch() -> None:
            if remove():
                with self._lock:
                    self._docs.pop(key, None)  # its DataWatch ends at its next event

        if not self.client.connected:
            log.warning("ZooKeeper unreachable; watching %s once it is back", key)
            return unwatch
        try:
            with self._errors(f"watch {key}"):
                if not self._start_doc_watch(key):
                    deliver(listener, self.get_config(key), key)
        except UnavailableError as err:
            log.warning("%s; watching %s once ZooKeeper is back", err, key)
        return unwatch

    def _start_doc_watch(self, key: str) -> bool:
        """Arm the document's DataWatch (its first push comes now); False if it is armed."""
        from kazoo.recipe.watchers import DataWatch

        token = object()  # this watch's: a later one for the same key replaces it
        with self._lock:
            if key in self._docs:
                return False
            self._docs[key] = token

        def changed(raw: bytes | None, stat: Any) -> bool | None:
            if self._docs.get(key) is not token:
                return False  # unwatched (or watched anew): this DataWatch ends
            self._config.emit(key, _document(key, raw, stat) if stat is not None else None)
            return None

        try:
            DataWatch(self.client, self._config_path(key), changed)
        except BaseException:
            with self._lock:
                if self._docs.get(key) is token:
                    del self._docs[key]
            raise
        return True

    # -- lifecycle ----------------------------------------------------------
    def close(self) -> None:
        """End the session: our ephemeral nodes go with it, at once."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        with contextlib.suppress(Exception):
            self.client.stop()
        self.client.close()

    def __enter__(self) -> ZooKeeperRegistry:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _document(key: str, raw: bytes | None, stat: Any) -> ConfigDocument | None:
    if not raw:
        return None  # a folder node, not a document
    try:
        return ConfigDocument(key, json.loads(raw)["value"], stat.version + 1)
    except (ValueError, KeyError, TypeError):
        log.warning("config node %s holds no callscope document", key)
        return None


def _acl(credentials: str | None, writers: Sequence[str], readers: Sequence[str]) -> list[Any]:
    from kazoo.security import ACL, ANYONE_ID_UNSAFE, OPEN_ACL_UNSAFE, Permissions, make_digest_acl

    if not credentials:
        return list(OPEN_ACL_UNSAFE)
    acl = [make_digest_acl(*_split(c), all=True) for c in (credentials, *writers)]
    acl += [make_digest_acl(*_split(c), read=True) for c in readers]
    if not readers:
        acl.append(ACL(Permissions.READ, ANYONE_ID_UNSAFE))
    return acl


def _split(credential: str) -> tuple[str, str]:
    user, sep, password = credential.partition(":")
    if not sep or not user:
        raise ValueError("ZooKeeper credentials are 'user:password'")
    return user, password
