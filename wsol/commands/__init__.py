"""One module per ``wsol`` subcommand (see ``wsol/cli.py`` for the contract)."""
