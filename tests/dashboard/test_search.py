"""The traces page's search state: URL <-> form <-> store query, and its refusals."""

from __future__ import annotations

import pytest

from dashboard import SearchParams
from dashboard._search import format_utc, parse_utc
from storage import BadQuery

NOW_S = 1_764_150_000.0


def test_a_search_survives_the_round_trip_through_its_url() -> None:
    params = SearchParams(service="orders", operation="orders/create", tags="zone=a rack=r1",
                          min_ms="1.5", lookback="6h", errors=True, limit=500)  # fmt: skip
    url = params.query_string()
    assert url.startswith("?service=orders&operation=orders%2Fcreate&tags=zone%3Da+rack%3Dr1")
    assert SearchParams.from_query(url) == params
    assert SearchParams().query_string() == ""  # an empty form is a bare link


def test_the_store_query_has_every_condition() -> None:
    query = SearchParams.from_query(
        "?service=orders&tags=zone%3Da&min_ms=2&max_ms=10.5&errors=1&limit=20&lookback=1h"
    ).to_query(now_s=NOW_S)
    assert (query.service, query.tags, query.errors_only, query.limit) == (
        "orders", {"zone": "a"}, True, 20
    )  # fmt: skip
    assert (query.min_duration_us, query.max_duration_us) == (2000, 10_500)
    assert query.start_min_us == int((NOW_S - 3600) * 1e6) and query.start_max_us is None


def test_a_custom_range_and_the_next_page() -> None:
    params = SearchParams(service="orders", lookback="custom", start="2026-11-30 10:00",
                          end="2026-11-30T11:00:00Z")  # fmt: skip
    query = params.to_query()
    assert query.start_min_us == parse_utc("start", "2026-11-30 10:00:00")
    assert query.start_max_us - query.start_min_us == 3600 * 1_000_000
    older = params.older(query.start_min_us + 1234)
    assert older.to_query().start_max_us == query.start_min_us + 1234  # exact to the µs
    assert parse_utc("t", format_utc(1_764_150_000_123_456)) == 1_764_150_000_123_456


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?lookback=1h", "choose a service"),
        ("?service=s&min_ms=abc", "min duration is a number"),
        ("?service=s&max_ms=nan", "finite, non-negative"),
        ("?service=s&min_ms=-1", "finite, non-negative"),
        ("?service=s&min_ms=inf", "finite, non-negative"),
        ("?service=s&tags=novalue", "a tag filter is key=value"),
        ("?service=s&lookback=custom&start=yesterday", "start is a UTC time"),
        ("?service=s&lookback=custom&start=2026-11-30&end=2026-11-29", "must be after"),
        ("?service=s&lookback=3w", "lookback is one of"),
    ],
)
def test_bad_input_is_a_sentence_not_a_traceback(query: str, message: str) -> None:
    with pytest.raises(BadQuery, match=message):
        SearchParams.from_query(query).to_query()


def test_unknown_keys_and_odd_limits_fall_back_to_defaults() -> None:
    params = SearchParams.from_query({"service": ["a", "b"], "limit": "7", "junk": "x"})
    assert (params.service, params.limit) == ("b", 100)
