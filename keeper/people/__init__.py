"""`keeper status` and `keeper trade`: the exchange from a live chain, for people.

    keeper status [--account ADDRESS [--subaccount N]] [--json] [--rpc URL] [--manifest PATH] [--config FILE]
    keeper trade place --market SYMBOL --side buy|sell --size SIZE [--price PRICE]
                       [--type gtc|post-only|ioc|market] [--reduce-only] [--subaccount N] [--key KEY]
                       [--rpc URL] [--manifest PATH] [--config FILE]
    keeper trade cancel --market SYMBOL --order ID [--subaccount N] [--key KEY] [--rpc URL] [--manifest PATH]
    keeper trade cancel-all --market SYMBOL [--subaccount N] [--key KEY] [--rpc URL] [--manifest PATH]

The node and the manifest come from the keeper settings (``--rpc``, ``--manifest``,
``$VYPERP_RPC_URL``, ``$VYPERP_MANIFEST``, ``--config FILE``), as for ``keeper run``.

Layout: :mod:`keeper.people.common` (what both commands use: :class:`PeopleError`, the
:class:`Chain` of a deployment and :func:`connect_chain`, :func:`num`, :func:`health_state`),
:mod:`keeper.people.status` (the snapshot: data, formatting, chain reads
:func:`~keeper.people.status.read_status`), :mod:`keeper.people.trade` (order checks,
:func:`~keeper.people.trade.place`, :func:`~keeper.people.trade.cancel`,
:func:`~keeper.people.trade.cancel_all`), then the CLI glue :mod:`keeper.people.commands`
(:func:`~keeper.people.commands.add_people_commands`, registered in ``keeper.cli.COMMANDS``).
"""
