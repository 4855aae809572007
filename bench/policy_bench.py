"""Benchmark: compile a generated 5,000-rule policy to nftables with fwc, and (when aerleon
installs from PyPI into a throw-away venv) the equivalent aerleon policy in the same run.

    .venv/bin/python bench/policy_bench.py [--rules 5000] [--no-aerleon] [--repeat 3]

Both sides are timed in-process from policy to nft text (fwc: parse + resolve + lower +
emit_nft; aerleon: api.Generate on the policy dict with its naming definitions), best of
--repeat runs.  Target: fwc at least 10x faster.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
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


def time_fwc(text: str, repeat: int) -> tuple[float, int, int]:
    from fwc.backends.nft import emit_nft
    from fwc.policy import compile_full

    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        res = compile_full(text, "bench.policy")
        nft = emit_nft(res.ruleset)
        best = min(best, time.perf_counter() - t)
    rules = sum(len(c.rules) for t in res.ruleset.tables for c in t.chains)
    return best, rules, len(nft)


AERLEON_RUNNER = r'''
import json, sys, time
from aerleon import api
from aerleon.lib import naming
m = json.load(open(sys.argv[1]))
repeat = int(sys.argv[2])
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
best = float("inf")
for _ in range(repeat):
    t = time.perf_counter()
    definitions = naming.Naming()
    definitions.ParseDefinitionsObject(defs, "")
    out = api.Generate([policy], definitions)
    best = min(best, time.perf_counter() - t)
text = next(iter(out.values()))
print(json.dumps({"seconds": best, "chars": len(text),
                  "rules": sum(1 for line in text.splitlines() if line.strip().endswith("accept"))}))
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
    return py


def time_aerleon(m: dict, repeat: int) -> dict | None:
    with tempfile.TemporaryDirectory(prefix="fwc-bench-") as d:
        py = aerleon_python(d)
        if py is None:
            return None
        data = os.path.join(d, "model.json")
        with open(data, "w") as f:
            json.dump(m, f)
        runner = os.path.join(d, "runner.py")
        with open(runner, "w") as f:
            f.write(AERLEON_RUNNER)
        p = subprocess.run([py, runner, data, str(repeat)], capture_output=True, text=True)
        if p.returncode != 0:
            print(f"aerleon: run failed:\n{p.stderr.strip()[-1500:]}")
            return None
        return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-aerleon", action="store_true")
    args = ap.parse_args()
    m = model(args.rules)
    text = fwc_text(m)
    secs, ir_rules, chars = time_fwc(text, args.repeat)
    print(f"fwc:     {args.rules} policy rules ({len(text.splitlines())} lines) -> "
          f"{ir_rules} IR rules, {chars} chars of nft in {secs:.3f} s "
          f"({args.rules / secs:,.0f} policy rules/s)")
    if args.no_aerleon:
        return 0
    a = time_aerleon(m, args.repeat)
    if a is None:
        return 0
    print(f"aerleon: {args.rules} terms -> {a['rules']} accept rules, {a['chars']} chars of nft "
          f"in {a['seconds']:.3f} s")
    ratio = a["seconds"] / secs
    print(f"ratio:   fwc is {ratio:.1f}x faster than aerleon (target >= 10x: "
          f"{'met' if ratio >= 10 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
