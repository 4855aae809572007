"""How fwc's running time grows with its input: each case runs at N and 4N rules (or sets,
commands, findings) and prints the median CPU seconds of both and the growth ratio.  A linear
command grows about 4x; a quadratic one 16x.  The shapes are those a scaling hunt found
quadratic or worse (2026-12-03) and fixed: keep them linear.

    .venv/bin/python bench/scaling.py [--reps 3] [--only SUBSTRING] [--n 1000]

The reference for each ratio is the same command on the N-sized input, measured in the same
run (interleaved with the 4N one), so a loaded machine moves both figures alike.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
FWC = [sys.executable, "-m", "fwc"]


def _ip(i: int) -> str:
    return f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"


def _filter(rules: list[str]) -> str:
    return "\n".join(["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]",
                      ":OUTPUT ACCEPT [0:0]", *rules, "COMMIT", ""])


def log_drop_pairs(n: int) -> str:  # -O sets: two interleaved blocklists
    out = []
    for i in range(n):
        out += [f'-A INPUT -s {_ip(2 * i)}/32 -j LOG --log-prefix "bl "',
                f"-A INPUT -s {_ip(2 * i)}/32 -j DROP"]
    return _filter(out)


def marks(n: int) -> str:  # -O sets: a merge whose verdict does not end the chain
    rules = [f"-A PREROUTING -s {_ip(2 * i)}/32 -j MARK --set-mark 1" for i in range(n)]
    return "\n".join(["*mangle", ":PREROUTING ACCEPT [0:0]", *rules, "COMMIT", ""])


def prefix_ports(n: int) -> str:  # -O lookups: concatenated intervals
    return _filter([f"-A INPUT -s 10.{i >> 8 & 255}.{i & 255}.0/24 -p tcp --dport {1000 + i} "
                    "-j ACCEPT" for i in range(n)])


def kube(n: int) -> str:  # -O inline: thousands of single-use chains
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]"]
    rules = ["-A PREROUTING -j KUBE-SERVICES", "-A OUTPUT -j KUBE-SERVICES",
             "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"]
    for i in range(n):
        svc, sep = f"KUBE-SVC-{i:06d}", f"KUBE-SEP-{i:06d}"
        nat += [f":{svc} - [0:0]", f":{sep} - [0:0]"]
        vip, ep = f"10.96.{i >> 8 & 255}.{i & 255}", f"10.244.{i >> 8 & 255}.{i & 255}"
        rules += [f"-A KUBE-SERVICES -d {vip}/32 -p tcp -m tcp --dport 80 -j {svc}",
                  f"-A {svc} -j {sep}", f"-A {sep} -s {ep}/32 -j KUBE-MARK-MASQ",
                  f"-A {sep} -p tcp -m tcp -j DNAT --to-destination {ep}:8080"]
    return "\n".join(nat + rules + ["COMMIT", ""])


def family(n: int, v6: bool) -> str:  # --inet: aligning two long chains
    out = []
    for i in range(n):
        if i % 3 == 0:
            out.append(f"-A INPUT -s {'2001:db8::' + format(i, 'x') if v6 else _ip(i)} -j DROP")
        else:
            out.append(f"-A INPUT -p tcp --dport {1 + i} -j ACCEPT")
    return _filter(out)


def ipsets(n: int) -> str:  # nft backend: one declared set per ipset
    return _filter([f"-A INPUT -p tcp --dport {1 + i % 60000} -m set --match-set s{i} src "
                    "-j ACCEPT" for i in range(n)])


def check_script(n: int) -> str:  # scripts: the idempotent -C || -A idiom
    lines = ["#!/bin/sh"]
    for i in range(n):
        r = f"INPUT -s {_ip(i)} -p tcp --dport 22 -j ACCEPT"
        lines.append(f"iptables -C {r} 2>/dev/null || iptables -A {r}")
    return "\n".join(lines) + "\n"


def delete_script(n: int) -> str:
    adds = [f"iptables -A INPUT -s {_ip(i)} -j DROP" for i in range(n)]
    dels = [f"iptables -D INPUT -s {_ip(i)} -j DROP" for i in reversed(range(n // 2))]
    return "\n".join(["#!/bin/sh", *adds, *dels]) + "\n"


def shadowed(n: int) -> str:  # lint: one finding per rule
    return _filter(["-A INPUT -s 10.0.0.0/8 -j ACCEPT"] +
                   [f"-A INPUT -s {_ip(i)} -j DROP" for i in range(n)])


def weekdays(n: int) -> str:  # nft backend: -m time day intervals
    return _filter([f"-A INPUT -p tcp --dport {1 + i} -m time --timestart 08:{i % 60:02d} "
                    "--timestop 23:59 --weekdays Mon -j ACCEPT" for i in range(n)])


def service_policy(n: int) -> str:  # compile: the unreachable-rule check on services only
    return "input policy drop {\n" + "".join(f"  allow tcp/{i + 1}\n" for i in range(n)) + "}\n"


def big_set(n: int) -> str:  # simulate: lookups in a set of n intervals
    elems = ", ".join(f"10.{i >> 8 & 255}.{i & 255}.0/25" for i in range(n))
    return ("table ip t {\n set bl {\n  type ipv4_addr\n  flags interval\n"
            f"  elements = {{ {elems} }}\n }}\n chain c {{\n"
            "  type filter hook input priority 0; policy accept;\n  ip saddr @bl drop\n }\n}\n")


def big_set_cases(n: int) -> str:
    import json
    return json.dumps([{"name": str(i), "probe": {"dir": "in", "src": f"10.{i % 7}.{i % 251}.200",
                                                  "dst": "192.0.2.1", "dport": 22}}
                       for i in range(200)])


# (name, generator(n) -> [(file suffix, text)...], fwc arguments with {0} {1} for the files,
#  base N)
CASES = [
    ("translate -O: LOG+DROP blocklist pairs", lambda n: [(".rules", log_drop_pairs(n))],
     ["translate", "-O", "{0}"], 1000),
    ("translate -O: MARK rules merged", lambda n: [(".rules", marks(n))],
     ["translate", "-O", "{0}"], 1000),
    ("translate -O: prefix . port lookup", lambda n: [(".rules", prefix_ports(n))],
     ["translate", "-O", "{0}"], 250),
    ("translate -O: kube-proxy services", lambda n: [(".rules", kube(n))],
     ["translate", "-O", "{0}"], 500),
    ("translate --inet: two families", lambda n: [(".rules", family(n, False)),
                                                 (".rules", family(n, True))],
     ["translate", "--inet", "{0}", "{1}"], 1000),
    ("translate: one ipset per rule", lambda n: [(".rules", ipsets(n))],
     ["translate", "{0}"], 2000),
    ("translate: script of -C || -A", lambda n: [(".sh", check_script(n))],
     ["translate", "{0}"], 1000),
    ("translate: script of -A then -D", lambda n: [(".sh", delete_script(n))],
     ["translate", "{0}"], 1000),
    ("lint: shadowed rules", lambda n: [(".rules", shadowed(n))], ["lint", "{0}"], 1000),
    ("translate: weekday rules", lambda n: [(".rules", weekdays(n))],
     ["translate", "{0}"], 100),
    ("compile: allow tcp/N, no addresses", lambda n: [(".policy", service_policy(n))],
     ["compile", "{0}"], 1000),
    ("simulate: 200 cases, set of N intervals", lambda n: [(".nft", big_set(n)),
                                                            (".json", big_set_cases(n))],
     ["simulate", "{0}", "--cases", "{1}"], 5000),
]


def cpu_seconds(argv: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", help="substring of the case names to run")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every base N")
    args = ap.parse_args()
    print(f"{'case':<42} {'N':>6} {'cpu s':>7} {'4N cpu s':>9} {'ratio':>6}")
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for name, gen, fwc_args, base in CASES:
            if args.only and args.only not in name:
                continue
            n = max(1, int(base * args.scale))
            argvs = []
            for size in (n, 4 * n):
                paths = []
                for k, (suffix, text) in enumerate(gen(size)):
                    p = os.path.join(d, f"in{size}_{k}{suffix}")
                    with open(p, "w") as f:
                        f.write(text)
                    paths.append(p)
                argvs.append(FWC + [a.format(*paths) for a in fwc_args] + ["-o", os.devnull]
                             if fwc_args[0] in ("translate", "compile") else
                             FWC + [a.format(*paths) for a in fwc_args])
            small, big = [], []
            for _ in range(args.reps):  # interleaved: both sizes see the same machine
                small.append(cpu_seconds(argvs[0]))
                big.append(cpu_seconds(argvs[1]))
            a, b = statistics.median(small), statistics.median(big)
            ratio = b / a if a > 0 else float("nan")
            worst = max(worst, ratio)
            print(f"{name:<42} {n:>6} {a:>7.2f} {b:>9.2f} {ratio:>6.1f}", flush=True)
    print(f"\nlinear growth is ~4x per 4x input (start-up makes small inputs look better); "
          f"worst ratio {worst:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
