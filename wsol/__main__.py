"""``python -m wsol ...`` (and ``torchrun -m wsol ...``) run the CLI."""

from wsol.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
