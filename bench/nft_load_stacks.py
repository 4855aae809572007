"""Where a `nft -f` process waits: samples the kernel stacks (/proc/PID/stack) of nft and of the
kworkers while nft loads a file into a throw-away netns, and prints the most frequent ones.

Used for README, "What the blocklist's load time is made of": with the replace prelude
(`table ip filter {}` + `delete table ip filter`), nft waits in close() of its netlink socket
(nft_rcv_nl_event -> __flush_work) while a kworker runs nf_tables_trans_destroy_work, which
starts with an RCU grace period.  Needs root.

    .venv/bin/python bench/nft_load_stacks.py [--runs N] [FILE]   (default: the prelude alone)
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import subprocess
import sys

NETNS = f"stk{os.getpid()}bench"
PRELUDE = "table ip filter {}\ndelete table ip filter\ntable ip filter {}\n"


def stack(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/stack") as f:
            return "".join(line.split("] ", 1)[-1] for line in f)
    except OSError:
        return ""


def kworkers() -> list[str]:
    out = []
    for d in glob.glob("/proc/[0-9]*/comm"):
        try:
            with open(d) as f:
                if f.read().startswith("kworker"):
                    out.append(d.split("/")[2])
        except OSError:
            pass
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("file", nargs="?", help="nft file to load (default: the prelude alone)")
    ap.add_argument("--runs", type=int, default=10)
    args = ap.parse_args()
    text = open(args.file).read() if args.file else PRELUDE
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    try:
        nft_stacks: collections.Counter = collections.Counter()
        kw_stacks: collections.Counter = collections.Counter()
        for _ in range(args.runs):
            subprocess.run(["ip", "netns", "exec", NETNS, "nft", "flush", "ruleset"], check=True)
            workers = kworkers()
            p = subprocess.Popen(["ip", "netns", "exec", NETNS, "nft", "-f", "-"],
                                 stdin=subprocess.PIPE, text=True)
            p.stdin.write(text)
            p.stdin.close()
            while p.poll() is None:
                s = stack(str(p.pid))
                if "netlink" in s or "rcu" in s:
                    nft_stacks[s] += 1
                for k in workers:
                    s = stack(k)
                    if "nf_tables" in s:
                        kw_stacks[s] += 1
            if p.wait():
                print("nft failed", file=sys.stderr)
                return 1
        for title, c in (("nft", nft_stacks), ("kworkers (nf_tables)", kw_stacks)):
            print(f"== {title}: most frequent kernel stacks, samples over {args.runs} loads")
            for s, n in c.most_common(2):
                print(f"{n} samples:\n{s}")
    finally:
        subprocess.run(["ip", "netns", "delete", NETNS])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
