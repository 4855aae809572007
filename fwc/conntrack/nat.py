"""NAT bindings on conntrack entries, and rewriting packets from them.

A binding is set up once per connection and manip type (DST in prerouting/output, SRC in
input/postrouting): the entry's reply tuple is changed so that replies are recognised and
un-NATed.  As in the kernel (nf_nat_packet / nf_nat_manip_pkt), a packet is rewritten towards
the inverse of the *other* direction's tuple.
"""

from __future__ import annotations

from typing import Optional

from fwc.conntrack.skb import ICMP_PROTOS, PORT_PROTOS, Skb
from fwc.conntrack.table import ConntrackTable, Entry, invert

MANIP_OF_HOOK = {"prerouting": "DST", "output": "DST", "input": "SRC", "postrouting": "SRC"}
STATUS_OF_MANIP = {"SRC": "SNAT", "DST": "DNAT"}


def _with(t: tuple, manip: str, addr: Optional[int], port: Optional[int]) -> tuple:
    l3, proto, src, dst, sp, dp = t
    if manip == "SRC":
        return (l3, proto, src if addr is None else addr, dst, sp if port is None else port, dp)
    return (l3, proto, src, dst if addr is None else addr, sp, dp if port is None else port)


def _default_port_range(port: int) -> tuple[int, int]:
    # the kernel keeps a clashing port within its class: <512, <1024, or unprivileged
    if port < 512:
        return (1, 511)
    if port < 1024:
        return (600, 1023)
    return (1024, 65535)


def setup_binding(table: ConntrackTable, entry: Entry, manip: str, addr: Optional[int],
                  ports: Optional[tuple[int, int]]) -> str:
    """Bind `entry` for `manip`: new address `addr` (None keeps it) and a port from `ports`
    (None keeps it, picking another only on a clash).  Returns a description."""
    current = invert(entry.tuples[1])
    proto = current[1]
    idx = 4 if manip == "SRC" else 5
    have_ports = proto in PORT_PROTOS
    if proto in ICMP_PROTOS and manip == "SRC":
        have_ports, idx = True, 4  # the ICMP id plays the source port
    cur_port = current[idx]
    candidates: list[Optional[int]]
    if manip == "DST" and ports is None:
        # nf_nat_l4proto_unique_tuple: "if it's dst rewrite, can't change port" -- the tuple
        # is kept even when its reply is taken (the clash is then confirm's business)
        new = _with(current, manip, addr, None)
        entry.nat_done.add(manip)
        if new != current:
            entry.tuples[1] = invert(new)
            entry.status.add(STATUS_OF_MANIP[manip])
        return "binding " + _describe(manip, new)
    if not have_ports:
        candidates = [None]
    elif ports is not None and not (ports[0] <= cur_port <= ports[1]):
        candidates = list(range(ports[0], ports[1] + 1))
    else:
        lo, hi = ports if ports is not None else _default_port_range(cur_port)
        candidates = [cur_port] + [p for p in range(lo, hi + 1) if p != cur_port]
    new = None
    for port in candidates:
        t = _with(current, manip, addr, port)
        if not table.taken(invert(t), entry.zone, entry):
            new = t
            break
    if new is None:
        raise _NoFreeTuple()
    entry.nat_done.add(manip)
    if new != current:
        entry.tuples[1] = invert(new)
        entry.status.add(STATUS_OF_MANIP[manip])
    return "binding " + _describe(manip, new)


def _describe(manip: str, t: tuple) -> str:
    from fwc.conntrack.skb import addr_str
    l3, proto, src, dst, sp, dp = t
    if manip == "SRC":
        a, p = src, sp
    else:
        a, p = dst, dp
    text = addr_str(l3, a)
    if proto in PORT_PROTOS:
        text = (f"[{text}]" if l3 == 6 else text) + f":{p}"
    return f"{'source' if manip == 'SRC' else 'destination'} -> {text}"


class _NoFreeTuple(Exception):
    pass


NoFreeTuple = _NoFreeTuple


def manip_packet(skb: Skb, manip: str) -> Optional[str]:
    """Rewrite `skb` from its entry's binding, if that binding changes this direction."""
    entry = skb.ct
    if entry is None:
        return None
    status = STATUS_OF_MANIP[manip]
    if skb.ct_dir == 1:
        status = "DNAT" if status == "SNAT" else "SNAT"
    if status not in entry.status:
        return None
    target = invert(entry.tuples[1 - skb.ct_dir])
    error = skb.proto in ICMP_PROTOS and skb.ct_state == "RELATED" and skb.quote is not None
    before = (skb.src, skb.dst, skb.sport, skb.dport)
    if manip == "SRC":
        skb.src = target[2]
        if skb.sport is not None and not error:
            skb.sport = target[4]
        if skb.proto in ICMP_PROTOS and not error:
            skb.icmp_id = target[4]
    else:
        skb.dst = target[3]
        if skb.dport is not None and not error:
            skb.dport = target[5]
        if skb.proto in ICMP_PROTOS and not error:
            skb.icmp_id = target[4]
    if before == (skb.src, skb.dst, skb.sport, skb.dport):
        return None
    return f"nat: {_describe(manip, skb.tuple())}"
