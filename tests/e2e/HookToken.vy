# pragma version 0.4.3
"""
@title HookToken
@license MIT
@notice Test-only ERC-20 with an ERC-777-like transfer hook: when armed,
        every transfer and transferFrom calls `hook_target` with
        `hook_payload` once its balances have moved (the token is the
        caller: it re-enters the clearinghouse as an account owner). The
        outcome is recorded; in strict mode a failed re-entry reverts the
        whole transfer. Deliberately no reentrancy lock of its own.
@custom:security Test-only: anyone mints; the hook is whatever the test sets.
"""

from ethereum.ercs import IERC20

implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

event HookCalled:
    success: bool
    reason: Bytes[256]

name: public(String[16])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])

hook_target: public(address)
hook_payload: public(Bytes[512])
hook_strict: public(bool)
hook_calls: public(uint256)
hook_successes: public(uint256)
last_reason: public(Bytes[256])
_in_hook: bool


@deploy
def __init__(decimals_: uint8):
    self.name = "Hook token"
    self.symbol = "HOOK"
    self.decimals = decimals_


@external
def mint(to: address, amount: uint256):
    """
    @notice Mint `amount` to `to` (anyone: a test token).
    """
    self.balanceOf[to] += amount
    self.totalSupply += amount
    log Transfer(sender=empty(address), receiver=to, value=amount)


@external
def set_hook(target: address, payload: Bytes[512], strict: bool):
    """
    @notice Arm the hook (target empty: disarmed).
    """
    self.hook_target = target
    self.hook_payload = payload
    self.hook_strict = strict


@external
def approve(spender: address, amount: uint256) -> bool:
    """
    @notice ERC-20 approve.
    """
    self.allowance[msg.sender][spender] = amount
    log Approval(owner=msg.sender, spender=spender, value=amount)
    return True


@external
def approve_for_self(spender: address, amount: uint256):
    """
    @notice Let `spender` pull the token contract's own balance (its deposits).
    """
    self.allowance[self][spender] = amount


@external
def transfer(to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transfer, then the hook.
    """
    self._move(msg.sender, to, amount)
    self._hook()
    return True


@external
def transferFrom(owner: address, to: address, amount: uint256) -> bool:
    """
    @notice ERC-20 transferFrom, then the hook.
    """
    allowed: uint256 = self.allowance[owner][msg.sender]
    if allowed != max_value(uint256):
        assert allowed >= amount, "token: allowance"
        self.allowance[owner][msg.sender] = allowed - amount
    self._move(owner, to, amount)
    self._hook()
    return True


@internal
def _move(owner: address, to: address, amount: uint256):
    assert self.balanceOf[owner] >= amount, "token: balance"
    self.balanceOf[owner] -= amount
    self.balanceOf[to] += amount
    log Transfer(sender=owner, receiver=to, value=amount)


@internal
def _hook():
    target: address = self.hook_target
    if target == empty(address) or self._in_hook:
        return
    self._in_hook = True
    self.hook_calls += 1
    ok: bool = False
    res: Bytes[256] = b""
    ok, res = raw_call(target, self.hook_payload, max_outsize=256, revert_on_failure=False)
    self._in_hook = False
    if ok:
        self.hook_successes += 1
    self.last_reason = res
    log HookCalled(success=ok, reason=res)
    if self.hook_strict:
        assert ok, "hook: re-entry failed"
