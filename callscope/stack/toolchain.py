"""Finding the Java and Maven the stack runs on, with errors that say how to get them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from callscope.stack.errors import StackError

MIN_JAVA = 17  # Kafka 4 brokers need 17; Elasticsearch 8 and HBase 2.6 run on it.


@dataclass(frozen=True)
class Java:
    """A Java runtime: its ``java`` binary, its home (for ``ES_JAVA_HOME``) and major version."""

    binary: Path
    home: Path
    major: int


@lru_cache(maxsize=1)
def find_java() -> Java:
    """``$JAVA_HOME/bin/java`` if set, else ``java`` on PATH; at least Java 17."""
    home_env = os.environ.get("JAVA_HOME")
    if home_env and (Path(home_env) / "bin" / "java").is_file():
        binary = Path(home_env) / "bin" / "java"
    else:
        found = shutil.which("java")
        if not found:
            raise StackError(
                "JAVA_MISSING",
                f"Java {MIN_JAVA}+ is needed to run Kafka, Elasticsearch, HBase and ZooKeeper, "
                "and none was found (no JAVA_HOME, no java on PATH): "
                "apt-get install openjdk-17-jre-headless, or set JAVA_HOME",
            )
        binary = Path(found).resolve()
    major = _java_major(binary)
    if major < MIN_JAVA:
        raise StackError(
            "JAVA_TOO_OLD",
            f"Java {MIN_JAVA}+ is needed, but {binary} is Java {major}: "
            "install openjdk-17-jre-headless or point JAVA_HOME at a newer JDK",
        )
    return Java(binary=binary, home=binary.resolve().parent.parent, major=major)


def _java_major(binary: Path) -> int:
    out = subprocess.run(
        [str(binary), "-version"], capture_output=True, text=True, timeout=60, check=False
    )
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not match:
        raise StackError("JAVA_MISSING", f"{binary} -version printed no version: {out.stderr}")
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8" means Java 8


def find_maven(for_what: str) -> str:
    """The ``mvn`` command, needed only while something is not yet fetched."""
    found = shutil.which("mvn")
    if not found:
        raise StackError(
            "MAVEN_MISSING",
            f"Maven (mvn) is needed once to fetch {for_what} from Maven Central and is not on "
            "PATH: apt-get install maven",
        )
    return found
