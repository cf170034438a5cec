"""Helpers of the liquidation state machine (tests/fuzz/test_liquidation_stateful.py):
revert reasons, storage decoding of PerpMarket and the Clearinghouse (titanoboa
introspection, no EVM call, so the invariants stay cheap after every step), and
the book/aggregate consistency checks (PROTOCOL.md §14.3, §14.5)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from boa.contracts.base_evm_contract import BoaError

MASK128 = 2**128 - 1
MASK112 = 2**112 - 1
MASK224 = 2**224 - 1
P_OFFSET = 2**111  # position word: size + 2**111 (112) | open notional + 2**111 (112) | funding epoch (32)
F_OFFSET = 2**223  # funding word: cumulative funding + 2**223 (224) | epoch (32)


def revert_reason(e: BoaError) -> str:
    """The revert reason of the outermost frame (bubbled up from a child
    call), without formatting the whole error (str(e) dumps every storage
    variable and is slow)."""
    frame = e.stack_trace.last_frame
    return str(getattr(frame, "pretty_vm_reason", frame))


def attempt(fn: Callable[[], Any]) -> tuple[bool, Any]:
    """(True, result) or (False, revert reason)."""
    try:
        return True, fn()
    except BoaError as e:
        return False, revert_reason(e)


def bits(word: int, shift: int, nbits: int) -> int:
    return (word >> shift) & ((1 << nbits) - 1)


def unpack_position(word: int) -> tuple[int, int]:
    """PerpMarket packs (size + 2**111) | (open_notional + 2**111) << 112 | funding epoch << 224;
    0 = flat."""
    if word == 0:
        return 0, 0
    return (word & MASK112) - P_OFFSET, ((word >> 112) & MASK112) - P_OFFSET


def unpack_funding(word: int) -> tuple[int, int]:
    """PerpMarket's funding word: (cumulative funding, epoch)."""
    return (word & MASK224) - F_OFFSET, word >> 224


@dataclass
class Order:
    oid: int
    account: int
    is_buy: bool
    tick: int
    lots: int
    reduce_only: bool


@dataclass
class MarketState:
    """A PerpMarket read from storage."""

    positions: dict[int, tuple[int, int]]  # account -> (size, open notional)
    epochs: dict[int, int]  # account -> the funding epoch of its position word
    snapshots: dict[int, int]
    cumulative: int
    epoch: int
    dust: int
    open_interest: tuple[int, int]
    orders: list[Order]
    account_orders: dict[int, int]
    levels: dict[int, int]
    book: int
    raw_orders: dict[int, int]  # order id -> its storage word (links)

    @classmethod
    def read(cls, m) -> MarketState:
        s = m._storage
        words = {a: w for a, w in s._positions.get().items() if w != 0}
        raw_orders = {oid: w for oid, w in s._orders.get().items() if w != 0}
        cumulative, epoch = unpack_funding(s._funding.get())
        orders = [
            Order(
                oid,
                bits(w, 200, 48),
                bits(w, 248, 1) == 1,
                bits(w, 80, 56),
                bits(w, 136, 64),
                bits(w, 249, 1) == 1,
            )
            for oid, w in raw_orders.items()
        ]
        oi = s._open_interest.get()
        return cls(
            positions={a: unpack_position(w) for a, w in words.items()},
            epochs={a: w >> 224 for a, w in words.items()},
            snapshots=dict(s.funding_snapshot.get()),
            cumulative=cumulative,
            epoch=epoch,
            dust=s._funding_dust.get(),
            open_interest=(oi & MASK128, oi >> 128),
            orders=orders,
            account_orders={a: w for a, w in s._account_orders.get().items() if w != 0},
            levels=dict(s._levels.get()),
            book=s._book.get(),
            raw_orders=raw_orders,
        )

    def size(self, account: int) -> int:
        return self.positions.get(account, (0, 0))[0]

    def orders_of(self, account: int) -> list[int]:
        return sorted(o.oid for o in self.orders if o.account == account)

    def unsettled_exact(self) -> int:
        """Σ size x (cumulative - snapshot): unsettled funding in 1e-18 wei."""
        return sum(
            size * (self.cumulative - self.snapshots.get(a, 0)) for a, (size, _) in self.positions.items()
        )

    def check_funding_epochs(self) -> None:
        """A position word written in the accumulator's current epoch skips its funding
        settlement without reading the snapshot: its snapshot must be the accumulator
        (no epoch ahead of the accumulator's either)."""
        for a, e in self.epochs.items():
            assert e <= self.epoch, f"account {a}: epoch {e} ahead of the accumulator's {self.epoch}"
            if e == self.epoch:
                assert self.snapshots.get(a, 0) == self.cumulative, (
                    f"account {a}: epoch {e} is current but snapshot {self.snapshots.get(a, 0)} "
                    f"!= cumulative {self.cumulative}"
                )

    def check_aggregates(self) -> None:
        """§14.3 and §14.5: open interest is the sum of the positions on each
        side (and both sides are equal); each account's order word (count,
        bid and ask tick-lots reserved) is the sum of its resting orders; the
        best bid/ask are the best non-empty levels and the book is not crossed;
        the book's links hold every resting order and each level's lots
        (`check_book_links`)."""
        longs = sum(s for s, _ in self.positions.values() if s > 0)
        shorts = sum(-s for s, _ in self.positions.values() if s < 0)
        assert longs == shorts, f"open interest asymmetric: {longs} long vs {shorts} short"
        assert self.open_interest == (longs, shorts), (
            f"open interest {self.open_interest} != ({longs}, {shorts})"
        )

        per_account: dict[int, list[int]] = {}
        per_level: dict[int, int] = {}
        for o in self.orders:
            assert o.lots > 0, f"resting order {o.oid} with no lots"
            agg = per_account.setdefault(o.account, [0, 0, 0])
            agg[0] += 1
            if not o.reduce_only:
                agg[1 if o.is_buy else 2] += o.lots * o.tick
            key = o.tick * 2 + (1 if o.is_buy else 0)
            per_level[key] = per_level.get(key, 0) + o.lots
        accounts = set(per_account) | set(self.account_orders)
        for a in accounts:
            w = self.account_orders.get(a, 0)
            # count (15) | kept (1, set by the first order, never cleared) | bids | asks
            got = [bits(w, 0, 15), bits(w, 16, 120), bits(w, 136, 120)]
            assert w == 0 or bits(w, 15, 1) == 1, f"account {a} order word {w:#x} lost its kept bit"
            assert got == per_account.get(a, [0, 0, 0]), (
                f"account {a} order word {got} != {per_account.get(a)}"
            )
        best_bid, best_ask = bits(self.book, 0, 56), bits(self.book, 56, 56)
        bid_ticks = [k // 2 for k in per_level if k % 2 == 1]
        ask_ticks = [k // 2 for k in per_level if k % 2 == 0]
        assert best_bid == max(bid_ticks, default=0), f"best bid {best_bid} != {max(bid_ticks, default=0)}"
        assert best_ask == min(ask_ticks, default=0), f"best ask {best_ask} != {min(ask_ticks, default=0)}"
        if best_bid and best_ask:
            assert best_bid < best_ask, f"crossed book: bid {best_bid} >= ask {best_ask}"
        self.check_book_links(per_level)

    def check_book_links(self, per_level: dict[int, int]) -> None:
        """The book as the contract reads it (PerpMarket "book links"): walked from each best
        level, the levels are strictly ordered, each non-best level's prev link is its better
        neighbour, each level's queue (head to tail, prev links of all but the head) holds its
        orders and its lots; every resting order is reached exactly once, every level word
        reached is live (its tail order rests) and every word not reached is dead."""
        resting = {o.oid: o for o in self.orders}
        reached: set[int] = set()
        live_keys: set[int] = set()
        for side, best in ((1, bits(self.book, 0, 56)), (0, bits(self.book, 56, 56))):
            better, tick = 0, best
            while tick:
                key = tick * 2 + side
                assert key not in live_keys, f"level {key} reached twice (a cycle)"
                live_keys.add(key)
                w = self.levels.get(key, 0)
                nxt, prev, head, tail, lots = (
                    bits(w, 0, 56),
                    bits(w, 56, 56),
                    bits(w, 112, 40),
                    bits(w, 152, 40),
                    bits(w, 192, 64),
                )
                if better:
                    assert prev == better, f"level {key}: prev link {prev} != its better neighbour {better}"
                    assert (tick < better) if side else (tick > better), f"level {key} out of order"
                assert tail in resting, f"level {key} reached but its tail order {tail} does not rest"
                oid, before, total = head, 0, 0
                while True:
                    assert oid in resting and oid not in reached, f"level {key}: order {oid} lost or twice"
                    o = resting[oid]
                    assert (o.tick, int(o.is_buy)) == (tick, side), f"order {oid} queued at level {key}"
                    if before:
                        assert bits(self.raw_orders[oid], 40, 40) == before, f"order {oid}: bad prev link"
                    reached.add(oid)
                    total += o.lots
                    if oid == tail:
                        break
                    before, oid = oid, bits(self.raw_orders[oid], 0, 40)
                assert total == lots == per_level.get(key, 0), f"level {key} lots {lots} != orders {total}"
                better, tick = tick, nxt
        assert reached == set(resting), f"resting orders outside the book: {set(resting) - reached}"
        for key, w in self.levels.items():
            if key not in live_keys:
                assert bits(w, 152, 40) not in resting, f"level {key} not reached but its tail rests"


def events(logs, name: str) -> list:
    return [e for e in logs if type(e).__name__ == name]
