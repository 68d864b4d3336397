"""Apache HBase 2.6 standalone (local filesystem) and its Thrift v1 server, which happybase speaks.

Two JVMs: the master (with the region server and an in-process ZooKeeper on 2182) and the
Thrift gateway on 9090. HBase 2 reaches into JDK internals, so Java 17 needs the ``--add-opens``
below (the same ones HBase's own launch script adds on JDK 11+).
"""

from __future__ import annotations

from callscope.stack import probes
from callscope.stack.fetch import Artifact
from callscope.stack.process import Launch
from callscope.stack.recipe import JVM_COMMON, Port, Runtime, Service, classpath, render
from callscope.stack.settings import HBASE_THRIFT_ENV, HOST

_OPENS = ["java.base/java.lang", "java.base/java.lang.reflect", "java.base/java.io",
          "java.base/java.net", "java.base/java.nio", "java.base/sun.nio.ch",
          "java.base/java.util", "java.base/java.util.concurrent",
          "java.base/java.util.concurrent.atomic", "java.base/java.util.regex",
          "java.base/jdk.internal.misc", "java.base/jdk.internal.ref"]  # fmt: skip
JDK17_FLAGS = [
    *(f"--add-opens={module}=ALL-UNNAMED" for module in _OPENS),
    "--add-exports=java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
]


class HBase(Service):
    name = "hbase"
    artifact = Artifact("hbase")
    heap = "1g + 256m (Thrift)"
    ports = (Port(9090, "thrift"), Port(2182, "zookeeper (in-process)"),
             Port(16000, "master"), Port(16020, "regionserver"))  # fmt: skip
    processes = ("master", "thrift")
    stop_grace_s = 40.0  # the master flushes and closes its regions on SIGTERM

    def prepare(self, rt: Runtime) -> list[Launch]:
        conf = rt.run_dir / "conf"
        for sub in ("data", "tmp", "zk"):
            (rt.run_dir / sub).mkdir(parents=True, exist_ok=True)
        render(self.name, "hbase-site.xml", conf / "hbase-site.xml", host=HOST,
               data_dir=rt.run_dir / "data", tmp_dir=rt.run_dir / "tmp",
               zk_dir=rt.run_dir / "zk", zk_port=self.ports[1].number,
               master_port=self.ports[2].number, regionserver_port=self.ports[3].number,
               thrift_port=self.client_port)  # fmt: skip
        log4j = render(self.name, "log4j2.properties", conf / "log4j2.properties")
        common = [*JVM_COMMON, *JDK17_FLAGS, f"-Dlog4j2.configurationFile={log4j}",
                  "-cp", classpath(conf, rt.home / "lib")]  # fmt: skip
        java = str(rt.java.binary)
        master = [java, "-Xms256m", "-Xmx1g", *common,
                  "org.apache.hadoop.hbase.master.HMaster", "start"]  # fmt: skip
        thrift = [java, "-Xms64m", "-Xmx256m", *common,
                  "org.apache.hadoop.hbase.thrift.ThriftServer",
                  "-b", HOST, "-p", str(self.client_port), "start"]  # fmt: skip
        return [Launch("master", master, cwd=rt.run_dir), Launch("thrift", thrift, cwd=rt.run_dir)]

    def probe(self) -> None:
        probes.hbase_thrift(self.client_port)

    def env(self) -> dict[str, str]:
        return {HBASE_THRIFT_ENV: f"{HOST}:{self.client_port}"}
