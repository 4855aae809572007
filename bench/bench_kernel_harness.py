"""How fast is the real-kernel harness?  Target: < 5 ms per packet on average.

Runs N rulesets x M cases (a mix of in/out/fwd, IPv4/IPv6, accepted/dropped/rejected,
with setup packets) through one KernelHarness and prints ms per packet.

    sudo .venv/bin/python bench/bench_kernel_harness.py [rulesets] [cases]
"""

from __future__ import annotations

import random
import sys
import time

from fwc.packet import cases_from_json
from fwc.testing.compare import kernel_verdicts
from fwc.testing.kernel import KernelHarness


def ruleset(i: int) -> tuple:
    ports = ", ".join(str(p) for p in sorted({22, 80, 443, 1000 + i, 2000 + 7 * i}))
    text = f"""
table inet filter {{
    chain input {{
        type filter hook input priority 0; policy drop;
        ct state established,related accept
        iifname "lo" accept
        tcp dport {{ {ports} }} accept
        tcp dport 113 reject with tcp reset
        udp dport 514 reject
    }}
    chain forward {{
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        tcp dport {{ 80, 443 }} accept
    }}
    chain output {{
        type filter hook output priority 0; policy accept;
        tcp dport 25 reject
    }}
}}
"""
    return ("nft", text)


def case_mix(n: int, seed: int) -> list:
    rnd = random.Random(seed)
    raw = []
    for k in range(n):
        l3 = rnd.choice(["ipv4", "ipv6"])
        remote = "198.51.100.53" if l3 == "ipv4" else "2001:db8:a::53"
        kind = rnd.randrange(6)
        if kind == 0:
            raw.append({"probe": {"dir": "in", "l3": l3, "dport": rnd.choice([22, 23, 80, 113, 8080])}})
        elif kind == 1:
            raw.append({"probe": {"dir": "fwd", "l3": l3, "dport": rnd.choice([80, 81, 443])}})
        elif kind == 2:
            raw.append({"probe": {"dir": "out", "l3": l3, "dport": rnd.choice([25, 80])}})
        elif kind == 3:
            raw.append({"setup": [{"dir": "out", "l3": l3, "proto": "udp", "dst": remote, "sport": 5353,
                                   "dport": 53}],
                        "probe": {"dir": "in", "l3": l3, "proto": "udp", "src": remote, "sport": 53,
                                  "dport": 5353}})
        elif kind == 4:
            raw.append({"probe": {"dir": "in", "l3": l3, "proto": "udp", "dport": rnd.choice([514, 515])}})
        else:
            raw.append({"setup": [{"dir": "out", "l3": l3, "dst": remote, "dport": 443, "flags": "S"},
                                  {"dir": "in", "l3": l3, "src": remote, "sport": 443, "dport": 40000,
                                   "flags": "SA"}],
                        "probe": {"dir": "out", "l3": l3, "dst": remote, "dport": 443, "flags": "A"}})
        raw[-1]["name"] = f"c{k}"
    return cases_from_json(raw)


def main() -> None:
    n_rulesets = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    n_cases = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    with KernelHarness() as h:
        packets = 0
        verdicts: dict[str, int] = {}
        start = time.perf_counter()
        for i in range(n_rulesets):
            cases = case_mix(n_cases, i)
            packets += sum(1 + len(c.setup) for c in cases)
            for r in kernel_verdicts(ruleset(i), cases, h):
                verdicts[r.verdict] = verdicts.get(r.verdict, 0) + 1
        elapsed = time.perf_counter() - start
    print(f"{n_rulesets} rulesets x {n_cases} cases, {packets} packets in {elapsed:.2f} s: "
          f"{elapsed / packets * 1000:.2f} ms/packet, {elapsed / (n_rulesets * n_cases) * 1000:.2f} ms/case "
          f"(ruleset loads included); verdicts {verdicts}")


if __name__ == "__main__":
    main()
