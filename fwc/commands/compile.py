"""`fwc compile`: policy file -> nftables or iptables-restore text (docs/policy.md)."""

from __future__ import annotations

import sys

from fwc import ir
from fwc.errors import FwcError, FwcSyntaxError, Unsupported


def register(sub) -> None:
    p = sub.add_parser("compile", help="compile a policy file to nftables or iptables",
                       description="Compile a firewall policy (see docs/policy.md) to nft -f "
                       "text (one inet table 'fwc') or to iptables-restore and "
                       "ip6tables-restore text.")
    p.add_argument("policy", metavar="POLICY", help="policy file ('-' reads stdin)")
    p.add_argument("--to", dest="dst", default="nft", choices=["nft", "iptables"],
                   help="output syntax (default nft)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write here instead of stdout; with --to iptables: OUT.v4 and OUT.v6")
    p.add_argument("-O", "--optimize", action="store_true",
                   help="run the meaning-preserving optimiser passes (as translate -O)")
    p.add_argument("--explain", action="store_true",
                   help="first print, as # comments, the defaults (stateful fast path, "
                        "policies) and what each rule became; the optimiser's notes (where "
                        "the fast path went, with -O what every pass did) go to stderr")
    p.add_argument("--strict", action="store_true",
                   help="treat warnings (unreachable rules...) as errors: exit 1")
    p.set_defaults(func=run)


def _read(path: str) -> str:
    from fwc.policy.resolve import read_file
    try:
        return read_file(path)
    except OSError as e:
        where = "<stdin>" if path == "-" else path
        raise FwcSyntaxError(f"cannot read policy: {e.strerror}", ir.Loc(where)) from None


def render(ruleset: ir.Ruleset, dst: str) -> dict:
    """{family label or None: text}; the iptables form has one entry per family."""
    if dst == "nft":
        from fwc.backends.nft import emit_nft
        return {None: emit_nft(ruleset)}
    from fwc.backends.iptables import emit_iptables
    from fwc.policy.lower import split_ruleset
    return emit_iptables(split_ruleset(ruleset))


def run(args) -> int:
    from fwc.commands.translate import write_atomically
    from fwc.policy import compile_full

    name = "<stdin>" if args.policy == "-" else args.policy
    result = compile_full(_read(args.policy), name)
    warnings = list(result.warnings)
    for w in warnings:
        sys.stderr.write(w.format() + "\n")
    ruleset = result.ruleset
    if args.explain:
        for n in result.notes:
            sys.stderr.write(n.format() + "\n")
    if args.optimize:
        from fwc.passes import optimize

        def note(n):
            if args.explain or n.level == "warning":  # as translate -O: dead rules always
                sys.stderr.write(n.format() + "\n")
            if n.level == "warning":
                warnings.append(n)
        ruleset = optimize(ruleset, explain=note, target=args.dst)
    if args.strict and warnings:
        raise Unsupported(f"{len(warnings)} warning(s) and --strict", warnings[0].loc)
    try:
        texts = render(ruleset, args.dst)
    except ImportError as e:
        raise Unsupported(f"the {args.dst} backend is not available ({e})", ir.Loc(name))
    if args.explain:
        sys.stdout.write(result.explanation)
    if args.dst == "nft":
        write_atomically(args.output, texts[None])
        return 0
    if args.output:
        from fwc.commands.output import write_outputs
        write_outputs({f"{args.output}.{'v4' if fam == 'ip' else 'v6'}": text
                       for fam, text in texts.items()})
        return 0
    for fam in ("ip", "ip6"):
        if fam in texts:
            label = "iptables-restore (IPv4)" if fam == "ip" else "ip6tables-restore (IPv6)"
            sys.stdout.write(f"# ==== {label} ====\n{texts[fam]}")
    return 0


__all__ = ["register", "run", "render", "FwcError"]
