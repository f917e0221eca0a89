"""The ``wsol`` command line: parse, then dispatch to one library function.

Each subcommand lives in ``wsol/commands/<module>.py`` and provides::

    HELP: str                                   # one line for ``wsol --help``
    DESCRIPTION: str                            # longer text for ``wsol <cmd> --help``
    def add_arguments(parser) -> None           # argparse options (choices read from registries)
    def run(args) -> int                        # calls the library; returns the exit status

Command modules are imported lazily and only the invoked one is imported, so a command whose
module keeps heavy imports inside ``run`` (``evaluate-scoremaps``: no torch) starts fast.

Errors: a :class:`eval.errors.InputError` (``wsol.errors.UserError`` is one),
``cam.errors.CAMInputError``, ``FileNotFoundError`` or ``FileExistsError`` is a user error: one line
on stderr, exit status 2, no traceback unless ``--debug`` is given.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

# name -> module under wsol.commands. The one table of subcommands; help text comes from modules.
COMMANDS: dict[str, str] = {
    "data": "data",
    "evaluate-scoremaps": "evaluate_scoremaps",
    "evaluate": "evaluate",
    "compare": "compare",
    "figure": "figure",
    "train": "train",
    "robustness": "robustness",
    "demo": "demo",
    "zoo": "zoo",
}

_SUMMARY = """\
wsol-toolkit: weakly-supervised object localization, measured exactly.

Commands (run `wsol <command> --help` for details):
{rows}

Global options: --debug (show tracebacks), --version.
"""


def _load(name: str) -> ModuleType:
    return importlib.import_module(f"wsol.commands.{COMMANDS[name]}")


def _top_help() -> str:
    rows = []
    for name in COMMANDS:
        try:
            text = _load(name).HELP
        except Exception as exc:  # a broken command must not hide the others
            text = f"(unavailable: {exc})"
        rows.append(f"  {name:<20} {text}")
    return _SUMMARY.format(rows="\n".join(rows))


def build_parser(name: str) -> argparse.ArgumentParser:
    """The full parser of one subcommand (``wsol <name> ...``)."""
    module = _load(name)
    parser = argparse.ArgumentParser(
        prog=f"wsol {name}",
        description=getattr(module, "DESCRIPTION", module.HELP),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    module.add_arguments(parser)
    return parser


def _user_error_types() -> tuple[type[BaseException], ...]:
    from eval.errors import InputError

    types: list[type[BaseException]] = [InputError, FileNotFoundError, FileExistsError]
    if "cam.errors" in sys.modules or "cam" in sys.modules:
        from cam.errors import CAMInputError

        types.append(CAMInputError)
    return tuple(types)


def _forget_unhandled_interrupt() -> None:
    """Keep the exit status 130 of a handled Ctrl-C. CPython (3.11) marks a KeyboardInterrupt that
    leaves code run by ``exec`` (``dataclasses`` builds its methods so, during an import) as
    unhandled, even when a caller catches it, and then ends the process by SIGINT (status -2)
    whatever it returns; the mark is cleared when ``exec`` runs again."""
    exec("None", {})


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    if not argv or argv[0] in ("-h", "--help") or (argv[0] == "--debug" and len(argv) == 1):
        print(_top_help())
        return 0
    if argv[0] == "--version":
        from wsol import __version__

        print(f"wsol-toolkit {__version__}")
        return 0
    args_in = [a for a in argv if a != "--debug"]  # --debug is accepted anywhere
    name, rest = args_in[0], args_in[1:]
    if name not in COMMANDS:
        print(f"wsol: unknown command {name!r}; choose from: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    try:  # Ctrl-C is one line from here on, also while the command's modules are imported
        parser = build_parser(name)
        args = parser.parse_args(rest)
        args.debug = debug
        return int(_load(name).run(args) or 0)
    except KeyboardInterrupt as exc:
        if debug:
            raise
        detail = str(exc)
        print(f"wsol {name}: interrupted" + (f"; {detail}" if detail else ""), file=sys.stderr)
        _forget_unhandled_interrupt()
        return 130
    except Exception as exc:
        if debug or not isinstance(exc, _user_error_types()):
            raise
        print(f"wsol {name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
