"""Soak run of the differential property: many random rulesets x scenarios through every leg.

    .venv/bin/python bench/soak.py --rulesets 2000 --cases 20            # with the kernel (root)
    .venv/bin/python bench/soak.py --rulesets 5000 --no-kernel            # simulator legs only

Legs (fwc.testing.strategies): sim-ir, sim-iptables (IR -> iptables-restore text -> IR),
sim-nft (IR -> nft text -> IR), sim-O (every optimiser pass), and with the kernel
kernel-iptables / kernel-nft / kernel-nft-O (the three texts loaded into the harness's
namespaces).  Unlike the pytest property it does not stop at the first
failure: a leg that raises is left out of that ruleset's comparison and counted by error kind;
every disagreement or error is written as a JSON file (iptables texts, nft text, cases, what
differed) under --out, to be shrunk with the property or turned into a regression test.
Summary line at the end: rulesets, scenarios, disagreements, errors, time.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from fwc.backends.iptables import emit_iptables  # noqa: E402
from fwc.backends.simulate import simulate  # noqa: E402
from fwc.testing import strategies as S  # noqa: E402


def legs(rs, cases, harness) -> tuple[dict, dict]:
    """({leg: results}, {leg: error text}) - every leg that could run, and why the others not."""
    results, errors = {}, {}
    try:
        optimised = S.optimised_leg(rs)
    except Exception as e:  # a pass that raises is a finding too
        optimised, errors["optimise"] = None, f"{type(e).__name__}: {e}"
    if harness is not None:
        try:
            results.update(S.kernel_results(rs, cases, harness, optimised))
        except Exception as e:  # a backend text the kernel refuses is a finding, not a crash
            errors["kernel"] = f"{type(e).__name__}: {e}"
    from fwc.testing.kernel import sim_options

    opts = sim_options()  # the harness's host
    makers = [("sim-ir", lambda: rs), ("sim-iptables", lambda: S.iptables_leg(rs)),
              ("sim-nft", lambda: S.nft_leg(rs))]
    if optimised is not None:
        makers.append(("sim-O", lambda: optimised))
    for name, make in makers:
        try:
            results[name] = simulate(make(), cases, opts)
        except Exception as e:
            errors[name] = f"{type(e).__name__}: {e}"
    if not S.ruleset_ok_for_kernel_sim(rs):  # NATed packets read DROP in the harness
        kern = {k: v for k, v in results.items() if k.startswith("kernel")}
        sims = {k: v for k, v in results.items() if k.startswith("sim")}
        return (kern, sims), errors
    return (results,), errors


def shrink(path: str, case_name: str, harness) -> str:
    """Greedy shrink of a finding: drop tables, rules, matches and comments while the case still
    disagrees; returns the iptables-restore text of what is left and the disagreement."""
    import attrs

    from fwc import ir
    from fwc.backends.nft import emit_nft
    from fwc.frontends.iptables import parse_iptables_save
    from fwc.packet import cases_from_json

    with open(path) as f:
        finding = json.load(f)
    cases = cases_from_json([c for c in finding["cases"] if c["name"] == case_name])
    tables: tuple = ()
    for fam in ("ip", "ip6"):
        if fam in finding["iptables"]:
            tables += parse_iptables_save(finding["iptables"][fam], f"{path}:{fam}", fam).tables

    def lines(rs):
        try:
            emit_iptables(rs), emit_nft(rs)
            groups, _ = legs(rs, cases, harness)
        except Exception:
            return []
        return [line for g in groups if len(g) > 1 for line in S.disagreements(g, cases)]

    def smaller(rs):
        for ti, t in enumerate(rs.tables):
            if len(rs.tables) > 1:
                yield ir.Ruleset(rs.tables[:ti] + rs.tables[ti + 1:])
            for ci, c in enumerate(t.chains):
                for ri, r in enumerate(c.rules):
                    options = [None] + [attrs.evolve(r, matches=r.matches[:i] + r.matches[i + 1:])
                                        for i in range(len(r.matches))]
                    if r.comment is not None:
                        options.append(attrs.evolve(r, comment=None))
                    for new in options:
                        rules = c.rules[:ri] + ((new,) if new is not None else ()) + c.rules[ri + 1:]
                        chains = t.chains[:ci] + (attrs.evolve(c, rules=rules),) + t.chains[ci + 1:]
                        yield ir.Ruleset(rs.tables[:ti] + (attrs.evolve(t, chains=chains),) +
                                         rs.tables[ti + 1:])

    rs = ir.Ruleset(tables)
    if not lines(rs):
        return f"{case_name} of {path} does not disagree (any more)"
    progress = True
    while progress:
        progress = False
        for candidate in smaller(rs):
            if lines(candidate):
                rs, progress = candidate, True
                break
    texts = emit_iptables(rs)
    return "\n".join(f"# {fam}\n{text}" for fam, text in texts.items()) + "\n" + "\n".join(lines(rs))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rulesets", type=int, default=2000)
    ap.add_argument("--cases", type=int, default=20, help="scenarios per ruleset")
    ap.add_argument("--no-kernel", action="store_true", help="simulator legs only")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="bench/out/soak", help="directory for findings (JSON)")
    ap.add_argument("--shrink", nargs=2, metavar=("FINDING.json", "CASE"),
                    help="shrink one finding's ruleset for one of its cases, print it, exit")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    harness = None
    if not args.no_kernel:
        from fwc.testing.kernel import KernelHarness, kernel_available

        ok, why = kernel_available()
        if not ok:
            print(f"kernel harness unavailable ({why}); use --no-kernel", file=sys.stderr)
            return 2
        harness = KernelHarness().__enter__()
    if args.shrink:
        try:
            print(shrink(args.shrink[0], args.shrink[1], harness))
        finally:
            if harness is not None:
                harness.__exit__(None, None, None)
        return 0

    stats = collections.Counter()
    error_kinds: collections.Counter = collections.Counter()
    t0 = time.monotonic()

    def record(kind: str, rs, cases, detail) -> None:
        n = stats["findings"]
        stats["findings"] += 1
        path = os.path.join(args.out, f"{kind}-{n:05d}.json")
        try:
            texts = emit_iptables(rs)
        except Exception as e:
            texts = {"error": str(e)}
        try:
            from fwc.backends.nft import emit_nft
            nft = emit_nft(rs)
        except Exception as e:
            nft = f"# {e}"
        with open(path, "w") as f:
            json.dump({"kind": kind, "iptables": texts, "nft": nft, "detail": detail,
                       "cases": [S.case_json(c) for c in cases]}, f, indent=1)

    @seed(args.seed)
    @settings(max_examples=args.rulesets, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def run(data):
        rs = data.draw(S.rulesets())
        cases = data.draw(S.scenarios(rs, args.cases))
        stats["rulesets"] += 1
        stats["scenarios"] += len(cases)
        try:
            groups, errors = legs(rs, cases, harness)
        except Exception:
            error_kinds["crash"] += 1
            record("crash", rs, cases, traceback.format_exc())
            return
        for leg, err in errors.items():
            error_kinds[f"{leg}: {err[:90]}"] += 1
        if errors:
            stats["rulesets with errors"] += 1
            record("error", rs, cases, errors)
        diffs = [line for g in groups if len(g) > 1 for line in S.disagreements(g, cases)]
        stats["legs compared"] += sum(len(g) for g in groups)
        if diffs:
            stats["rulesets with disagreements"] += 1
            stats["cases disagreeing"] += len(diffs)
            record("diff", rs, cases, diffs)
        if stats["rulesets"] % 100 == 0:
            print(f"... {stats['rulesets']} rulesets, {stats['rulesets with disagreements']} with "
                  f"disagreements, {stats['rulesets with errors']} with errors, "
                  f"{time.monotonic() - t0:.0f} s", flush=True)

    try:
        run()
    finally:
        if harness is not None:
            harness.__exit__(None, None, None)
    took = time.monotonic() - t0
    print(f"rulesets {stats['rulesets']}, scenarios {stats['scenarios']}, "
          f"kernel {'no' if args.no_kernel else 'yes'}, "
          f"rulesets with disagreements {stats['rulesets with disagreements']} "
          f"({stats['cases disagreeing']} cases), rulesets with errors "
          f"{stats['rulesets with errors']}, time {took:.0f} s "
          f"({1000 * took / max(stats['rulesets'], 1):.0f} ms per ruleset)")
    for kind, n in error_kinds.most_common(20):
        print(f"  {n:6d}  {kind}")
    if stats["findings"]:
        print(f"findings written to {args.out}/")
    return 1 if stats["rulesets with disagreements"] or error_kinds else 0


if __name__ == "__main__":
    sys.exit(main())
