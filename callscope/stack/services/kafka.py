"""Apache Kafka 4 in KRaft mode: one process that is both broker (9092) and controller (9093)."""

from __future__ import annotations

import base64
import subprocess
import uuid

from callscope.stack import probes
from callscope.stack.errors import StackError
from callscope.stack.fetch import Artifact
from callscope.stack.process import Launch
from callscope.stack.recipe import JVM_COMMON, Port, Runtime, Service, classpath, render
from callscope.stack.settings import HOST, KAFKA_BOOTSTRAP_ENV


class Kafka(Service):
    name = "kafka"
    artifact = Artifact("kafka")
    heap = "512m"
    ports = (Port(9092, "client"), Port(9093, "controller"))
    processes = ("kafka",)

    def prepare(self, rt: Runtime) -> list[Launch]:
        conf, data = rt.run_dir / "conf", rt.run_dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        props = render(self.name, "server.properties", conf / "server.properties",
                       host=HOST, client_port=self.ports[0].number,
                       controller_port=self.ports[1].number, data_dir=data)  # fmt: skip
        log4j = render(self.name, "log4j2.properties", conf / "log4j2.properties")
        java = [str(rt.java.binary), f"-Dlog4j2.configurationFile={log4j}", *JVM_COMMON,
                "-cp", classpath(rt.home / "lib")]  # fmt: skip
        if not (data / "meta.properties").is_file():
            self._format(java, props, rt)
        argv = [*java[:1], f"-Xms{self.heap}", f"-Xmx{self.heap}", *java[1:],
                "kafka.Kafka", str(props)]  # fmt: skip
        return [Launch("kafka", argv, cwd=rt.run_dir)]

    def _format(self, java: list[str], props: object, rt: Runtime) -> None:
        """KRaft needs its log directory formatted once with a cluster id."""
        id_file = rt.run_dir / "cluster-id"
        if not id_file.is_file():
            id_file.write_text(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))
        cmd = [*java, "-Xmx256m", "kafka.tools.StorageTool", "format", "--ignore-formatted",
               "-t", id_file.read_text().strip(), "-c", str(props)]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        (rt.run_dir / "format.log").write_text(out.stdout + out.stderr)
        if out.returncode != 0:
            raise StackError("START_FAILED", "formatting Kafka's KRaft storage failed",
                             (out.stdout + out.stderr)[-3000:])  # fmt: skip

    def probe(self) -> None:
        probes.kafka(self.client_port)

    def env(self) -> dict[str, str]:
        return {KAFKA_BOOTSTRAP_ENV: f"{HOST}:{self.client_port}"}
