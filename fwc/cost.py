"""Cost model: expected rule evaluations per packet, per hook, under a traffic mix.

The meaning comes from the simulator: each traffic item (a case: setup packets, then one
probe) runs through `fwc.backends.simulate.Simulator`, instrumented to count every rule it
evaluates for the probe, in kernel order: the simulator's prefilter and decision cache (its
own speed-ups, which skip rules the kernel would still test) are switched off.  A rule with a
set or verdict-map lookup counts as one evaluation, as in nftables.

Traffic mix (default est=90,new=7,scan=3, in percent):
- est:  packets of established connections, both directions, spread evenly over the accepted
        services;
- new:  first packets of new connections to the accepted services;
- scan: background scans: SYNs to ports no rule accepts, from the default remote host.
A service is a (direction, family, protocol, port, source, interface) whose opening packet the
ruleset accepts; candidates come from what the rules mention (ports, source addresses,
interfaces) plus common ports, so the mix follows the ruleset.  Build the traffic once
(`build_traffic`) and reuse it to compare rulesets that should mean the same.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Optional

import attrs

from fwc import ir
from fwc.backends.simulate import SimOptions, Simulator
from fwc.errors import FwcSyntaxError
from fwc.packet import DEFAULT_ADDRS, Case, packet_from_dict

DEFAULT_MIX = {"est": 90.0, "new": 7.0, "scan": 3.0}
COMMON_PORTS = (22, 25, 53, 80, 123, 443)
SCAN_PORTS = (23, 135, 139, 445, 1433, 3389, 5900, 8080, 6379, 27017)
MAX_CANDIDATES = 400
HOOK_DIRS = {"in": {"prerouting", "input"}, "out": {"output", "postrouting"},
             "fwd": {"prerouting", "forward", "postrouting"}}


def parse_mix(text: Optional[str]) -> dict[str, float]:
    """'est=90,new=7,scan=3' (any subset; the rest 0) -> weights."""
    if not text:
        return dict(DEFAULT_MIX)
    mix = {k: 0.0 for k in DEFAULT_MIX}
    seen: set = set()
    for part in text.split(","):
        key, _, val = part.partition("=")
        key = key.strip()
        if key not in mix:
            raise FwcSyntaxError(f"traffic class {key!r}: expected est, new or scan",
                                 ir.Loc("--traffic"))
        if key in seen:  # (the last one would silently win)
            raise FwcSyntaxError(f"traffic class {key!r} given twice", ir.Loc("--traffic"))
        seen.add(key)
        try:
            mix[key] = float(val)
        except ValueError:
            raise FwcSyntaxError(f"traffic weight {val!r} is not a number",
                                 ir.Loc("--traffic")) from None
        if not 0 <= mix[key] < float("inf"):  # (nan and inf too)
            raise FwcSyntaxError(f"traffic weight {val!r}: a finite number not below 0 expected",
                                 ir.Loc("--traffic"))
    if sum(mix.values()) <= 0:
        raise FwcSyntaxError("traffic weights sum to 0", ir.Loc("--traffic"))
    return mix


@attrs.frozen
class Traffic:
    items: tuple[tuple[Case, float, str], ...]  # (case, weight, class); weights sum to 1
    services: int


@attrs.frozen
class Cost:
    per_hook: dict  # hook -> expected rule evaluations per packet
    total: float
    per_class: dict  # class -> expected evaluations per packet of that class

    def format(self) -> str:
        lines = [f"{'hook':<12} {'rules/packet':>12}"]
        for hook in ("prerouting", "input", "forward", "output", "postrouting"):
            if hook in self.per_hook:
                lines.append(f"{hook:<12} {self.per_hook[hook]:>12.2f}")
        lines.append(f"{'total':<12} {self.total:>12.2f}")
        for cls, v in self.per_class.items():
            lines.append(f"  {cls + ' packets':<18} {v:>8.2f}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- counting engine


class CountingSimulator(Simulator):
    """The simulator, counting the rules it evaluates per hook (kernel order, no shortcuts)."""

    def __init__(self, ruleset: ir.Ruleset, options: Optional[SimOptions] = None):
        options = attrs.evolve(options or SimOptions(), cache=False)
        super().__init__(ruleset, options)
        self.counting = False
        self.counts: dict[str, int] = {}
        self._hook = None

        def counter(_p):
            if self.counting:
                self.counts[self._hook] = self.counts.get(self._hook, 0) + 1
            return True
        for comp in self._chains.values():
            comp.index = None  # the prefilter skips rules the kernel still evaluates
            for r in comp.rules:
                r.matches = (counter,) + tuple(r.matches)

    def _base_chain(self, stage, p, hook, trace):
        self._hook = hook
        return super()._base_chain(stage, p, hook, trace)

    def _nat_stage(self, stage, p, hook, trace):
        self._hook = hook
        return super()._nat_stage(stage, p, hook, trace)

    def probe_counts(self, case: Case) -> tuple[str, dict[str, int]]:
        self.reset()
        wires = []
        for pkt in case.setup:
            quote = wires[pkt.quote] if pkt.quote is not None else None
            _v, _s, skb = self.run_packet(pkt, None, quote)
            wires.append(skb.tuple())
        self.counts = {}
        self.counting = True
        try:
            quote = wires[case.probe.quote] if case.probe.quote is not None else None
            verdict, _s, _skb = self.run_packet(case.probe, None, quote)
        finally:
            self.counting = False
        return verdict, self.counts


def cost(rs: ir.Ruleset, traffic: Traffic, options: Optional[SimOptions] = None) -> Cost:
    sim = CountingSimulator(rs, options)
    per_hook: dict[str, float] = {}
    per_class: dict[str, list[float]] = {}
    for case, weight, cls in traffic.items:
        _v, counts = sim.probe_counts(case)
        for hook, n in counts.items():
            per_hook[hook] = per_hook.get(hook, 0.0) + weight * n
        acc = per_class.setdefault(cls, [0.0, 0.0])
        acc[0] += weight * sum(counts.values())
        acc[1] += weight
    return Cost(per_hook, sum(per_hook.values()),
                {k: (v[0] / v[1] if v[1] else 0.0) for k, v in per_class.items()})


# ----------------------------------------------------------------------------- traffic


def _mentioned(rs: ir.Ruleset):
    ports: set[tuple[str, int]] = {(p, n) for p in ("tcp", "udp") for n in COMMON_PORTS}
    srcs: dict[int, list] = {4: [], 6: []}
    dsts: dict[int, list] = {4: [], 6: []}
    ifaces: list[str] = []
    hooks: set[str] = set()
    fams: set[int] = set()
    for t in rs.tables:
        fams |= {4} if t.family == "ip" else {6} if t.family == "ip6" else {4, 6}
        for c in t.chains:
            if c.base is not None and (c.rules or c.base.policy == "drop"):
                hooks.add(c.base.hook)
            for r in c.rules:
                for m in r.matches:
                    if isinstance(m, ir.Port) and m.field == "dport" and not m.negate \
                            and m.proto in ("tcp", "udp"):
                        ports.update((m.proto, x.lo) for x in m.ranges[:8])
                    elif isinstance(m, ir.Address) and not m.negate:
                        pool = srcs if m.field == "saddr" else dsts
                        for v in m.values[:2]:
                            a = v.lo if isinstance(v, ir.AddrRange) else (
                                v.network_address if v.prefixlen == v.max_prefixlen
                                else v.network_address + 1)
                            if _usable(a) and a not in pool[a.version] and len(pool[a.version]) < 64:
                                pool[a.version].append(a)
                    elif isinstance(m, ir.Interface) and not m.negate and m.field == "iifname":
                        name = m.name[:-1] + "0" if m.name.endswith("+") else m.name
                        if name not in ifaces and name != "lo" and len(name) <= 15:
                            ifaces.append(name)
    return ports, srcs, dsts, ifaces, hooks, fams or {4}


def _usable(a) -> bool:
    return not (a.is_multicast or a.is_loopback or a.is_unspecified or a.is_link_local)


def build_traffic(rs: ir.Ruleset, mix: Optional[dict] = None, seed: int = 0,
                  options: Optional[SimOptions] = None) -> Traffic:
    """The weighted probe cases of the mix for `rs` (deterministic for a seed)."""
    mix = mix or dict(DEFAULT_MIX)
    rnd = random.Random(seed)
    ports, srcs, dsts, ifaces, hooks, fams = _mentioned(rs)
    dirs = [d for d, hs in HOOK_DIRS.items() if hs & hooks] or ["in"]
    # The candidate space can hold millions of packets (every mentioned port times every
    # address pair); only MAX_CANDIDATES are run, so they are drawn by index and built alone.
    blocks = []  # (direction, l3, [(src, dst)], [iif]), in the order the space enumerates them
    for d in dirs:
        for l3 in sorted(fams):
            dsrc, ddst = DEFAULT_ADDRS[(d, l3)]
            src_choices = [dsrc] + [str(a) for a in rnd.sample(srcs[l3], min(6, len(srcs[l3])))] \
                if d != "out" else [dsrc]
            iif_choices = [None] + ifaces[:4] if d != "out" else [None]
            dst_choices = [ddst] + [str(a) for a in rnd.sample(dsts[l3], min(6, len(dsts[l3])))]
            pairs = [(s, t) for s in src_choices for t in dst_choices if s != t]
            blocks.append((d, l3, pairs, iif_choices))
    total, candidate = candidate_space(blocks, sorted(ports))
    picked = rnd.sample(range(total), MAX_CANDIDATES) if total > MAX_CANDIDATES else range(total)
    candidates = [candidate(i) for i in picked]
    sim = Simulator(rs, options)
    services = []
    for pkt in candidates:
        opener = packet_from_dict(dict(pkt, flags="S") if pkt["proto"] == "tcp" else pkt)
        sim.reset()
        verdict, state, _ = sim.run_packet(opener)
        if verdict == "ACCEPT" and state == "NEW":
            services.append(pkt)
    accepted_ports = {(s["proto"], s["dport"]) for s in services}
    classes: dict[str, list[Case]] = {"est": [], "new": [], "scan": []}
    for i, s in enumerate(services):
        est_fwd, est_rev, new = _service_cases(s, i)
        classes["est"] += [est_fwd, est_rev]
        classes["new"].append(new)
    for d in [x for x in dirs if x != "out"]:
        for l3 in sorted(fams):
            for port in SCAN_PORTS:
                if ("tcp", port) in accepted_ports:
                    continue
                dsrc, ddst = DEFAULT_ADDRS[(d, l3)]
                probe = {"dir": d, "l3": l3, "proto": "tcp", "src": dsrc, "dst": ddst,
                         "sport": 51000 + port % 1000, "dport": port, "flags": "S"}
                classes["scan"].append(Case(f"scan-{d}-{l3}-{port}", (),
                                            packet_from_dict(probe)))
    live = {k: w for k, w in mix.items() if w > 0 and classes[k]}
    if not live:  # nothing accepted and no scan direction: fall back to scans of any kind
        live = {"scan": 1.0}
    total = sum(live.values())
    items = []
    for k, w in live.items():
        for c in classes[k]:
            items.append((c, w / total / len(classes[k]), k))
    return Traffic(tuple(items), len(services))


def candidate_space(blocks: list, port_list: list):
    """(size, candidate(i)) of the packets the blocks span: per block (direction, l3, address
    pairs, iifs), every (protocol, port) times every pair times every iif, in that order."""
    sizes = [len(port_list) * len(pairs) * len(iifs) for _d, _l3, pairs, iifs in blocks]

    def candidate(i: int) -> dict:
        j = i
        for (d, l3, pairs, iifs), size in zip(blocks, sizes):
            if j < size:
                break
            j -= size
        else:
            raise IndexError(i)
        j, k = divmod(j, len(iifs))
        j, pair = divmod(j, len(pairs))
        proto, port = port_list[j]
        pkt = {"dir": d, "l3": l3, "proto": proto, "src": pairs[pair][0], "dst": pairs[pair][1],
               "sport": 40000 + i % 20000, "dport": port}
        if iifs[k] is not None:
            pkt["iif"] = iifs[k]
        return pkt
    return sum(sizes), candidate


def _reverse(p: dict) -> dict:
    r = dict(p, src=p["dst"], dst=p["src"], sport=p["dport"], dport=p["sport"])
    r["dir"] = {"in": "out", "out": "in", "fwd": "fwd"}[p["dir"]]
    r.pop("iif", None)
    r.pop("oif", None)
    if p["dir"] == "in" and p.get("iif"):
        r["oif"] = p["iif"]
    if p["dir"] == "out":
        r["iif"] = "eth0"
    return r


def _service_cases(s: dict, i: int) -> tuple[Case, Case, Case]:
    tcp = s["proto"] == "tcp"
    opener = dict(s, flags="S") if tcp else dict(s)
    reply = dict(_reverse(s), flags="SA") if tcp else _reverse(s)
    client_data = dict(s, flags="A") if tcp else dict(s)
    server_data = dict(_reverse(s), flags="A") if tcp else _reverse(s)
    setup = (packet_from_dict(opener), packet_from_dict(reply))
    return (Case(f"est-{i}-orig", setup, packet_from_dict(client_data)),
            Case(f"est-{i}-reply", setup, packet_from_dict(server_data)),
            Case(f"new-{i}", (), packet_from_dict(opener)))
