"""Benchmark: compile a generated 5,000-rule policy to nftables with fwc, and (when aerleon
installs from PyPI into a throw-away venv) the equivalent aerleon policy in the same run.

    .venv/bin/python bench/policy_bench.py [--rules 5000] [--repeat 5] [--no-aerleon]

What is timed, on each side in-process after the imports, in a fresh process per repetition
(so no cache of an earlier repetition helps, as for one `fwc compile` call), the sides
interleaved so that machine load hits them alike:

- fwc: `compile_full(text)` (parse, name resolution, lowering to the IR, unreachable-rule
  check, --explain text) + `emit_nft(ruleset)`: policy text -> nft text.  The parse inside it is
  timed in the same run, which gives "fwc without its parse" (statements -> nft text).  A second
  fresh process per repetition times the phases one by one (same work, for the breakdown).
- aerleon, two ways, each in its own fresh process:
  - from its YAML files, the way `aclgen` compiles a policy: definitions and policy as YAML text
    (written before the clock starts), `Naming.ParseYaml`, `yaml.ParsePolicy` (aerleon's own
    loader and policy builder), the nftables generator;
  - from Python dicts: `naming.ParseDefinitionsObject` + `api.Generate` (no parsing at all).
  Both write the same `mixed` nftables output (one inet table, like fwc's); the bench checks.

Printed: medians (and min-max) of --repeat runs, what each side wrote (nft rule lines, chains,
distinct rules, bytes), and three ratios of the medians: both sides from policy text (the
like-for-like compile), neither side parsing (aerleon from dicts against fwc from statements),
and aerleon spared its parse while fwc parses its text (the most conservative).
Target: fwc at least 10x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

NETS, HOSTS, SERVICES = 500, 250, 300


def model(n_rules: int) -> dict:
    """The policy both tools compile: named dual-stack networks, hosts and services, and
    n_rules accept rules `service from network to host`, then drop."""
    nets = {f"net{i}": [f"10.{i // 256}.{i % 256}.0/24", f"2001:db8:{i:x}::/48"]
            for i in range(NETS)}
    hosts = {f"host{i}": [f"172.16.{i // 256}.{i % 256}/32", f"2001:db8:ffff::{i:x}/128"]
             for i in range(HOSTS)}
    services = {f"svc{i}": [("tcp", 1000 + i), ("udp", 1000 + i)] for i in range(SERVICES)}
    rules = [(f"svc{(i * 7) % SERVICES}", f"net{i % NETS}", f"host{(i * 13) % HOSTS}")
             for i in range(n_rules)]
    return {"nets": nets, "hosts": hosts, "services": services, "rules": rules}


def fwc_text(m: dict) -> str:
    out = [f"network {k} = {', '.join(v)}" for k, v in m["nets"].items()]
    out += [f"host {k} = {', '.join(a.split('/')[0] for a in v)}" for k, v in m["hosts"].items()]
    out += [f"service {k} = {', '.join(f'{p}/{n}' for p, n in v)}"
            for k, v in m["services"].items()]
    out.append("input policy drop {")
    out += [f"  allow {s} from {n} to {h}" for s, n, h in m["rules"]]
    out.append("}")
    return "\n".join(out) + "\n"


def nft_shape(text: str) -> dict:
    """Rule lines (statements inside chains, not the type/policy line), chains, distinct rules
    per chain, bytes: to compare what the two tools wrote."""
    rules = chains = distinct = 0
    seen: set = set()
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("chain ") and s.endswith("{"):
            chains += 1
            distinct += len(seen)
            seen = set()
        elif line.startswith(("\t\t", "        ")) and s and not s.startswith(("type ", "#")):
            rules += 1
            seen.add(s)
    distinct += len(seen)
    return {"rule_lines": rules, "chains": chains, "distinct": distinct, "bytes": len(text)}


FWC_RUNNER = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from fwc.backends.nft import emit_nft
from fwc.policy import compile_full
import fwc.policy.resolve as resolve
parsed = [0.0]
_parse = resolve.parse
def timed_parse(*a, **k):  # the text -> statements part of compile_full, timed in the run
    t = time.perf_counter()
    try:
        return _parse(*a, **k)
    finally:
        parsed[0] += time.perf_counter() - t
resolve.parse = timed_parse
text = open(sys.argv[2]).read()
t0 = time.perf_counter()
res = compile_full(text, "bench.policy")
t1 = time.perf_counter()
nft = emit_nft(res.ruleset)
t2 = time.perf_counter()
if len(sys.argv) > 3:
    open(sys.argv[3], "w").write(nft)
ir_rules = sum(len(c.rules) for t in res.ruleset.tables for c in t.chains)
print(json.dumps({"seconds": t2 - t0, "compile": t1 - t0, "emit": t2 - t1, "ir_rules": ir_rules,
                  "parse": parsed[0]}))
'''

# the phases of compile_full one at a time (fwc internals: a breakdown, not the figure compared)
FWC_PHASES = r'''
import json, sys, time
sys.path.insert(0, sys.argv[1])
from fwc.backends.nft import emit_nft
from fwc.gcpause import gc_paused
from fwc.policy.compiler import explain
from fwc.policy.lower import lower
from fwc.policy.parser import parse
from fwc.policy.resolve import Resolver, read_file
from fwc.policy.shadow import shadowed
text = open(sys.argv[2]).read()
out = {}
with gc_paused():
    t = time.perf_counter()
    parse(text, "bench.policy")
    out["parse"] = time.perf_counter() - t
    res = Resolver(read_file)
    t = time.perf_counter()
    res.load(text, "bench.policy")  # parses again: resolution = this minus parse
    res.finish()
    out["resolve"] = time.perf_counter() - t - out["parse"]
    t = time.perf_counter()
    ruleset, expansion = lower(res, [], None)
    out["lower"] = time.perf_counter() - t
    t = time.perf_counter()
    for chain in res.chains.values():
        shadowed(chain.rules)
    out["shadow"] = time.perf_counter() - t
    t = time.perf_counter()
    explain(res, expansion, "bench.policy")
    out["explain"] = time.perf_counter() - t
    t = time.perf_counter()
emit_nft(ruleset)
out["emit"] = time.perf_counter() - t
print(json.dumps(out))
'''

AERLEON_RUNNER = r'''
import json, sys, time
from aerleon import api
from aerleon.lib import naming
m = json.load(open(sys.argv[1]))
defs = {"networks": {}, "services": {}}
for k, v in list(m["nets"].items()) + list(m["hosts"].items()):
    defs["networks"][k.upper()] = {"values": [{"address": a} for a in v]}
for k, v in m["services"].items():
    defs["services"][k.upper()] = [{"port": str(n), "protocol": p} for p, n in v]
terms = [{"name": f"r{i}", "source-address": n.upper(), "destination-address": h.upper(),
          "destination-port": s.upper(), "protocol": "tcp udp", "action": "accept"}
         for i, (s, n, h) in enumerate(m["rules"])]
policy = {"filename": "bench", "filters": [{"header": {"targets": {"nftables": "mixed INPUT DROP"}},
                                             "terms": terms}]}
if sys.argv[2] == "text":
    # aerleon's own input: YAML definitions and policy files (written before the clock starts),
    # read with its loader and turned into nft text as aclgen does
    import yaml
    from aerleon.lib import nftables, yaml as ayaml
    defs_text = yaml.safe_dump(defs)
    pol_text = yaml.safe_dump({"filters": policy["filters"]})
    t = time.perf_counter()
    definitions = naming.Naming()
    definitions.ParseYaml(defs_text, "bench_defs.yaml")
    pol = ayaml.ParsePolicy(pol_text, filename="bench.yaml", definitions=definitions)
    text = str(nftables.Nftables(pol, 2))
    seconds = time.perf_counter() - t
else:
    t = time.perf_counter()
    definitions = naming.Naming()
    definitions.ParseDefinitionsObject(defs, "")
    out = api.Generate([policy], definitions)
    seconds = time.perf_counter() - t
    text = next(iter(out.values()))
if len(sys.argv) > 3:
    open(sys.argv[3], "w").write(text)
print(json.dumps({"seconds": seconds}))
'''


def aerleon_python(workdir: str) -> str | None:
    """A venv with aerleon from PyPI, or None (reason printed) when it will not install."""
    env_dir = os.path.join(workdir, "venv")
    venv.EnvBuilder(with_pip=True).create(env_dir)
    py = os.path.join(env_dir, "bin", "python")
    p = subprocess.run([py, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "aerleon"], capture_output=True, text=True)
    if p.returncode != 0:
        print(f"aerleon: pip install failed, comparison skipped:\n{p.stderr.strip()[-800:]}")
        return None
    v = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('aerleon'))"],
                       capture_output=True, text=True)
    print(f"aerleon {v.stdout.strip()} installed from PyPI into {env_dir}")
    return py


def run_json(cmd: list[str], what: str) -> dict:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{p.stderr.strip()[-1500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def spread(xs: list[float]) -> str:
    return f"{statistics.median(xs):.3f} s (min {min(xs):.3f}, max {max(xs):.3f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-aerleon", action="store_true")
    ap.add_argument("--compare-with", metavar="DIR",
                    help="also time the fwc of another checkout (e.g. the main branch) in the "
                         "same run, end to end")
    args = ap.parse_args()
    m = model(args.rules)
    text = fwc_text(m)
    with tempfile.TemporaryDirectory(prefix="fwc-bench-") as d:
        files = {k: os.path.join(d, k) for k in ("bench.policy", "model.json", "run_fwc.py",
                                                 "run_phases.py", "run_aerleon.py", "fwc.nft",
                                                 "aerleon.nft", "aerleon-text.nft")}
        Path(files["bench.policy"]).write_text(text)
        Path(files["model.json"]).write_text(json.dumps(m))
        Path(files["run_fwc.py"]).write_text(FWC_RUNNER)
        Path(files["run_phases.py"]).write_text(FWC_PHASES)
        Path(files["run_aerleon.py"]).write_text(AERLEON_RUNNER)
        py = None if args.no_aerleon else aerleon_python(d)
        fwc_runs, phase_runs, aer_runs, aer_text_runs, other_runs = [], [], [], [], []
        for i in range(args.repeat):
            out = [files["fwc.nft"]] if i == 0 else []
            fwc_runs.append(run_json([sys.executable, files["run_fwc.py"], str(ROOT),
                                      files["bench.policy"]] + out, "fwc"))
            phase_runs.append(run_json([sys.executable, files["run_phases.py"], str(ROOT),
                                        files["bench.policy"]], "fwc phases"))
            if args.compare_with:
                other_runs.append(run_json([sys.executable, files["run_fwc.py"],
                                            args.compare_with, files["bench.policy"]],
                                           "fwc (--compare-with)"))
            if py is not None:
                out = [files["aerleon.nft"]] if i == 0 else []
                aer_runs.append(run_json([py, files["run_aerleon.py"], files["model.json"],
                                          "dict"] + out, "aerleon"))
                out = [files["aerleon-text.nft"]] if i == 0 else []
                aer_text_runs.append(run_json([py, files["run_aerleon.py"], files["model.json"],
                                               "text"] + out, "aerleon (YAML)"))
        fwc_shape = nft_shape(Path(files["fwc.nft"]).read_text())
        aer_shape = nft_shape(Path(files["aerleon.nft"]).read_text()) if aer_runs else None
        same_text = aer_runs and Path(files["aerleon.nft"]).read_text() == \
            Path(files["aerleon-text.nft"]).read_text()
    secs = [r["seconds"] for r in fwc_runs]
    med = statistics.median(secs)
    print(f"fwc:     {args.rules} policy rules ({len(text.splitlines())} lines) -> "
          f"{fwc_runs[0]['ir_rules']} IR rules -> {fwc_shape['rule_lines']} nft rule lines in "
          f"{fwc_shape['chains']} chain(s), {fwc_shape['bytes']:,} bytes")
    print(f"         {spread(secs)} median of {args.repeat} ({args.rules / med:,.0f} policy "
          f"rules/s): compile_full {statistics.median(r['compile'] for r in fwc_runs):.3f} s "
          f"+ emit_nft {statistics.median(r['emit'] for r in fwc_runs):.3f} s")
    print("         phases (medians): " + ", ".join(
        f"{k} {statistics.median(r[k] for r in phase_runs):.3f} s" for k in phase_runs[0]))
    if other_runs:
        osecs = [r["seconds"] for r in other_runs]
        print(f"fwc at {args.compare_with}: {spread(osecs)} median of {args.repeat}; this "
              f"checkout is {statistics.median(osecs) / med:.1f}x faster")
    if not aer_runs:
        return 0
    asecs = [r["seconds"] for r in aer_runs]
    print(f"aerleon: {args.rules} terms -> {aer_shape['rule_lines']} nft rule lines in "
          f"{aer_shape['chains']} chains (one per term, jumped to from the base chain; "
          f"{aer_shape['distinct']} distinct per chain: its `mixed` output writes each "
          f"protocol's line once per family pass), {aer_shape['bytes']:,} bytes")
    tsecs = [r["seconds"] for r in aer_text_runs]
    print(f"         from its YAML files (aclgen's path: yaml loader, policy builder, nftables "
          f"generator): {spread(tsecs)}; same output as from dicts: "
          f"{'yes' if same_text else 'NO'}")
    print(f"         from Python dicts (api.Generate, no parsing): {spread(asecs)}")
    nsecs = [r["seconds"] - r["parse"] for r in fwc_runs]
    print(f"fwc without its parse (statements -> nft; parse measured in the same runs): "
          f"{spread(nsecs)}")

    def ratio_line(label, aer, ours):
        r = statistics.median(aer) / statistics.median(ours)
        lo = min(a / f for a, f in zip(aer, ours))
        hi = max(a / f for a, f in zip(aer, ours))
        print(f"  {label:<58} {r:5.1f}x  (per run {lo:.1f}-{hi:.1f}x; target >= 10x: "
              f"{'met' if r >= 10 else 'NOT met'})")
        return r
    print("ratio (aerleon / fwc, medians):")
    ratio_line("both from policy text (YAML files / fwc policy text)", tsecs, secs)
    ratio_line("neither parses (aerleon from dicts / fwc from statements)", asecs, nsecs)
    ratio_line("aerleon spared its parse, fwc parsing its text", asecs, secs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
