"""Apache ZooKeeper 3.9, a standalone server on 2181 from Maven Central jars."""

from __future__ import annotations

from callscope.stack import probes
from callscope.stack.fetch import Artifact
from callscope.stack.process import Launch
from callscope.stack.recipe import JVM_COMMON, Port, Runtime, Service, classpath, render
from callscope.stack.settings import HOST, ZOOKEEPER_ENV


class ZooKeeper(Service):
    name = "zookeeper"
    artifact = Artifact("zookeeper")
    heap = "256m"
    ports = (Port(2181, "client"),)
    processes = ("zookeeper",)

    def prepare(self, rt: Runtime) -> list[Launch]:
        data = rt.run_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        cfg = render(self.name, "zoo.cfg", rt.run_dir / "conf" / "zoo.cfg",
                     host=HOST, client_port=self.client_port, data_dir=data)  # fmt: skip
        argv = [str(rt.java.binary), f"-Xms{self.heap}", f"-Xmx{self.heap}", *JVM_COMMON,
                "-Dorg.slf4j.simpleLogger.showDateTime=true",
                "-cp", classpath(rt.home / "lib"),
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", str(cfg)]  # fmt: skip
        return [Launch("zookeeper", argv, cwd=rt.run_dir)]

    def probe(self) -> None:
        probes.zookeeper(self.client_port)

    def env(self) -> dict[str, str]:
        return {ZOOKEEPER_ENV: f"{HOST}:{self.client_port}"}
