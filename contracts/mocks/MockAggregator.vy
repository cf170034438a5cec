# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title MockAggregator
@license MIT
@notice A Chainlink AggregatorV3-compatible price feed for local chains and
        tests: the owner sets (answer, updatedAt) directly.
@custom:security Test-only.
"""

decimals: public(immutable(uint8))
description: public(String[32])
version: public(constant(uint256)) = 4

owner: public(address)
answer: public(int256)
updated_at: public(uint256)
round_id: public(uint80)


@deploy
def __init__(decimals_: uint8, description_: String[32]):
    """
    @notice Deploy a mock feed with the given answer decimals.
    """
    decimals = decimals_
    self.description = description_
    self.owner = msg.sender


@external
def set_answer(answer_: int256, updated_at_: uint256):
    """
    @notice Set the feed's answer and its update time (a new round).
    """
    assert msg.sender == self.owner, "aggregator: not owner"
    self.answer = answer_
    self.updated_at = updated_at_
    self.round_id += 1


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice The latest round, in Chainlink's AggregatorV3 format.
    """
    return (self.round_id, self.answer, self.updated_at, self.updated_at, self.round_id)
