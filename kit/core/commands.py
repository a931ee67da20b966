"""One entry point, one sub-command per job: the runner behind ``kit`` and ``python -m data_prep``.

Every sub-command lives in its own module, which provides two functions::

    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int   # the exit code

and is listed once in its command table (:data:`kit.cli.COMMANDS`, :data:`data_prep.cli.COMMANDS`). Only the module
of the command being run is imported, so a broken or slow module cannot get in the way of the others, and
``kit compare --help`` does not pay for torch.
A :class:`kit.core.errors.UserError` becomes ``kit <command>: error: <message>`` and exit code 2, and so does a
flag argparse refuses (:class:`OneLineParser`): one line, no traceback, no usage block. So does a full disk
that no writer named itself (:mod:`kit.core.diskfull`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from kit.core.errors import UserError

__all__ = ["OneLineParser", "build_parser", "run_commands"]


def _version() -> str:
    from kit import __version__

    return __version__


class OneLineParser(argparse.ArgumentParser):
    """argparse with its errors in one line, like every other user error (exit code 2, no usage block).

    ``kit train --epochs abc`` or ``--amp fp8`` used to print the whole usage (a dozen lines for ``kit train``)
    above the sentence that mattered. Sub-command parsers are of this class too (argparse makes them so).
    """

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; `{self.prog} --help` lists the options\n")


def build_parser(
    commands: dict[str, tuple[str, str]], prog: str, description: str, command: str | None = None
) -> argparse.ArgumentParser:
    """The top-level parser; only ``command``'s module is imported to add its arguments."""
    parser = OneLineParser(
        prog=prog, description=description, epilog=f"Run '{prog} COMMAND --help' for the options of one command."
    )
    parser.add_argument("--version", action="version", version=f"vitkit {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    return parser


def _command_in(argv: Sequence[str], commands: dict) -> str | None:
    for token in argv:
        if token in commands:
            return token
        if not token.startswith("-"):
            return None
    return None


def run_commands(
    commands: dict[str, tuple[str, str]], prog: str, description: str, argv: Sequence[str] | None = None
) -> int:
    """Parse ``argv``, run the chosen command, and turn user errors into exit code 2.

    Shared by ``kit`` and ``python -m data_prep``.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(commands, prog, description, _command_in(argv, commands))
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(commands[args.command][0])
    try:
        return int(module.run(args) or 0)
    except UserError as e:
        print(f"{prog} {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"{prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - a full disk a writer did not name itself: still one line
        from kit.core.diskfull import disk_full, is_out_of_space

        filename = getattr(e, "filename", None)
        if filename is None or not is_out_of_space(e, filename):
            raise
        print(f"{prog} {args.command}: error: {disk_full('a file', filename)}", file=sys.stderr)
        return 2
