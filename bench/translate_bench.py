"""fwc translate vs iptables-restore-translate on a generated 10,000-rule iptables-save file.

Runs both as child processes, interleaved, N rounds each, and prints the medians, the ratio
(fwc / iptables-restore-translate: below 1.0 means fwc is faster) and each one's peak RSS.

    .venv/bin/python bench/translate_bench.py [--rules 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def generate(n: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    chains = [f"svc{i}" for i in range(20)]
    lines += [f":{c} - [0:0]" for c in chains]
    lines.append("-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT")
    lines.append("-A INPUT -i lo -j ACCEPT")
    for i in range(n - 2):
        chain = rnd.choice(["INPUT", "FORWARD", "OUTPUT"] + chains)
        net = f"10.{rnd.randrange(256)}.{rnd.randrange(256)}.0/24"
        kind = rnd.randrange(6)
        if kind == 0:
            rule = f"-A {chain} -s {net} -p tcp -m tcp --dport {rnd.randrange(1, 65535)} -j ACCEPT"
        elif kind == 1:
            ports = ",".join(str(rnd.randrange(1, 65535)) for _ in range(rnd.randrange(2, 6)))
            rule = f"-A {chain} -p udp -m multiport --dports {ports} -m conntrack --ctstate NEW -j ACCEPT"
        elif kind == 2:
            flag = "-o" if chain == "OUTPUT" else "-i"
            rule = f"-A {chain} -d {net} {flag} eth{rnd.randrange(4)} -j DROP"
        elif kind == 3:
            rule = f"-A {chain} -s {net} -m comment --comment \"rule {i}\" -j REJECT --reject-with icmp-port-unreachable"
        elif kind == 4:
            rule = f"-A {chain} -p icmp -m icmp --icmp-type 8 -m limit --limit 5/sec -j ACCEPT"
        else:
            rule = f"-A {chain} -s {net} -j LOG --log-prefix \"drop-{i} \""
        lines.append(rule)
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def run_child(argv: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in KiB) of one child process run."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{argv[0]} failed: {p.stderr.read().decode()[:500]}")
    return elapsed, usage.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    ref = shutil.which("iptables-restore-translate")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "rules.v4")
        with open(path, "w") as f:
            f.write(generate(args.rules))
        fwc = [sys.executable, "-m", "fwc", "translate", path]
        results: dict[str, list[tuple[float, int]]] = {"fwc": [], "iptables-restore-translate": []}
        for _ in range(args.rounds):
            results["fwc"].append(run_child(fwc))
            if ref:
                results["iptables-restore-translate"].append(run_child([ref, "-f", path]))
    print(f"input: {args.rules} rules, {args.rounds} interleaved rounds")
    med = {}
    for name, runs in results.items():
        if not runs:
            print(f"{name}: not installed")
            continue
        med[name] = statistics.median(t for t, _ in runs)
        peak = max(m for _, m in runs)
        print(f"{name}: median {med[name]:.3f} s, peak RSS {peak / 1024:.1f} MiB")
    if len(med) == 2:
        ratio = med["fwc"] / med["iptables-restore-translate"]
        verdict = "fwc is faster" if ratio < 1 else "fwc is slower"
        print(f"ratio fwc / iptables-restore-translate: {ratio:.2f} ({verdict}; target <= 2.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
