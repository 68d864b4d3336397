"""Fetching a service's distribution once from Maven Central into the shared cache.

Each artifact set is described by a pom under ``deploy/stack/<name>/``; its version names the
installed directory ``dist/<name>-<version>/``, which a stamp file marks complete. A failed or
interrupted fetch leaves no stamp, so the next ``up`` fetches again (Maven's own ~/.m2 keeps
what was already downloaded, which makes the retry a resume).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from callscope.stack.errors import StackError
from callscope.stack.settings import DEPLOY_DIR
from callscope.stack.ticker import Report, Ticker
from callscope.stack.toolchain import find_maven

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
STAMP = ".callscope-complete"
_POM_NS = "{http://maven.apache.org/POM/4.0.0}"


@dataclass(frozen=True)
class Artifact:
    """One artifact set: a pom whose dependencies are jars (a classpath) or one zip to unpack."""

    name: str
    unpack_zip: bool = False

    @property
    def pom(self) -> Path:
        pom = DEPLOY_DIR / self.name / "pom.xml"
        if not pom.is_file():
            raise StackError(
                "RECIPES_MISSING",
                f"{pom} is missing: callscope stack runs from a source checkout of callscope",
            )
        return pom

    @property
    def version(self) -> str:
        node = ET.parse(self.pom).getroot().find(f"{_POM_NS}version")
        assert node is not None and node.text, f"{self.pom} has no <version>"
        return node.text.strip()

    def home(self, dist: Path) -> Path:
        return dist / f"{self.name}-{self.version}"

    @property
    def digest(self) -> str:
        """Changes whenever the pom does, so an edited pom (a new dependency) fetches again."""
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()[:16]

    def is_fetched(self, dist: Path) -> bool:
        stamp = self.home(dist) / STAMP
        return stamp.is_file() and stamp.read_text().split()[-1:] == [self.digest]


def ensure_fetched(artifact: Artifact, dist: Path, report: Report) -> Path:
    """The installed directory of ``artifact``, fetching it first if no complete copy exists."""
    home = artifact.home(dist)
    if artifact.is_fetched(dist):
        return home
    what = f"{artifact.name} {artifact.version}"
    mvn = find_maven(what)
    logs = dist / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log = logs / f"fetch-{artifact.name}.log"
    staging = dist / f".{home.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    download = staging / ("download" if artifact.unpack_zip else "lib")
    ticker = Ticker(report, f"stack: fetching {what} from Maven Central (once; log {log}) ")
    started = time.monotonic()
    command = [
        mvn, "-B", "-f", str(artifact.pom), f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={download}", "-DincludeScope=runtime",
    ]  # fmt: skip
    _run_with_dots(command, log, ticker, what)
    if artifact.unpack_zip:
        _unpack_single_zip(download, staging / "unpacked")
        tops = list((staging / "unpacked").iterdir())
        if len(tops) != 1:
            raise StackError("FETCH_FAILED", f"{what}: expected one top folder in the zip")
        source = tops[0]
    else:
        source = staging
    shutil.rmtree(home, ignore_errors=True)
    source.rename(home)
    shutil.rmtree(staging, ignore_errors=True)
    (home / STAMP).write_text(f"{what} {artifact.digest}\n")
    size = sum(p.stat().st_size for p in home.rglob("*") if p.is_file()) / 2**20
    ticker.close(f" done in {time.monotonic() - started:.1f} s ({size:.0f} MiB in {home})\n")
    return home


def _run_with_dots(command: list[str], log: Path, ticker: Ticker, what: str) -> None:
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                code = proc.wait(timeout=3)
                break
            except subprocess.TimeoutExpired:
                ticker.tick()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise StackError(
            "FETCH_FAILED",
            f"Maven could not fetch {what} (exit {code}); is Maven Central reachable? log: {log}",
            tail,
        )


def _unpack_single_zip(folder: Path, target: Path) -> None:
    """Unpack the zip Maven copied, keeping the Unix modes stored in it (scripts stay +x)."""
    zips = sorted(folder.glob("*.zip"))
    if len(zips) != 1:
        raise StackError("FETCH_FAILED", f"expected one zip in {folder}, found {len(zips)}")
    target.mkdir(parents=True)
    with zipfile.ZipFile(zips[0]) as archive:
        for info in archive.infolist():
            path = Path(archive.extract(info, target))
            mode = (info.external_attr >> 16) & 0o7777
            if mode:
                path.chmod(mode)
