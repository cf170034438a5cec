import boa

ZERO = "0x0000000000000000000000000000000000000000"


def test_mint__by_minter__credits_balance_and_supply(token, deployer, holder):
    amount = 1_000 * 10 ** token.decimals()
    token.mint(holder, amount, sender=deployer)
    event = token.get_logs()[0]
    assert (type(event).__name__, event.sender, event.receiver, event.value) == (
        "Transfer",
        ZERO,
        holder,
        amount,
    )
    assert token.balanceOf(holder) == amount
    assert token.totalSupply() == amount


def test_mint__not_minter__reverts(token, attacker):
    with boa.reverts("erc20: access is denied"):
        token.mint(attacker, 10**6, sender=attacker)


def test_mint__to_zero_address__reverts(token, deployer):
    with boa.reverts("erc20: mint to the zero address"):
        token.mint(ZERO, 1, sender=deployer)


def test_set_minter__new_minter_can_mint(token, deployer, holder):
    minter = boa.env.generate_address("faucet")
    token.set_minter(minter, True, sender=deployer)
    token.mint(holder, 5, sender=minter)
    assert token.balanceOf(holder) == 5
    token.set_minter(minter, False, sender=deployer)
    with boa.reverts("erc20: access is denied"):
        token.mint(holder, 5, sender=minter)


def test_set_minter__not_owner__reverts(token, attacker):
    with boa.reverts("ownable: caller is not the owner"):
        token.set_minter(attacker, True, sender=attacker)


def test_transfer_ownership__moves_minter_role(token, deployer, holder):
    new_owner = boa.env.generate_address("new-token-owner")
    token.transfer_ownership(new_owner, sender=deployer)
    assert token.owner() == new_owner
    assert token.is_minter(new_owner)
    assert not token.is_minter(deployer)
    with boa.reverts("erc20: access is denied"):
        token.mint(holder, 1, sender=deployer)
    token.mint(holder, 1, sender=new_owner)


def test_burn__holder_burns_own_tokens(token, deployer, holder):
    token.mint(holder, 100, sender=deployer)
    token.burn(40, sender=holder)
    assert token.balanceOf(holder) == 60
    assert token.totalSupply() == 60
