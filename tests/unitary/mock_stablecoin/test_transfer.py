import boa

MAX_UINT = 2**256 - 1
ZERO = "0x0000000000000000000000000000000000000000"


def _fund(token, deployer, who, amount):
    token.mint(who, amount, sender=deployer)


def test_transfer__moves_balance(token, deployer, holder, recipient):
    unit = 10 ** token.decimals()
    _fund(token, deployer, holder, 100 * unit)
    assert token.transfer(recipient, 30 * unit, sender=holder)
    assert token.balanceOf(holder) == 70 * unit
    assert token.balanceOf(recipient) == 30 * unit
    assert token.totalSupply() == 100 * unit


def test_transfer__emits_transfer(token, deployer, holder, recipient):
    _fund(token, deployer, holder, 10)
    token.transfer(recipient, 7, sender=holder)
    event = token.get_logs()[0]
    assert (type(event).__name__, event.sender, event.receiver, event.value) == (
        "Transfer",
        holder,
        recipient,
        7,
    )


def test_transfer__exceeds_balance__reverts(token, deployer, holder, recipient):
    _fund(token, deployer, holder, 10)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        token.transfer(recipient, 11, sender=holder)


def test_transfer__to_zero_address__reverts(token, deployer, holder):
    _fund(token, deployer, holder, 10)
    with boa.reverts("erc20: transfer to the zero address"):
        token.transfer(ZERO, 1, sender=holder)


def test_approve__sets_allowance(token, holder, spender):
    assert token.approve(spender, 123, sender=holder)
    event = token.get_logs()[0]
    assert (type(event).__name__, event.owner, event.spender, event.value) == (
        "Approval",
        holder,
        spender,
        123,
    )
    assert token.allowance(holder, spender) == 123
    token.approve(spender, 0, sender=holder)
    assert token.allowance(holder, spender) == 0


def test_transfer_from__spends_allowance(token, deployer, holder, spender, recipient):
    _fund(token, deployer, holder, 100)
    token.approve(spender, 60, sender=holder)
    assert token.transferFrom(holder, recipient, 40, sender=spender)
    assert token.balanceOf(holder) == 60
    assert token.balanceOf(recipient) == 40
    assert token.allowance(holder, spender) == 20


def test_transfer_from__infinite_allowance_not_decreased(token, deployer, holder, spender, recipient):
    _fund(token, deployer, holder, 100)
    token.approve(spender, MAX_UINT, sender=holder)
    token.transferFrom(holder, recipient, 100, sender=spender)
    assert token.allowance(holder, spender) == MAX_UINT


def test_transfer_from__insufficient_allowance__reverts(token, deployer, holder, spender, recipient):
    _fund(token, deployer, holder, 100)
    token.approve(spender, 10, sender=holder)
    with boa.reverts("erc20: insufficient allowance"):
        token.transferFrom(holder, recipient, 11, sender=spender)


def test_transfer_from__without_approval__reverts(token, deployer, holder, attacker):
    _fund(token, deployer, holder, 100)
    with boa.reverts("erc20: insufficient allowance"):
        token.transferFrom(holder, attacker, 1, sender=attacker)


def test_transfer_from__exceeds_balance__reverts(token, deployer, holder, spender, recipient):
    _fund(token, deployer, holder, 5)
    token.approve(spender, 100, sender=holder)
    with boa.reverts("erc20: transfer amount exceeds balance"):
        token.transferFrom(holder, recipient, 6, sender=spender)
