# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title InsuranceFund
@license MIT
@notice The insurance fund of vyperp (PROTOCOL.md §10): an ERC-4626 vault
        of the collateral token. Its inflows (insurance share of fees,
        liquidation fees, funding residue) accrue as the cash of its own
        Clearinghouse account (subaccount 0) and are collected into the
        vault, permissionlessly and before every deposit, mint, withdraw and
        redeem. Its only outflow besides withdrawals is `cover`: bad debt of
        a clearinghouse account, paid to the clearinghouse, at most
        `payout_cap` x assets per event. Withdrawals are by request: request,
        wait the cooldown, then withdraw within the window; requested shares
        keep bearing losses until they are redeemed. Withdrawals wait while
        a loss may be visible but not booked (PROTOCOL.md §11.0): while the
        index of a market listed on the clearinghouse is invalid, and while
        a `hold` on an account below zero is active.
@custom:security First-depositor inflation: assets are tracked in storage
        (`total_assets_stored`), so tokens sent to the contract never move
        the share price; on top of that, virtual shares and assets
        (10**DECIMALS_OFFSET shares, 1 asset) make a donation booked through
        `skim` cost the donor more than any victim can lose to rounding.
        Every share/asset conversion rounds in favour of the vault. `cover`
        never calls back into the clearinghouse (it runs inside the
        clearinghouse's reentrancy lock). Fee-on-transfer and rebasing
        collateral tokens are not supported. A holder cannot redeem at the
        pre-loss price while a loss is visible but not booked: not while an
        index is invalid (liquidations wait too), nor while anyone has put a
        `hold` on an account below zero; anyone releases a hold once the
        account is back at equity >= 0 (its deficit booked). Left open: a
        redeem in the block where the loss first shows, before any `hold`.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed
from ethereum.ercs import IERC4626

from snekmate.auth import ownable
from snekmate.auth import ownable_2step
from snekmate.tokens import erc20
from snekmate.utils import math

from .interfaces import IInsuranceFund

implements: IInsuranceFund
implements: IERC20
implements: IERC20Detailed
implements: IERC4626

initializes: ownable
initializes: ownable_2step[ownable := ownable]
initializes: erc20[ownable := ownable]

exports: (
    # ERC-20 shares (transfer and transferFrom are defined below: shares
    # under an open withdraw request are locked)
    erc20.name,
    erc20.symbol,
    erc20.decimals,
    erc20.totalSupply,
    erc20.balanceOf,
    erc20.allowance,
    erc20.approve,
    # two-step ownership (parameters, clearinghouse)
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


interface IClearinghouseFund:
    def insurance_fund() -> address: view
    def insurance_account() -> uint256: view
    def COLLATERAL() -> address: view
    def PRECISION() -> uint256: view
    def cash(account: uint256) -> int256: view
    def withdraw(subaccount: uint256, amount: uint256, to: address): nonpayable
    def markets(index: uint256) -> address: view
    def market_count() -> uint256: view
    def margin(account: uint256) -> (int256, uint256, uint256, uint256): view


interface IMarketOracle:
    def ORACLE() -> address: view


interface IIndexStatus:
    def index_status() -> (bool, uint256, uint256): view


struct WithdrawRequest:
    shares: uint256
    unlock_time: uint256        # withdrawable from
    expiry_time: uint256        # withdrawable until (inclusive)


WAD: constant(uint256) = 10**18
# shares have the asset's decimals + DECIMALS_OFFSET; 10**DECIMALS_OFFSET
# virtual shares (and 1 virtual asset unit) make an inflation attack cost the
# attacker about 10**6 times what it can take from a victim
DECIMALS_OFFSET: public(constant(uint8)) = 6
VIRTUAL_SHARES: constant(uint256) = 10**6

# hard bounds (PROTOCOL.md §13)
MAX_COOLDOWN: constant(uint256) = 30 * 86_400
MIN_WITHDRAW_WINDOW: constant(uint256) = 3_600
MAX_WITHDRAW_WINDOW: constant(uint256) = 30 * 86_400
# Clearinghouse.MAX_MARKETS: bounds the index check of a withdrawal
MAX_MARKETS: constant(uint256) = 16

asset: public(immutable(address))

# token units held for shareholders; the share price reads this, never balanceOf(self)
total_assets_stored: public(reentrant(uint256))
# WAD fraction of total_assets_stored paid at most per bad-debt event
payout_cap: public(reentrant(uint256))
cooldown: public(uint256)                  # seconds from request to withdrawable
withdraw_window: public(uint256)           # seconds a request stays withdrawable

clearinghouse: public(address)
# cached immutables of the clearinghouse
_ch_account: uint256
_ch_precision: uint256

withdraw_request: public(HashMap[address, WithdrawRequest])

# clearinghouse accounts put on hold below zero and not yet released
held: public(HashMap[uint256, bool])
hold_count: public(uint256)


@deploy
def __init__(
    asset_: address,
    name_: String[25],
    symbol_: String[5],
    payout_cap_: uint256,
    cooldown_: uint256,
    withdraw_window_: uint256,
):
    """
    @notice Deploy the fund over `asset_`; the deployer becomes the owner and
            must then call `set_clearinghouse` once.
    @param asset_ The collateral token (at most 18 decimals).
    @param name_ Share token name.
    @param symbol_ Share token symbol.
    @param payout_cap_ WAD fraction of assets paid at most per bad-debt event (0, 1].
    @param cooldown_ Seconds from a withdraw request to its window (<= 30 days).
    @param withdraw_window_ Seconds the window stays open (1 hour .. 30 days).
    """
    assert asset_ != empty(address), "insurance: zero address"
    dec: uint8 = staticcall IERC20Detailed(asset_).decimals()
    assert dec <= 18, "insurance: asset decimals above 18"
    ownable.__init__()
    ownable_2step.__init__()
    erc20.__init__(name_, symbol_, dec + DECIMALS_OFFSET, name_, "1")
    # the minter role of snekmate's erc20 is never used (mint is not exported)
    erc20.is_minter[msg.sender] = False
    asset = asset_
    self._set_params(payout_cap_, cooldown_, withdraw_window_)


# ================================================================ inflows

@external
def collect() -> uint256:
    """
    @notice Pull the whole token units of the fund's clearinghouse cash into
            the vault (anyone; also done before every deposit, mint,
            withdraw and redeem). The sub-unit remainder stays there.
    @return Token units collected.
    """
    return self._collect()


@external
def skim() -> uint256:
    """
    @notice Book tokens held above `total_assets_stored` (sent directly to
            the contract) into the assets (anyone): a donation to the
            shareholders, so no token is ever stuck.
    @return Token units booked.
    """
    stored: uint256 = self.total_assets_stored
    balance: uint256 = staticcall IERC20(asset).balanceOf(self)
    if balance <= stored:
        return 0
    amount: uint256 = unsafe_sub(balance, stored)  # balance > stored
    self.total_assets_stored = balance
    log IInsuranceFund.Skimmed(amount=amount, total_assets=balance)
    return amount


@external
def cover(account: uint256, inflow: uint256, deficit: uint256) -> uint256:
    """
    @notice Cover bad debt of a clearinghouse account (clearinghouse only).
            The clearinghouse has first transferred `inflow` token units to
            the fund; they are booked, then min(deficit, payout_cap x
            assets) is paid to the clearinghouse. Never calls back into the
            clearinghouse. Shares under a withdraw request bear the loss too.
    @param account The clearinghouse account whose deficit is covered.
    @param inflow Token units the clearinghouse transferred just before.
    @param deficit Token units asked for.
    @return Token units paid.
    """
    assert msg.sender == self.clearinghouse, "insurance: not clearinghouse"
    total: uint256 = self.total_assets_stored + inflow
    assert staticcall IERC20(asset).balanceOf(self) >= total, "insurance: inflow not received"
    paid: uint256 = min(deficit, math._mul_div(total, self.payout_cap, WAD, False))
    total = unsafe_sub(total, paid)  # paid <= total x payout_cap / WAD <= total
    self.total_assets_stored = total
    if paid > 0:
        assert extcall IERC20(asset).transfer(msg.sender, paid, default_return_value=True), "insurance: transfer failed"
    log IInsuranceFund.Covered(account=account, inflow=inflow, deficit=deficit, paid=paid, total_assets=total)
    return paid


# ================================================================ ERC-4626

@external
@view
def totalAssets() -> uint256:
    """
    @notice Token units held for shareholders: the booked assets plus the
            whole token units of the fund's clearinghouse cash (collected
            before any deposit or withdrawal, so previews match).
    """
    return self._total_assets()


@external
@view
def convertToShares(assets: uint256) -> uint256:
    """
    @notice Shares worth `assets` token units (rounded down).
    """
    return self._to_shares(assets, self._total_assets(), False)


@external
@view
def convertToAssets(shares: uint256) -> uint256:
    """
    @notice Token units worth `shares` (rounded down).
    """
    return self._to_assets(shares, self._total_assets(), False)


@external
@view
def maxDeposit(receiver: address) -> uint256:
    """
    @notice No deposit limit.
    """
    return max_value(uint256)


@external
@view
def previewDeposit(assets: uint256) -> uint256:
    """
    @notice Shares `deposit(assets)` would mint now (rounded down).
    """
    return self._to_shares(assets, self._total_assets(), False)


@external
def deposit(assets: uint256, receiver: address) -> uint256:
    """
    @notice Deposit `assets` token units (pulled from the caller, who must
            have approved them) for shares to `receiver`, rounded down.
    @return Shares minted.
    """
    self._collect()
    shares: uint256 = self._to_shares(assets, self.total_assets_stored, False)
    self._deposit(assets, shares, receiver)
    return shares


@external
@view
def maxMint(receiver: address) -> uint256:
    """
    @notice No mint limit.
    """
    return max_value(uint256)


@external
@view
def previewMint(shares: uint256) -> uint256:
    """
    @notice Token units `mint(shares)` would pull now (rounded up).
    """
    return self._to_assets(shares, self._total_assets(), True)


@external
def mint(shares: uint256, receiver: address) -> uint256:
    """
    @notice Mint exactly `shares` to `receiver`, pulling the token units
            they are worth (rounded up) from the caller.
    @return Token units pulled.
    """
    self._collect()
    assets: uint256 = self._to_assets(shares, self.total_assets_stored, True)
    self._deposit(assets, shares, receiver)
    return assets


@external
@view
def maxWithdraw(owner: address) -> uint256:
    """
    @notice Token units `owner` can withdraw now: the value of
            min(requested shares, balance) while its request's window is
            open, else 0 (also 0 while withdrawals wait: `withdrawals_wait`).
    """
    return self._to_assets(self._max_redeem(owner), self._total_assets(), False)


@external
@view
def previewWithdraw(assets: uint256) -> uint256:
    """
    @notice Shares `withdraw(assets)` would burn now (rounded up).
    """
    return self._to_shares(assets, self._total_assets(), True)


@external
def withdraw(assets: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Withdraw exactly `assets` token units to `receiver`, burning
            `owner`'s shares (rounded up) out of its open withdraw request.
            A caller other than `owner` spends its share allowance. Reverts
            while withdrawals wait (`withdrawals_wait`).
    @return Shares burned.
    """
    self._collect()
    shares: uint256 = self._to_shares(assets, self.total_assets_stored, True)
    self._withdraw(assets, shares, receiver, owner)
    return shares


@external
@view
def maxRedeem(owner: address) -> uint256:
    """
    @notice Shares `owner` can redeem now: min(requested shares, balance)
            while its request's window is open, else 0 (also 0 when they
            are worth less than one token unit: redeem would revert, and
            while withdrawals wait: `withdrawals_wait`).
    """
    shares: uint256 = self._max_redeem(owner)
    if self._to_assets(shares, self._total_assets(), False) == 0:
        return 0
    return shares


@external
@view
def previewRedeem(shares: uint256) -> uint256:
    """
    @notice Token units `redeem(shares)` would pay now (rounded down).
    """
    return self._to_assets(shares, self._total_assets(), False)


@external
def redeem(shares: uint256, receiver: address, owner: address) -> uint256:
    """
    @notice Redeem `shares` of `owner` (out of its open withdraw request)
            for the token units they are worth now (rounded down), to
            `receiver`. A caller other than `owner` spends its share
            allowance. Reverts while withdrawals wait (`withdrawals_wait`).
    @return Token units paid.
    """
    self._collect()
    assets: uint256 = self._to_assets(shares, self.total_assets_stored, False)
    self._withdraw(assets, shares, receiver, owner)
    return assets


# ================================================================ withdraw requests

@external
def request_withdraw(shares: uint256):
    """
    @notice Ask to withdraw `shares` of the caller: withdrawable from now +
            cooldown for withdraw_window seconds (the parameters in force
            now). Replaces any earlier request. The shares stay locked
            (not transferable) and keep bearing losses until redeemed or
            the window expires.
    """
    assert shares > 0, "insurance: zero shares"
    assert shares <= erc20.balanceOf[msg.sender], "insurance: shares above balance"
    unlock: uint256 = block.timestamp + self.cooldown
    expiry: uint256 = unlock + self.withdraw_window
    self.withdraw_request[msg.sender] = WithdrawRequest(shares=shares, unlock_time=unlock, expiry_time=expiry)
    log IInsuranceFund.WithdrawRequested(owner=msg.sender, shares=shares, unlock_time=unlock, expiry_time=expiry)


@external
def cancel_withdraw_request():
    """
    @notice Drop the caller's withdraw request, unlocking its shares
            (logged as a request of 0 shares).
    """
    assert self.withdraw_request[msg.sender].shares != 0, "insurance: no withdraw request"
    self.withdraw_request[msg.sender] = empty(WithdrawRequest)
    log IInsuranceFund.WithdrawRequested(owner=msg.sender, shares=0, unlock_time=0, expiry_time=0)


@external
@view
def locked_shares(owner: address) -> uint256:
    """
    @notice Shares of `owner` that cannot be transferred: those of its
            withdraw request until the request's window expires.
    """
    return self._locked(owner)


# ================================================================ losses not yet booked

@external
def hold(account: uint256):
    """
    @notice Make withdrawals wait for the deficit of a clearinghouse
            account (anyone): its equity must be below zero at a valid
            index (Clearinghouse.margin reverts with the oracle's reason
            otherwise). The loss is visible but not booked until the
            account is liquidated and settled; `release` lifts the hold.
    """
    assert not self.held[account], "insurance: account already held"
    assert self._equity(account) < 0, "insurance: account not below zero"
    self.held[account] = True
    self.hold_count += 1
    log IInsuranceFund.Held(account=account)


@external
def release(account: uint256):
    """
    @notice Lift the hold on an account (anyone) once its equity is >= 0 at
            a valid index: its deficit was booked (a settled account has
            cash 0 and no position) or the price came back.
    """
    assert self.held[account], "insurance: account not held"
    assert self._equity(account) >= 0, "insurance: account below zero"
    self.held[account] = False
    self.hold_count -= 1
    log IInsuranceFund.Released(account=account)


@external
@view
def withdrawals_wait() -> bool:
    """
    @notice True while withdrawals and redemptions wait for a loss that may
            be visible but not booked: a hold is active, or the index of a
            market listed on the clearinghouse is invalid (stale, below
            quorum or beyond the guard: liquidations wait too).
    """
    return self._withdrawals_wait()


# ================================================================ ERC-20 transfers

@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transfer of shares; shares under an open withdraw
            request cannot leave.
    """
    self._check_unlocked(msg.sender, amount)
    erc20._transfer(msg.sender, to, amount)
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transferFrom of shares (spends the caller's allowance);
            shares under an open withdraw request cannot leave.
    """
    self._check_unlocked(owner, amount)
    erc20._spend_allowance(owner, msg.sender, amount)
    erc20._transfer(owner, to, amount)
    return True


# ================================================================ admin

@external
def set_clearinghouse(clearinghouse_: address):
    """
    @notice Connect the clearinghouse (owner, once). It must name this fund
            as its insurance fund and use the same collateral.
    """
    ownable._check_owner()
    assert self.clearinghouse == empty(address), "insurance: clearinghouse already set"
    assert clearinghouse_ != empty(address), "insurance: zero address"
    ch: IClearinghouseFund = IClearinghouseFund(clearinghouse_)
    assert staticcall ch.insurance_fund() == self, "insurance: clearinghouse of another fund"
    assert staticcall ch.COLLATERAL() == asset, "insurance: clearinghouse of another asset"
    self.clearinghouse = clearinghouse_
    self._ch_account = staticcall ch.insurance_account()
    self._ch_precision = staticcall ch.PRECISION()
    log IInsuranceFund.ClearinghouseSet(clearinghouse=clearinghouse_)


@external
def set_params(payout_cap_: uint256, cooldown_: uint256, withdraw_window_: uint256):
    """
    @notice Set the fund parameters (owner), within hard bounds:
            0 < payout_cap <= 1 (WAD), cooldown <= 30 days,
            1 hour <= withdraw_window <= 30 days. Open requests keep the
            times they were made with.
    """
    ownable._check_owner()
    self._set_params(payout_cap_, cooldown_, withdraw_window_)


# ================================================================ internals

@internal
def _set_params(payout_cap_: uint256, cooldown_: uint256, withdraw_window_: uint256):
    assert payout_cap_ > 0 and payout_cap_ <= WAD, "insurance: payout cap out of range"
    assert cooldown_ <= MAX_COOLDOWN, "insurance: cooldown above 30 days"
    assert withdraw_window_ >= MIN_WITHDRAW_WINDOW and withdraw_window_ <= MAX_WITHDRAW_WINDOW, "insurance: withdraw window out of range"
    self.payout_cap = payout_cap_
    self.cooldown = cooldown_
    self.withdraw_window = withdraw_window_
    log IInsuranceFund.FundParamsSet(payout_cap=payout_cap_, cooldown=cooldown_, withdraw_window=withdraw_window_)


@internal
@view
def _pending() -> uint256:
    """
    @dev Whole token units of the fund's clearinghouse cash (0 when
         negative or with no clearinghouse).
    """
    ch: address = self.clearinghouse
    if ch == empty(address):
        return 0
    cash: int256 = staticcall IClearinghouseFund(ch).cash(self._ch_account)
    if cash <= 0:
        return 0
    return convert(cash, uint256) // self._ch_precision


@internal
@view
def _total_assets() -> uint256:
    return self.total_assets_stored + self._pending()


@internal
@view
def _withdrawals_wait() -> bool:
    """
    @dev A hold is active, or an index is invalid (`withdrawals_wait`).
    """
    return self.hold_count != 0 or not self._indexes_valid()


@internal
@view
def _indexes_valid() -> bool:
    """
    @dev The index of every market listed on the clearinghouse is valid
         (`index_status`, which never reverts; at most MAX_MARKETS read).
    """
    ch: address = self.clearinghouse
    if ch == empty(address):
        return True
    n: uint256 = staticcall IClearinghouseFund(ch).market_count()
    for i: uint256 in range(n, bound=MAX_MARKETS):
        market: address = staticcall IClearinghouseFund(ch).markets(i)
        valid: bool = False
        price: uint256 = 0
        fresh: uint256 = 0
        valid, price, fresh = staticcall IIndexStatus(staticcall IMarketOracle(market).ORACLE()).index_status()
        if not valid:
            return False
    return True


@internal
@view
def _equity(account: uint256) -> int256:
    """
    @dev The account's equity (WAD); reverts with the oracle's reason when
         an index it depends on is invalid.
    """
    ch: address = self.clearinghouse
    assert ch != empty(address), "insurance: no clearinghouse"
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    withdrawable: uint256 = 0
    equity, im, mm, withdrawable = staticcall IClearinghouseFund(ch).margin(account)
    return equity


@internal
def _collect() -> uint256:
    amount: uint256 = self._pending()
    if amount == 0:
        return 0
    # the fund owns subaccount 0 of its clearinghouse account, so it may withdraw
    extcall IClearinghouseFund(self.clearinghouse).withdraw(0, amount, self)
    total: uint256 = self.total_assets_stored + amount
    self.total_assets_stored = total
    log IInsuranceFund.Collected(amount=amount, total_assets=total)
    return amount


@internal
@view
def _to_shares(assets: uint256, total: uint256, roundup: bool) -> uint256:
    return math._mul_div(assets, erc20.totalSupply + VIRTUAL_SHARES, total + 1, roundup)


@internal
@view
def _to_assets(shares: uint256, total: uint256, roundup: bool) -> uint256:
    return math._mul_div(shares, total + 1, erc20.totalSupply + VIRTUAL_SHARES, roundup)


@internal
def _deposit(assets: uint256, shares: uint256, receiver: address):
    assert shares > 0, "insurance: zero shares"
    assert receiver != empty(address), "insurance: zero address"
    assert extcall IERC20(asset).transferFrom(msg.sender, self, assets, default_return_value=True), "insurance: transfer failed"
    self.total_assets_stored += assets
    erc20._mint(receiver, shares)
    log IERC4626.Deposit(sender=msg.sender, owner=receiver, assets=assets, shares=shares)


@internal
def _withdraw(assets: uint256, shares: uint256, receiver: address, owner: address):
    assert receiver != empty(address), "insurance: zero address"
    r: WithdrawRequest = self.withdraw_request[owner]
    assert r.shares != 0, "insurance: no withdraw request"
    assert block.timestamp >= r.unlock_time, "insurance: cooldown not over"
    assert block.timestamp <= r.expiry_time, "insurance: withdraw window expired"
    assert shares <= r.shares, "insurance: above requested shares"
    assert assets > 0, "insurance: zero assets"
    assert self.hold_count == 0, "insurance: account on hold, withdrawals wait"
    assert self._indexes_valid(), "insurance: index invalid, withdrawals wait"
    if msg.sender != owner:
        erc20._spend_allowance(owner, msg.sender, shares)
    if shares == r.shares:
        self.withdraw_request[owner] = empty(WithdrawRequest)
    else:
        self.withdraw_request[owner].shares = unsafe_sub(r.shares, shares)  # shares < r.shares
    erc20._burn(owner, shares)
    # assets <= value of all shares < total + 1 (virtual shares and assets)
    self.total_assets_stored -= assets
    assert extcall IERC20(asset).transfer(receiver, assets, default_return_value=True), "insurance: transfer failed"
    log IERC4626.Withdraw(sender=msg.sender, receiver=receiver, owner=owner, assets=assets, shares=shares)


@internal
@view
def _locked(owner: address) -> uint256:
    r: WithdrawRequest = self.withdraw_request[owner]
    if block.timestamp > r.expiry_time:
        return 0
    return r.shares


@internal
@view
def _max_redeem(owner: address) -> uint256:
    r: WithdrawRequest = self.withdraw_request[owner]
    if r.shares == 0 or block.timestamp < r.unlock_time or block.timestamp > r.expiry_time:
        return 0
    if self._withdrawals_wait():
        return 0
    return min(r.shares, erc20.balanceOf[owner])


@internal
@view
def _check_unlocked(owner: address, amount: uint256):
    locked: uint256 = self._locked(owner)
    if locked == 0:
        return
    balance: uint256 = erc20.balanceOf[owner]
    # above the balance: left to erc20._transfer's own reason
    if amount <= balance:
        assert balance - amount >= locked, "insurance: shares locked by withdraw request"
