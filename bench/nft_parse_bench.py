"""Speed of the nft front end against `nft -c -f` on a generated 10,000-rule file.

Run: .venv/bin/python bench/nft_parse_bench.py [RULES]
Prints both wall times and the ratio (fwc / nft; below 1 means fwc is faster)."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from fwc.frontends.nft import parse_nft  # noqa: E402


def make_ruleset(n: int, seed: int = 1) -> str:
    rnd = random.Random(seed)
    lines = ["table inet bench {", " chain input {", "  type filter hook input priority 0; policy drop;",
             "  ct state established,related accept"]
    forms = [
        lambda: f"ip saddr 192.0.2.{rnd.randrange(256)} tcp dport {rnd.randrange(1, 65535)} accept",
        lambda: f"ip6 saddr 2001:db8:{rnd.randrange(65536):x}::/48 udp dport {{ 53, {rnd.randrange(1024, 65535)} }} counter accept",
        lambda: f'iifname "eth{rnd.randrange(8)}" tcp flags & (syn|ack) == syn limit rate {rnd.randrange(1, 100)}/second accept',
        lambda: f"meta mark & 0xff == {rnd.randrange(256)} ip daddr 198.51.100.0/24 drop",
        lambda: f"tcp dport {rnd.randrange(1, 30000)}-{rnd.randrange(30000, 65535)} ct state new log prefix \"p{rnd.randrange(99)} \" drop",
    ]
    for _ in range(n):
        lines.append("  " + rnd.choice(forms)())
    lines += [" }", "}", ""]
    return "\n".join(lines)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    text = make_ruleset(n)
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        t0 = time.perf_counter()
        rs = parse_nft(text, path)
        fwc_s = time.perf_counter() - t0
        rules = sum(len(c.rules) for t in rs.tables for c in t.chains)
        print(f"fwc parse_nft: {rules} rules in {fwc_s:.3f} s")
        if shutil.which("nft") is None:
            print("nft not installed: no comparison")
            return
        t0 = time.perf_counter()
        r = subprocess.run(["nft", "-c", "-f", path], capture_output=True, text=True)
        nft_s = time.perf_counter() - t0
        if r.returncode != 0:
            print(f"nft -c -f failed ({r.stderr.strip()[:200]}); nft time {nft_s:.3f} s")
            return
        print(f"nft -c -f:     {nft_s:.3f} s")
        print(f"ratio fwc/nft: {fwc_s / nft_s:.2f}")
    finally:
        os.unlink(path)


if __name__ == "__main__":
    main()
