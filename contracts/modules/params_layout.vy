# pragma version 0.4.3
"""
@title params_layout
@license MIT
@notice The packed parameter word of a PerpMarket (PerpMarket.params_word),
        one place for the market that writes it and the Lens and the
        liquidation engine that read it. Constants, a pure decoder and the
        order risk the word prices: a
        module of no state, imported, never initialized.
"""

from ..interfaces import IPerpMarket

# params word: imr (30) | mmr (30) | taker_fee (24) | maker_fee (24) | mark_band (30) |
# max_open_orders (10) | max_fills (7) | price_band (29) | min_order_notional (72).
# The rates are kept in units of RATE (1e-9), so set_params takes only whole
# multiples of 1e-9 (RATE_WEI wei); x rate / RATE is then exactly x rate_wad / WAD.
RATE: constant(uint256) = 10**9
RATE_WEI: constant(uint256) = 10**9
K_MMR: constant(uint256) = 30
K_TAKER: constant(uint256) = 60
K_MAKER: constant(uint256) = 84
K_BAND: constant(uint256) = 108
K_ORDERS: constant(uint256) = 138
K_FILLS: constant(uint256) = 148
K_PBAND: constant(uint256) = 155
K_MIN: constant(uint256) = 184
# field masks (a packed field of n bits: (word >> shift) & Mn)
M7: constant(uint256) = 2**7 - 1
M10: constant(uint256) = 2**10 - 1
M24: constant(uint256) = 2**24 - 1
M29: constant(uint256) = 2**29 - 1
M30: constant(uint256) = 2**30 - 1


@internal
@pure
def decode(pw: uint256, max_open_interest: uint256) -> IPerpMarket.MarketParams:
    """
    @dev The parameters of a packed word, in WAD as set_params takes them.
    """
    return IPerpMarket.MarketParams(
        imr=(pw & M30) * RATE_WEI,
        mmr=((pw >> K_MMR) & M30) * RATE_WEI,
        taker_fee=((pw >> K_TAKER) & M24) * RATE_WEI,
        maker_fee=((pw >> K_MAKER) & M24) * RATE_WEI,
        mark_band=((pw >> K_BAND) & M30) * RATE_WEI,
        min_order_notional=(pw >> K_MIN),
        max_open_orders=((pw >> K_ORDERS) & M10),
        max_fills=((pw >> K_FILLS) & M7),
        max_open_interest=max_open_interest,
        price_band=((pw >> K_PBAND) & M29) * RATE_WEI,
    )


@internal
@pure
def order_risk(pw: uint256, bids: uint256, asks: uint256) -> uint256:
    """
    @dev The order risk of resting orders of `bids` + `asks` quote WAD in the
         market of params word `pw` (PROTOCOL.md §8): what their fills can
         lose against the mark, both sides, plus the maker fee:
         ceil((bids + asks) x k), k = ceil((price_band + mark_band) /
         (1 - price_band)) + maker_fee (a fill is within index x (1 +-
         price_band), the mark within index x (1 +- mark_band)).
    """
    pb: uint256 = (pw >> K_PBAND) & M29
    k: uint256 = self._ceil_div((pb + ((pw >> K_BAND) & M30)) * RATE, RATE - pb) + ((pw >> K_MAKER) & M24)
    return self._ceil_div((bids + asks) * k, RATE)


@internal
@pure
def _ceil_div(x: uint256, y: uint256) -> uint256:
    return (x + y - 1) // y
