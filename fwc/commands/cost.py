"""`fwc cost`: expected rule evaluations per packet, per hook, under a traffic mix."""

from __future__ import annotations

import json
import sys


def register(sub) -> None:
    p = sub.add_parser("cost", help="expected rule evaluations per packet (per hook)",
                       description="Estimate how many rules the kernel evaluates per packet, per "
                       "hook, under a traffic mix, using the simulator.  A set or map lookup "
                       "counts as one rule.")
    from fwc.commands.translate import add_ruleset_inputs
    add_ruleset_inputs(p)
    p.add_argument("--traffic", metavar="MIX", default=None,
                   help="traffic mix in percent, e.g. est=90,new=7,scan=3 (the default): "
                        "established-connection packets, new connections to accepted services, "
                        "background scans")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampled traffic")
    p.add_argument("-O", "--optimize", action="store_true",
                   help="also show the cost after `fwc translate -O` (same traffic)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from fwc.commands.translate import load_inputs
    from fwc.cost import build_traffic, cost, parse_mix

    mix = parse_mix(args.traffic)
    left_out: list = []
    rs = load_inputs(args.files, args.src, args.family, warnings=left_out)
    from fwc.commands.translate import print_warnings
    print_warnings(left_out)
    traffic = build_traffic(rs, mix, args.seed)
    results = {"input": cost(rs, traffic)}
    if args.optimize:
        from fwc.passes import optimize
        results["optimized"] = cost(optimize(rs), traffic)
    if args.json:
        out = {"services": traffic.services, "packets": len(traffic.items), "mix": mix}
        for name, c in results.items():
            out[name] = {"per_hook": c.per_hook, "total": c.total, "per_class": c.per_class}
        sys.stdout.write(json.dumps(out, sort_keys=True) + "\n")
        return 0
    sys.stdout.write(f"traffic: {len(traffic.items)} probe packets, {traffic.services} accepted "
                     f"services, mix " + ",".join(f"{k}={v:g}" for k, v in mix.items()) + "\n")
    for name, c in results.items():
        sys.stdout.write(f"\n{name}:\n{c.format()}\n")
    if "optimized" in results and results["input"].total > 0:
        ratio = results["optimized"].total / results["input"].total
        sys.stdout.write(f"\noptimized / input: {ratio:.3f}\n")
    return 0
