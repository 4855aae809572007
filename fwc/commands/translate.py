"""`fwc translate`: read a ruleset in any supported syntax, write it as nftables or iptables."""

from __future__ import annotations

from typing import Optional

import sys

from fwc import ir
from fwc.commands.output import output_path, write_outputs
from fwc.errors import FwcError, FwcSyntaxError, Unsupported


def register(sub) -> None:
    p = sub.add_parser("translate", help="translate iptables <-> nftables (exact, or a located error)",
                       description="Translate a ruleset.  The output means exactly what the input "
                       "meant, or fwc refuses with a located error (exit 1).")
    p.add_argument("files", nargs="*", default=["-"], metavar="FILE",
                   help="input file(s); '-' or nothing reads stdin; give an IPv4 and an IPv6 dump "
                        "together to translate both")
    p.add_argument("--from", dest="src", default="auto",
                   choices=["auto", "iptables", "iptables-script", "nft", "nft-json"],
                   help="input syntax (default: detect)")
    p.add_argument("--to", dest="dst", default="nft", choices=["nft", "iptables"],
                   help="output syntax (default nft)")
    p.add_argument("--family", choices=["ip", "ip6"],
                   help="force the family of iptables-save input / select the output family")
    p.add_argument("-o", "--output", metavar="OUT", type=output_path,
                   help="write here (atomically) instead of stdout; with --to iptables and both "
                        "families, OUT.v4 and OUT.v6")
    p.add_argument("--table", metavar="NAME", help="nft: put each family's chains into one table NAME")
    p.add_argument("--counters", action="store_true", help="nft: add a counter to every rule")
    p.add_argument("--inet", action="store_true",
                   help="nft: merge IPv4 and IPv6 rulesets into one inet table where rules are identical")
    p.add_argument("--drop-unsupported", action="store_true",
                   help="leave out what the output cannot express, with a warning for each "
                        "(stderr) and a comment in the output, instead of failing")
    p.add_argument("--check", action="store_true",
                   help="validate the nft output with libnftables (dry run)")
    p.add_argument("-O", "--optimize", action="store_true",
                   help="run the meaning-preserving optimiser passes")
    p.add_argument("--explain", action="store_true",
                   help="with -O: print what each pass did, or why not, to stderr")
    p.set_defaults(func=run)


def add_ruleset_inputs(p) -> None:
    """The FILE ... / --from / --family arguments of the commands that read rulesets."""
    p.add_argument("files", nargs="*", default=["-"], metavar="FILE",
                   help="ruleset file(s), any syntax `fwc translate` reads")
    p.add_argument("--from", dest="src", default="auto",
                   choices=["auto", "iptables", "iptables-script", "nft", "nft-json"])
    p.add_argument("--family", choices=["ip", "ip6"], help="force the family of iptables input")


def load_inputs(files, src: str, family, keep_refused: bool = False,
                warnings: Optional[list] = None) -> ir.Ruleset:
    from fwc.frontends import load_ruleset

    if files.count("-") > 1:
        raise FwcSyntaxError("stdin ('-') can be read only once", ir.Loc("-"))
    tables: list[ir.Table] = []
    for path in files:
        rs = load_ruleset(path, src, family, keep_refused=keep_refused, warnings=warnings)
        for t in rs.tables:
            if any(o.family == t.family and o.name == t.name for o in tables):
                raise FwcSyntaxError(f"table {t.family} {t.name} is defined by two inputs", t.loc)
            tables.append(t)
    return ir.Ruleset(tuple(tables))


def print_warnings(warnings) -> None:
    for w in warnings:
        sys.stderr.write(w.format().replace(": error: ", ": warning: ", 1) + "\n")


def _check_table_arg(name: str, dst: str) -> None:
    """--table names the output's table: refuse rather than rename what the user chose."""
    from fwc.backends.nft_names import check_table_name

    if dst != "nft":
        raise FwcSyntaxError("--table applies to nft output only (iptables has fixed tables)",
                             ir.Loc("<args>"))
    check_table_name(name, "--table")


def run(args) -> int:
    if args.table is not None:
        _check_table_arg(args.table, args.dst)
    left_out: list[FwcError] = []
    rs = load_inputs(args.files, args.src, args.family, keep_refused=args.drop_unsupported,
                     warnings=left_out)
    print_warnings(left_out)
    if args.optimize:
        try:
            from fwc.passes import optimize
        except ImportError:
            raise Unsupported("the optimiser (-O) is not available in this version", ir.Loc("<args>"))
        def note(n, explain=args.explain):
            if explain or n.level == "warning":  # dead rules are always worth a warning
                sys.stderr.write(n.format() + "\n")
        rs = optimize(rs, explain=note, target=args.dst)
    warnings: list[FwcError] = []
    if args.dst == "nft":
        from fwc.backends.nft import emit_nft_with_warnings

        text, warnings = emit_nft_with_warnings(
            rs, table=args.table, counters=args.counters, inet=args.inet,
            drop_unsupported=args.drop_unsupported)
        if args.check:
            from fwc.nftcheck import check_nft

            problems = check_nft(text)
            if problems:
                raise Unsupported("libnftables rejected the output: " + "; ".join(problems),
                                  ir.Loc(args.output or "<output>"))
        outputs = {args.output: text} if args.output else {None: text}
    else:
        if args.check:
            raise FwcSyntaxError("--check validates nft output only", ir.Loc("<args>"))
        from fwc.backends.iptables import emit_iptables

        texts = emit_iptables(rs)
        if args.family:
            texts = {k: v for k, v in texts.items() if k == args.family}
        if not texts:
            what = f"no {args.family} table" if args.family else "no ip, ip6 or inet table"
            raise Unsupported(f"nothing to write: the input has {what} with rules or chains "
                              "iptables-restore could hold", ir.Loc(args.files[0]))
        if len(texts) > 1 and not args.output:
            raise FwcSyntaxError("the ruleset has IPv4 and IPv6 parts: pass -o PREFIX (writes "
                                 "PREFIX.v4 and PREFIX.v6) or --family ip|ip6", ir.Loc("<args>"))
        if len(texts) > 1:
            outputs = {f"{args.output}.{'v4' if k == 'ip' else 'v6'}": v for k, v in texts.items()}
        else:
            outputs = {args.output: next(iter(texts.values()))}
    print_warnings(warnings)
    write_outputs(outputs)  # (several files: all of them or none)
    return 0


def write_atomically(path, text: str) -> None:
    """All or nothing: a failed run never leaves a half-written output (fwc.commands.output)."""
    write_outputs({path: text})
