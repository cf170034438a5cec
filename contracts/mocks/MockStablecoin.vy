# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title MockStablecoin
@license MIT
@notice A mintable USDC-like stablecoin for local chains and tests. The
        decimals are a constructor parameter (vyperp must work with any
        collateral decimals from 2 to 18). Built on snekmate's erc20.
@custom:security Test-only: any minter can mint without limit.
"""

from snekmate.auth import ownable
from snekmate.tokens import erc20

initializes: ownable
initializes: erc20[ownable := ownable]

exports: (
    # ERC-20 and EIP-2612
    erc20.IERC20,
    erc20.IERC20Detailed,
    erc20.permit,
    erc20.nonces,
    erc20.DOMAIN_SEPARATOR,
    erc20.eip712Domain,
    # minting (minter role) and burning
    erc20.mint,
    erc20.burn,
    erc20.burn_from,
    erc20.is_minter,
    erc20.set_minter,
    # ownership
    erc20.owner,
    erc20.transfer_ownership,
    erc20.renounce_ownership,
)


@deploy
def __init__(name_: String[25], symbol_: String[5], decimals_: uint8):
    """
    @notice Deploy the token; the deployer becomes owner and minter.
    @param name_ Token name, e.g. "USD Coin (mock)".
    @param symbol_ Token symbol, e.g. "USDC".
    @param decimals_ Decimal places, 2..18.
    """
    assert decimals_ >= 2 and decimals_ <= 18, "token: decimals out of range"
    ownable.__init__()
    erc20.__init__(name_, symbol_, decimals_, name_, "1")
