"""`fwc lint`: warnings about a ruleset (unreachable rules, dropped replies, ...) and notes."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("lint", help="warn about rules that probably do not do what was meant",
                       description="Check a ruleset for unreachable rules, chains that drop "
                       "replies because no rule accepts ESTABLISHED packets, dropped loopback, "
                       "IPv6 neighbour discovery or DNS, chains nothing jumps to; notes say "
                       "where the established-first fast path cannot go first and what "
                       "nftables cannot express.  Exit 1 when there is a warning.")
    from fwc.commands.translate import add_ruleset_inputs
    add_ruleset_inputs(p)
    p.add_argument("--no-notes", action="store_true", help="print warnings only")
    p.add_argument("--json", action="store_true", help="one JSON object per finding")
    p.set_defaults(func=run)


def run(args) -> int:
    from fwc.commands.translate import load_inputs
    from fwc.linter import lint

    left_out: list = []
    rs = load_inputs(args.files, args.src, args.family, warnings=left_out)
    from fwc.commands.translate import print_warnings
    print_warnings(left_out)
    found = [f for f in lint(rs) if not (args.no_notes and f.level == "note")]
    for f in found:
        sys.stdout.write((json.dumps(f.to_json(), sort_keys=True) if args.json
                          else f.format()) + "\n")
    warnings = sum(f.level == "warning" for f in found)
    if not args.json:
        notes = len(found) - warnings
        sys.stderr.write(f"fwc lint: {warnings} warning(s), {notes} note(s)\n")
    return 1 if warnings else 0
