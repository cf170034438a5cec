# pragma version 0.4.3
"""
@title book_layout
@license MIT
@notice The packed storage words of a PerpMarket's order book, one place
        for the market that writes them and the Lens that reads them
        (PerpMarket.order_word, level_word, book_word, account_orders_word).
        Constants only: a module of no state, imported, never initialized.
"""

# order word: next (40) | prev (40) | tick (56) | lots (64) | account (48) | is_buy (1) | reduce_only (1)
O_NEXT: constant(uint256) = 0
O_PREV: constant(uint256) = 40
O_TICK: constant(uint256) = 80
O_LOTS: constant(uint256) = 136
O_ACCT: constant(uint256) = 200
O_BUY: constant(uint256) = 248
O_RO: constant(uint256) = 249
# level word (key tick * 2 + is_bid): next worse (56) | prev better (56) | head (40) | tail (40) | lots (64)
# Book links: each level is a doubly linked queue of orders (head first), each
# side a doubly linked list of levels (best first). A removal writes only the
# links read later, so three kinds stay stale: a tail order's next link (the
# next order placed at the level rewrites it), the best level's prev link (a
# better level arriving rewrites it) and an emptied level's word (dead: its tail
# order is cleared and nothing links to it; a level is live while its tail order
# rests, and reopening the price rewrites the word, a warm slot).
L_NEXT: constant(uint256) = 0
L_PREV: constant(uint256) = 56
L_HEAD: constant(uint256) = 112
L_TAIL: constant(uint256) = 152
L_LOTS: constant(uint256) = 192
# book word: best bid (56) | best ask (56) | last trade (56) | next order id (40)
B_BID: constant(uint256) = 0
B_ASK: constant(uint256) = 56
B_LAST: constant(uint256) = 112
B_NEXT_ID: constant(uint256) = 168
# account order word: count (15) | kept (1) | bid tick-lots (120) | ask tick-lots (120)
# `kept` is set by the account's first order and never cleared: the word stays
# non-zero, so an account that comes back to the book rewrites a warm value
# instead of paying for a fresh slot (20,000 gas)
A_COUNT: constant(uint256) = 0
A_KEPT: constant(uint256) = 1 << 15
A_BIDS: constant(uint256) = 16
A_ASKS: constant(uint256) = 136

# field masks (a packed field of n bits: (word >> shift) & Mn)
M1: constant(uint256) = 2**1 - 1
M15: constant(uint256) = 2**15 - 1
M40: constant(uint256) = 2**40 - 1
M48: constant(uint256) = 2**48 - 1
M56: constant(uint256) = 2**56 - 1
M64: constant(uint256) = 2**64 - 1
M120: constant(uint256) = 2**120 - 1
