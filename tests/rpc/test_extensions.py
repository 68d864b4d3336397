"""The one extension registry: decorator, call, dotted path and entry point; one error type."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

import instrument
import rpc
import storage


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed distribution (a real .dist-info on sys.path) declaring entry points."""
    (tmp_path / "cs_plugin_mod.py").write_text(
        textwrap.dedent(
            """
            LOADED = True

            class Sticky:
                def select(self, providers, invocation):
                    return providers[-1]

            def broken():
                raise RuntimeError("no")
            """
        )
    )
    info = tmp_path / "cs_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: cs-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[callscope.testkind]\nsticky = cs_plugin_mod:Sticky\nbad = cs_plugin_mod:missing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("cs_plugin_mod", None)


def test_entry_points_are_listed_without_import_and_loaded_on_first_use(plugin_dist):
    point = rpc.ExtensionPoint("testkind")
    assert point.group == "callscope.testkind"
    assert "sticky" in point.names() and "cs_plugin_mod" not in sys.modules
    sticky = point.get("sticky")
    assert sticky.__name__ == "Sticky" and "cs_plugin_mod" in sys.modules
    assert point.get("sticky") is sticky  # cached
    with pytest.raises(rpc.ExtensionError, match=r"testkind 'bad' .* failed to load"):
        point.get("bad")


def test_decorator_call_and_dotted_path_share_one_kind():
    point = rpc.extension_point("test_kinds_a")
    assert rpc.extension_point("test_kinds_a") is point and "test_kinds_a" in rpc.extension_kinds()

    @rpc.extension("test_kinds_a", "plain")
    class Plain:
        pass

    assert point.get("plain") is Plain
    point.register_lazy("json_module", "json:dumps")
    assert point.get("json_module")([1]) == "[1]"
    point.register_lazy("mod", "textwrap")
    assert point.get("mod") is textwrap
    assert point.names() == ["json_module", "mod", "plain"]


def test_one_error_type_with_a_stable_code():
    point = rpc.extension_point("test_kinds_b")
    point.register("one", int)
    with pytest.raises(rpc.ExtensionError) as info:
        point.get("two")
    err = info.value
    assert err.code == "BAD_REQUEST" and isinstance(err, LookupError)
    assert "no test_kinds_b named 'two'; known: one" in err.message
    with pytest.raises(rpc.ExtensionError, match="already registered"):
        point.register("one", float)
    point.register("one", float, replace=True)
    assert point.get("one") is float
    point.register_lazy("ghost", "no_such_module_anywhere:x")
    with pytest.raises(rpc.ExtensionError, match="failed to load"):
        point.get("ghost")
    with pytest.raises(rpc.ExtensionError):
        point.register("", int)
    with pytest.raises(rpc.ExtensionError):
        rpc.extension_point("bad kind!")


def test_the_five_old_registries_live_on_it():
    assert rpc.extension_point("codecs").get("json") is rpc.get_codec("json")
    assert rpc.get_codec(2) is rpc.get_codec("json")
    assert rpc.extension_point("balancers").get("random")
    assert "traceidratio" in rpc.extension_point("samplers").names()
    assert "memory" in rpc.extension_point("exporters").names()
    storage.open_span_store("sqlite://:memory:").close()  # a built-in: opened without rpc

    class Elsewhere:
        def open_spans(self, url):
            return url.location

    storage.register_backend("elsewhere", Elsewhere())
    assert storage.open_span_store("elsewhere://here") == "here"
    assert {"sqlite", "elasticsearch", "hbase", "elsewhere"} <= set(
        rpc.extension_point("storage").names()
    )
    for lookup in (
        lambda: rpc.get_codec("yaml"),
        lambda: rpc.get_codec(250),
        lambda: rpc.get_balancer("nope"),
        lambda: instrument.get_sampler("nope"),
    ):
        with pytest.raises(rpc.ExtensionError):
            lookup()
    with pytest.raises(storage.BadQuery, match="no storage backend for nope"):
        storage.open_span_store("nope://x")


def test_codec_ids_stay_unique():
    class Clash:
        name, id = "clash", 1

        def encode(self, obj):
            return b""

        def decode(self, data):
            return None

    with pytest.raises(rpc.ExtensionError, match="clashes"):
        rpc.register_codec(Clash())
    with pytest.raises(rpc.ExtensionError, match=r"1\.\.255"):
        Clash.id = 0
        rpc.register_codec(Clash())
