"""Elasticsearch 8 from the integration-test zip Elastic publishes to Maven Central.

That zip is the real server with the X-Pack core and security modules but no bundled JDK and no
``bin/elasticsearch-env``, so its CLI launcher is started directly on our Java; the launcher
then forks the server JVM (both are stopped together as one process group). Elasticsearch
refuses root: see ``callscope.stack.unprivileged``.
"""

from __future__ import annotations

import shutil

from callscope.stack import probes, unprivileged
from callscope.stack.fetch import Artifact
from callscope.stack.process import Launch
from callscope.stack.recipe import Port, Runtime, Service, classpath, render
from callscope.stack.settings import ELASTICSEARCH_URL_ENV, HOST


class Elasticsearch(Service):
    name = "elasticsearch"
    artifact = Artifact("elasticsearch", unpack_zip=True)
    heap = "1g"
    ports = (Port(9200, "http"), Port(9300, "transport"))
    processes = ("elasticsearch",)
    stop_grace_s = 30.0

    def prepare(self, rt: Runtime) -> list[Launch]:
        config, data, logs, tmp = (rt.run_dir / d for d in ("config", "data", "logs", "tmp"))
        for folder in (config, data, logs, tmp):
            folder.mkdir(parents=True, exist_ok=True)
        for name in ("jvm.options", "log4j2.properties"):
            shutil.copyfile(rt.home / "config" / name, config / name)
        render(self.name, "elasticsearch.yml", config / "elasticsearch.yml", host=HOST,
               http_port=self.client_port, transport_port=self.ports[1].number,
               data_dir=data, logs_dir=logs)  # fmt: skip
        home = rt.home
        argv = [str(rt.java.binary), "-Xms4m", "-Xmx64m", "-XX:+UseSerialGC",
                "-Dcli.name=server", f"-Dcli.script={home}/bin/elasticsearch",
                "-Dcli.libs=lib/tools/server-cli", f"-Des.path.home={home}",
                f"-Des.path.conf={config}", "-Des.distribution.type=tar",
                "-Des.java.type=JAVA_HOME",
                "-cp", f"{classpath(home / 'lib')}:{home / 'lib' / 'cli-launcher'}/*",
                "org.elasticsearch.launcher.CliToolLauncher"]  # fmt: skip
        argv, user = unprivileged.wrap(argv, readable=[home], writable=rt.run_dir)
        env = {"ES_HOME": str(home), "ES_PATH_CONF": str(config), "ES_TMPDIR": str(tmp),
               "ES_JAVA_HOME": str(rt.java.home),
               "ES_JAVA_OPTS": f"-Xms{self.heap} -Xmx{self.heap}"}  # fmt: skip
        # The server resolves its modules relative to the working directory: run from home.
        return [Launch("elasticsearch", argv, cwd=home, env=env, preexec_user=user)]

    def probe(self) -> None:
        probes.elasticsearch(self.client_port)

    def env(self) -> dict[str, str]:
        return {ELASTICSEARCH_URL_ENV: f"http://{HOST}:{self.client_port}"}
