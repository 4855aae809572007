"""Command-line entry point.  Each subcommand lives in `fwc/commands/<name>.py` with
`register(subparsers)`; errors become `FILE:LINE:COL: error: ...` and an exit code, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import errno
import os
import sys
from typing import Optional, Sequence

from fwc.errors import ErrorGroup, FwcError

COMMANDS = ("translate", "simulate", "compile", "lint", "import_", "cost")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors exit 2 with one line, like every other error
        self.print_usage(sys.stderr)
        sys.stderr.write(f"fwc: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fwc", description="Firewall ruleset compiler: iptables <-> nftables, "
                     "policy files, simulation.")
    from fwc import __version__
    parser.add_argument("--version", action="version", version=f"fwc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"fwc.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"fwc.commands.{name}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


def report(err: FwcError) -> None:
    sys.stderr.write(err.format(caret=sys.stderr.isatty()) + "\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    if argv is None:  # (the `fwc` command itself: one run per process)
        from fwc import gcpause
        gcpause.FREEZE_AFTER = True
    # a number of any length is read, so that it gets its reader's located range error
    # (Python refuses to convert more than 4300 digits by default)
    sys.set_int_max_str_digits(0)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ErrorGroup as group:
        for e in group.errors:
            report(e)
        return group.exit_code
    except FwcError as e:
        report(e)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # a bug in fwc: one line, not a traceback (FWC_DEBUG=1 shows it)
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EBADF, errno.EIO,
                                                  errno.EDQUOT):
            # stdout full or gone (the -o outputs' own errors are located)
            sys.stderr.write(f"fwc: error: cannot write output: {e.strerror}\n")
            return 2
        if os.environ.get("FWC_DEBUG"):
            raise
        sys.stderr.write(f"fwc: internal error: {type(e).__name__}: {e} (this is a bug in fwc; "
                         "run with FWC_DEBUG=1 for the traceback)\n")
        return 1
