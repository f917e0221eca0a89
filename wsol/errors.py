"""User-facing errors: the CLI prints these as one clear line (traceback only with ``--debug``)."""

from eval.errors import InputError


class UserError(InputError):
    """A problem with what the user gave (paths, options, data, checkpoints), not a bug."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a job; the message says what was kept and how to continue (the CLI prints it
    as one line, exit status 130)."""
