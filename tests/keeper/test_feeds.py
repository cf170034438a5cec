from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from keeper.feeds import CsvReplayFeed, FeedExhausted, PriceFeed, RandomWalkFeed, parse_price_csv

INITIAL = {"BTC-PERP": 100_000.0, "ETH-PERP": 3_000.0}


def _walk(seed: int, steps: int = 50) -> list[dict[str, float]]:
    feed = RandomWalkFeed(INITIAL, seed=seed, volatility=0.01, venue_noise=0.001)
    return [feed.step() for _ in range(steps)]


def test_random_walk__same_seed__same_path() -> None:
    assert _walk(7) == _walk(7)


def test_random_walk__other_seed__other_path() -> None:
    assert _walk(7) != _walk(8)


def test_random_walk__prices_stay_positive_and_move() -> None:
    path = _walk(1, steps=500)
    assert all(p > 0 for step in path for p in step.values())
    assert path[-1]["BTC-PERP"] != INITIAL["BTC-PERP"]


def test_random_walk__path_independent_of_venue_draws_and_other_markets() -> None:
    a = RandomWalkFeed(INITIAL, seed=3, volatility=0.01, venue_noise=0.001)
    b = RandomWalkFeed({"BTC-PERP": 100_000.0}, seed=3, volatility=0.01, venue_noise=0.001)
    for _ in range(20):
        a.step()
        a.venue_prices("BTC-PERP", 5)
        b.step()
    assert a.prices["BTC-PERP"] == b.prices["BTC-PERP"]


def test_random_walk__zero_volatility__flat() -> None:
    feed = RandomWalkFeed(INITIAL, seed=1, volatility=0.0, venue_noise=0.0)
    assert feed.step() == INITIAL
    assert feed.venue_prices("ETH-PERP", 3) == [3_000.0] * 3


def test_venue_prices__deterministic_given_seed_and_call_order() -> None:
    def draws(seed: int) -> list[list[float]]:
        feed = RandomWalkFeed(INITIAL, seed=seed, volatility=0.01, venue_noise=0.001)
        out = []
        for _ in range(5):
            feed.step()
            out.append(feed.venue_prices("BTC-PERP", 3))
            out.append(feed.venue_prices("ETH-PERP", 2))
        return out

    assert draws(11) == draws(11)
    assert draws(11) != draws(12)


def test_venue_prices__spread_matches_venue_noise() -> None:
    feed = RandomWalkFeed({"BTC-PERP": 100_000.0}, seed=5, volatility=0.0, venue_noise=0.001)
    prices = feed.venue_prices("BTC-PERP", 5_000)
    rel = [p / 100_000.0 - 1 for p in prices]
    assert len(set(prices)) == len(prices)  # independent per venue
    assert abs(statistics.mean(rel)) < 0.0001
    assert statistics.stdev(rel) == pytest.approx(0.001, rel=0.05)


def test_random_walk__rejects_non_positive_initial() -> None:
    with pytest.raises(ValueError, match="> 0"):
        RandomWalkFeed({"BTC-PERP": 0.0}, seed=1, volatility=0.01, venue_noise=0.0)


def test_csv_long_format(tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(
        "timestamp,market,price\n"
        "1,BTC-PERP,100000\n"
        "1,ETH-PERP,3000\n"
        "2,BTC-PERP,100500.5\n"
        "2,ETH-PERP,2990\n"
        "3,BTC-PERP,101000\n"
    )
    feed = CsvReplayFeed(path)
    assert isinstance(feed, PriceFeed)
    assert feed.markets == ["BTC-PERP", "ETH-PERP"]
    assert feed.step() == {"BTC-PERP": 100_000.0, "ETH-PERP": 3_000.0}
    assert feed.step() == {"BTC-PERP": 100_500.5, "ETH-PERP": 2_990.0}
    assert feed.step() == {"BTC-PERP": 101_000.0}
    assert feed.venue_prices("ETH-PERP", 2) == [2_990.0, 2_990.0]  # last known price carried forward
    assert feed.exhausted
    with pytest.raises(FeedExhausted):
        feed.step()


def test_csv_wide_format(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    path.write_text("timestamp,BTC-PERP,ETH-PERP\n10,100000,3000\n20,99000,\n")
    feed = CsvReplayFeed(path, seed=1, venue_noise=0.001)
    assert feed.step() == {"BTC-PERP": 100_000.0, "ETH-PERP": 3_000.0}
    assert feed.timestamp == 10
    assert feed.step() == {"BTC-PERP": 99_000.0}
    venues = feed.venue_prices("BTC-PERP", 3)
    assert len(set(venues)) == 3 and all(abs(v / 99_000 - 1) < 0.01 for v in venues)
    assert feed.exhausted


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("time,BTC\n1,2\n", "timestamp"),
        ("timestamp,BTC-PERP\n1,-5\n", "> 0"),
        ("timestamp,BTC-PERP\n1,5,6\n", "columns"),
    ],
)
def test_csv__bad_input__clear_error(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_price_csv(text)
