"""Cost of rulesets before and after `fwc translate -O`, against iptables-restore-translate and
`nft -o`, plus kernel load times of plain vs optimised output.

For every real-world corpus ruleset and three generated ones (host firewall, 10,000-entry
blocklist, kube-proxy-like nat), prints expected rule evaluations per packet (fwc cost, default
traffic mix, traffic built once from the input and reused for every variant) of:
  input | fwc (plain nft) | fwc -O | iptables-restore-translate | that + nft -o
and the `nft -f` load time (ms, median of --reps runs, plain and -O loaded alternately, in a
throw-away netns) of plain vs -O output.

Then a breakdown of the blocklist's load time (--breakdown-reps runs; each run loads every
variant once, in a shuffled order, so machine load hits them alike; medians): an empty file
(process start), one empty table (a commit that deletes nothing), the replace prelude alone
(`table ip filter {}` + `delete table ip filter`), plain and -O with and without the prelude, and
the -O ruleset as JSON (`nft -j -f`: nft's own listing of fwc's -O text, handles dropped, the
same prelude as JSON commands; a what-if, fwc writes no JSON).  The time nft spends in close() of
its netlink socket (strace -T) shows the prelude's cost: a commit that deletes anything makes
nf_tables defer the freeing to a work item that first waits for an RCU grace period, and the
kernel flushes that work when the socket is released.  Ratios: -O/plain as fwc writes them (the
target), without the prelude on either side (not an exact reload, for reference), JSON -O/plain.

    .venv/bin/python bench/optimize.py [--only NAME] [--no-load] [--reps N] [--breakdown-reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fwc.backends.nft import emit_nft  # noqa: E402
from fwc.cost import build_traffic, cost  # noqa: E402
from fwc.frontends import load_ruleset, parse_text  # noqa: E402
from fwc.passes import optimize  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "real-world"
NETNS = f"opt{os.getpid()}bench"


def real_world_files() -> list[Path]:
    skip = ("README.md", "LICENSE-BSD-2-Clause")
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in skip
                  and not p.name.startswith("COPYING"))


def gen_host() -> str:
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
             "-A INPUT -i lo -j ACCEPT",
             "-A INPUT -m conntrack --ctstate INVALID -j DROP",
             "-A INPUT -p icmp --icmp-type echo-request -m limit --limit 5/sec -j ACCEPT"]
    for p in (22, 25, 53, 80, 110, 143, 443, 465, 587, 993, 995, 3306, 8080, 8443):
        lines.append(f"-A INPUT -p tcp -m conntrack --ctstate NEW --dport {p} -j ACCEPT")
    lines += ["-A INPUT -p udp --dport 53 -j ACCEPT", "-A INPUT -p udp --dport 123 -j ACCEPT",
              "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
              "-A INPUT -j LOG --log-prefix \"drop: \"", "COMMIT", ""]
    return "\n".join(lines)


def gen_blocklist(n: int = 10000) -> str:
    lines = ["*filter", ":INPUT DROP [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f"-A INPUT -s {10 + i // 65536}.{i // 256 % 256}.{i % 256}.{7 + i % 3}/32 -j DROP"
              for i in range(n)]
    lines += ["-A INPUT -i lo -j ACCEPT",
              "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
              "-A INPUT -p tcp --dport 22 -j ACCEPT", "-A INPUT -p tcp --dport 443 -j ACCEPT",
              "COMMIT", ""]
    return "\n".join(lines)


def gen_kube(services: int = 200) -> str:
    nat = ["*nat", ":PREROUTING ACCEPT [0:0]", ":INPUT ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
           ":POSTROUTING ACCEPT [0:0]", ":KUBE-SERVICES - [0:0]", ":KUBE-POSTROUTING - [0:0]",
           ":KUBE-MARK-MASQ - [0:0]"]
    rules = ["-A PREROUTING -j KUBE-SERVICES", "-A OUTPUT -j KUBE-SERVICES",
             "-A POSTROUTING -j KUBE-POSTROUTING",
             "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000",
             "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
             "-A KUBE-POSTROUTING -j MASQUERADE"]
    for i in range(services):
        svc, sep = f"KUBE-SVC-{i:04d}", f"KUBE-SEP-{i:04d}"
        nat += [f":{svc} - [0:0]", f":{sep} - [0:0]"]
        ip = f"203.0.113.{i % 250 + 1}" if i < 250 else f"198.51.100.{i % 250 + 1}"
        port = 80 + i // 250
        rules.append(f"-A KUBE-SERVICES -d {ip}/32 -p tcp --dport {port} -j {svc}")
        rules.append(f"-A {svc} -j {sep}")
        rules.append(f"-A {sep} -s 192.0.2.{i % 200 + 10}/32 -j KUBE-MARK-MASQ")
        rules.append(f"-A {sep} -p tcp -j DNAT --to-destination 192.0.2.{i % 200 + 10}:8080")
    filt = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD DROP [0:0]", ":OUTPUT ACCEPT [0:0]",
            "-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
            "-A FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT", "COMMIT"]
    return "\n".join(nat + rules + ["COMMIT"] + filt + [""])


def nft(*args: str, text: str = None, netns: bool = True) -> subprocess.CompletedProcess:
    cmd = (["ip", "netns", "exec", NETNS] if netns else []) + ["nft", *args]
    return subprocess.run(cmd, input=text, capture_output=True, text=True)


REPS = 7
BREAKDOWN_REPS = 21
PRELUDE_RE = r"(?m)^table (\S+) (\S+) \{\}\ndelete table \1 \2\n"


def _load_once(text: str, as_json: bool = False, fails: bool = False) -> float:
    """Wall ms of one `nft [-j] -f -` of `text` into the emptied netns (nan if it fails, or, with
    fails=True, if it does not)."""
    nft("flush", "ruleset")
    t0 = time.perf_counter()
    r = nft(*(["-j"] if as_json else []), "-f", "-", text=text)
    dt = time.perf_counter() - t0
    if (r.returncode != 0) != fails:
        print(f"  load failed: {r.stderr.strip()[:200]}", file=sys.stderr)
        return float("nan")
    return dt * 1000


def load_medians(variants: dict, reps: int, seed: int = 1, mins: dict = None) -> dict:
    """{name: median ms} for {name: (text, as_json[, fails])}.  Every repetition loads each
    variant once, in a shuffled order, so that the machine's load falls on all of them alike.
    The fastest run of each goes into `mins` if given."""
    rng = random.Random(seed)
    times = {k: [] for k in variants}
    for _ in range(reps):
        order = list(variants)
        rng.shuffle(order)
        for k in order:
            times[k].append(_load_once(*variants[k]))
    nft("flush", "ruleset")
    if mins is not None:
        mins.update({k: min(v) for k, v in times.items()})
    return {k: statistics.median(v) for k, v in times.items()}


def close_wait_ms(text: str, reps: int, as_json: bool = False):
    """(close, after) medians in ms under strace: the time nft spends in close() of its netlink
    socket, and the rest of what it does between the end of the batch's sendmsg (the kernel
    commits inside that call) and its exit.  None without strace."""
    if not shutil.which("strace"):
        return None
    waits, afters = [], []
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "strace"
        for _ in range(reps):
            nft("flush", "ruleset")
            subprocess.run(["ip", "netns", "exec", NETNS, "strace", "-ttt", "-T", "-o", str(out),
                            "-e", "trace=socket,sendmsg,close,exit_group", "nft",
                            *(["-j"] if as_json else []), "-f", "-"],
                           input=text, capture_output=True, text=True)
            log = out.read_text()
            fd = re.search(r"socket\(AF_NETLINK.*= (\d+)", log)
            shut = fd and re.findall(rf"^[\d.]+ close\({fd.group(1)}\)\s+= 0 <([\d.]+)>", log,
                                     re.M)
            sent = re.findall(r"^([\d.]+) sendmsg\(.*<([\d.]+)>$", log, re.M)
            end = re.search(r"^([\d.]+) exit_group", log, re.M)
            if shut and sent and end:
                waits.append(float(shut[-1]) * 1000)
                commit = float(sent[-1][0]) + float(sent[-1][1])
                afters.append((float(end.group(1)) - commit) * 1000 - waits[-1])
    nft("flush", "ruleset")
    if not waits:
        return None
    return statistics.median(waits), statistics.median(afters)


def _strip_handles(x):
    if isinstance(x, dict):
        return {k: _strip_handles(v) for k, v in x.items() if k != "handle"}
    if isinstance(x, list):
        return [_strip_handles(v) for v in x]
    return x


def listed_json(text: str, as_json: bool = False) -> list:
    """The kernel's ruleset after loading `text` (nft -j list ruleset), handles dropped."""
    nft("flush", "ruleset")
    r = nft(*(["-j"] if as_json else []), "-f", "-", text=text)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)
    got = json.loads(nft("-j", "list", "ruleset").stdout)["nftables"]
    nft("flush", "ruleset")
    return [_strip_handles(o) for o in got if "metainfo" not in o]


def as_json(text: str, prelude: bool = True) -> str:
    """nft's own JSON listing of `text`, handles dropped; with prelude=True each table is preceded
    by the same replace prelude (`add table` + `delete table`) as JSON commands."""
    out = []
    for o in listed_json(text):
        if "table" in o and prelude:
            t = {"family": o["table"]["family"], "name": o["table"]["name"]}
            out += [{"add": {"table": t}}, {"delete": {"table": t}}]
        out.append(o)
    return json.dumps({"nftables": out})


def load_breakdown(plain_text: str, opt_text: str, reps: int) -> dict:
    """What the -O blocklist's load time is made of; prints and returns {row: median ms}."""
    body = re.sub(PRELUDE_RE, "", opt_text)
    plain_body = re.sub(PRELUDE_RE, "", plain_text)
    opt_json, opt_json_body = as_json(opt_text), as_json(opt_text, prelude=False)
    same = listed_json(opt_json, True) == listed_json(opt_text) == listed_json(opt_json_body, True)
    rows = {
        "empty file (process start)": ("\n", False),
        "one empty table (deletes nothing)": ("table ip filter {}\n", False),
        "replace prelude only": ("table ip filter {}\ndelete table ip filter\n"
                                 "table ip filter {}\n", False),
        "plain": (plain_text, False),
        "plain without prelude": (plain_body, False),
        "-O": (opt_text, False),
        "-O without prelude": (body, False),
        "-O without prelude, no netlink": (body + "\n@@@\n", False, True),
        "-O as JSON": (opt_json, True),
        "-O as JSON without prelude": (opt_json_body, True),
    }
    fastest: dict = {}
    got = load_medians(rows, reps, mins=fastest)
    print(f"\nblocklist-10000 load time, ms of {reps} interleaved runs: median (fastest)")
    for name in rows:
        print(f"  {name:<36} {got[name]:8.1f} ({fastest[name]:.1f})")
    print("  (no netlink: the text ends in a syntax error; nft 1.0.6 still parses and evaluates "
          "all of it, then stops before building and sending the batch)")
    print(f"  (JSON loads the same ruleset as the text: {'yes' if same else 'NO'})")
    print(f"  prelude cost: plain {got['plain'] - got['plain without prelude']:+.1f} ms, "
          f"-O {got['-O'] - got['-O without prelude']:+.1f} ms, "
          f"alone {got['replace prelude only'] - got['one empty table (deletes nothing)']:+.1f} ms")
    waits = {name: close_wait_ms(rows[name][0], max(5, reps // 3), rows[name][1])
             for name in ("one empty table (deletes nothing)", "replace prelude only",
                          "plain", "plain without prelude", "-O", "-O without prelude")}
    flushing = "table ip filter {}\nflush table ip filter\ntable ip filter {}\n"
    waits["prelude with flush table instead of delete (not exact)"] = close_wait_ms(flushing, 5)
    if all(v is not None for v in waits.values()):
        print("  under strace, median ms: nft's close() of its netlink socket / the rest of its "
              "work after the commit")
        for k, (shut, after) in waits.items():
            print(f"    {k:<56} {shut:6.1f} / {after:5.1f}")
    ratios = {
        "-O / plain (fwc's output; the target is <= 0.2)": got["-O"] / got["plain"],
        "without the prelude on either side (not an exact reload)":
            got["-O without prelude"] / got["plain without prelude"],
        "-O as JSON / plain text": got["-O as JSON"] / got["plain"],
        "-O as JSON / plain text, both without the prelude":
            got["-O as JSON without prelude"] / got["plain without prelude"],
    }
    for k, v in ratios.items():
        print(f"  {k}: {v:.3f}")
    return got


def translate_cost(path: str, family: str, traffic):
    tool = "iptables-restore-translate" if family == "ip" else "ip6tables-restore-translate"
    r = subprocess.run([tool, "-f", path], capture_output=True, text=True)
    if r.returncode != 0:
        return None, None
    try:
        rs = parse_text(r.stdout, "<txlate>", "nft")
        c_tx = cost(rs, traffic).total
    except Exception as e:  # noqa: BLE001  (report, don't stop the table)
        return f"n/a ({type(e).__name__})", None
    # nft -o: load it optimised into a throw-away netns and read it back
    nft("flush", "ruleset")
    r2 = nft("-o", "-f", "-", text=r.stdout)
    if r2.returncode != 0:
        return c_tx, "fails"
    listed = nft("list", "ruleset").stdout
    nft("flush", "ruleset")
    try:
        return c_tx, cost(parse_text(listed, "<nft -o>", "nft"), traffic).total
    except Exception as e:  # noqa: BLE001
        return c_tx, f"n/a ({type(e).__name__})"


def fmt(x) -> str:
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="substring of the ruleset names to run")
    ap.add_argument("--no-load", action="store_true", help="skip kernel load timing")
    ap.add_argument("--reps", type=int, default=REPS, help="load-time repetitions (median)")
    ap.add_argument("--breakdown-reps", type=int, default=BREAKDOWN_REPS,
                    help="repetitions of the blocklist's load-time breakdown (median)")
    args = ap.parse_args()
    globals()["REPS"] = args.reps
    tmp = Path(tempfile.mkdtemp(prefix="fwc-optbench-"))
    inputs = [(str(p.relative_to(CORPUS)), p, True) for p in real_world_files()]
    for name, gen in (("gen/host", gen_host), ("gen/blocklist-10000", gen_blocklist),
                      ("gen/kube-nat", gen_kube)):
        p = tmp / name.replace("/", "-")
        p.write_text(gen())
        inputs.append((name, p, False))
    subprocess.run(["ip", "netns", "add", NETNS], check=True)
    sums = {"plain": 0.0, "opt": 0.0}
    breakdown = None
    worse = []
    try:
        print(f"{'ruleset':<58} {'input':>8} {'fwc':>8} {'fwc -O':>8} {'ratio':>6} "
              f"{'txlate':>8} {'nft -o':>8} {'load':>8} {'load -O':>8}")
        for name, path, real in inputs:
            if args.only and args.only not in name:
                continue
            try:
                rs = load_ruleset(str(path))
                plain_text = emit_nft(rs)
            except Exception as e:  # noqa: BLE001
                print(f"{name:<58} skipped: {type(e).__name__}: {str(e)[:60]}")
                continue
            t0 = time.perf_counter()
            opt_rs = optimize(rs)
            t_opt = time.perf_counter() - t0
            opt_text = emit_nft(opt_rs)
            try:
                traffic = build_traffic(rs)
                c_in = cost(rs, traffic).total
                c_plain = cost(parse_text(plain_text, "<plain>", "nft"), traffic).total
                c_opt = cost(parse_text(opt_text, "<opt>", "nft"), traffic).total
            except Exception as e:  # noqa: BLE001
                print(f"{name:<58} cost n/a: {type(e).__name__}: {str(e)[:60]}")
                continue
            c_tx, c_nfto = translate_cost(str(path), rs.tables[0].family, traffic)
            if args.no_load:
                l_plain = l_opt = float("nan")
            else:
                got = load_medians({"plain": (plain_text, False), "opt": (opt_text, False)},
                                   REPS)
                l_plain, l_opt = got["plain"], got["opt"]
                if name == "gen/blocklist-10000":
                    breakdown = (plain_text, opt_text)
            ratio = c_opt / c_plain if c_plain else 1.0
            if real:
                sums["plain"] += c_plain
                sums["opt"] += c_opt
            if c_opt > c_plain + 1e-9:
                worse.append(name)
            print(f"{name:<58} {c_in:>8.2f} {c_plain:>8.2f} {c_opt:>8.2f} {ratio:>6.3f} "
                  f"{fmt(c_tx):>8} {fmt(c_nfto):>8} {l_plain:>8.1f} {l_opt:>8.1f}"
                  f"   (-O pass {t_opt * 1000:.0f} ms)")
        if sums["plain"]:
            print(f"\nreal-world corpus, summed: fwc {sums['plain']:.2f}  fwc -O {sums['opt']:.2f}"
                  f"  ratio {sums['opt'] / sums['plain']:.3f}")
        print("rulesets where -O costs more: " + (", ".join(worse) or "none"))
        if breakdown is not None:
            load_breakdown(*breakdown, args.breakdown_reps)
    finally:
        subprocess.run(["ip", "netns", "delete", NETNS])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
