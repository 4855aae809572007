"""The conntrack table: entries with original/reply tuples, state, status bits, expectations.

Follows the order of the kernel's nf_conntrack_in: ICMP errors are matched to the flow they
quote, a packet either finds its entry (in the original or reply direction) or creates an
unconfirmed one, and an entry is only inserted into the table ("confirmed") when its first
packet has been accepted through every hook.
"""

from __future__ import annotations

from typing import Callable, Optional

from fwc.conntrack import tcp
from fwc.conntrack.skb import ICMP_PROTOS, PORT_PROTOS, Skb, addr_str
from fwc.errors import Unsupported

# ICMP query types that may open a conntrack, and the type of their answer
ICMP_QUERY_REPLY = {1: {8: 0, 13: 14, 15: 16, 17: 18}, 58: {128: 129, 139: 140}}
ICMP_REPLY_QUERY = {p: {v: k for k, v in m.items()} for p, m in ICMP_QUERY_REPLY.items()}
# ICMP errors, looked up by the packet they quote (nf_conntrack_icmpv6_error: every ICMPv6
# type below 128 is one)
ICMP_ERRORS = {1: frozenset((3, 4, 5, 11, 12)), 58: frozenset(range(128))}
# ICMPv6 neighbour discovery, MLD and multicast router discovery: never tracked (the kernel's
# noct_valid_new marks them UNTRACKED); a redirect (137) is not among them: INVALID
ICMPV6_NOCT = frozenset((130, 131, 132, 133, 134, 135, 136, 143, 151, 152))
PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmpv6", 132: "sctp", 33: "dccp",
               136: "udplite", 47: "gre"}


def invert(t: tuple) -> Optional[tuple]:
    """The tuple of a packet going the other way; None if there is no such packet (ICMP)."""
    l3, proto, src, dst, sp, dp = t
    if proto in ICMP_PROTOS:
        rtype = ICMP_QUERY_REPLY[proto].get(dp)
        if rtype is None:
            rtype = ICMP_REPLY_QUERY[proto].get(dp)
        if rtype is None:
            return None
        return (l3, proto, dst, src, sp, rtype)
    return (l3, proto, dst, src, dp, sp)


class RandomPortUnknown(Unsupported):
    """A packet the simulator cannot place: it may be the reply to a connection whose NAT port
    the kernel picked at random."""


class Entry:
    """One connection.  `tuples[0]` is the original direction, `tuples[1]` the reply."""

    __slots__ = ("tuples", "status", "tcp_state", "tcp_last", "close_init", "helper",
                 "helper_data", "mark", "master", "zone", "nat_done", "id", "tcp_timeout",
                 "unacked", "labels", "random_port", "follow", "simultaneous_open")

    def __init__(self, orig: tuple, reply: tuple, zone: int = 0):
        self.tuples = [orig, reply]
        self.status: set[str] = set()
        self.tcp_state: Optional[str] = None
        self.tcp_last = (None, None)  # (direction, flag class) of the last segment
        self.close_init = [False, False]
        self.helper: Optional[str] = None
        self.helper_data: dict = {}
        self.mark = 0
        self.master: Optional[Entry] = None
        self.zone = zone
        self.nat_done: set[str] = set()  # manip types (SRC DST) whose binding is set up
        self.id = 0
        self.tcp_timeout: Optional[int] = None  # seconds, as set by the last refresh
        self.unacked = [False, False]  # a direction sent data (or FIN) not yet acked
        self.labels = 0  # conntrack labels, bit N = label N (an expected entry starts with none)
        # (master, tuple index, port): an expected connection of a NATed master is NATed as
        # its master (nf_nat_follow_master), not by the nat chains
        self.follow: Optional[tuple] = None
        # (lo, hi, loc, why) when NAT gave the reply tuple a port the kernel picks at random
        # from lo..hi (the tuple holds a negative stand-in): replies to it cannot be told apart
        self.random_port: Optional[tuple] = None
        self.simultaneous_open = False  # IP_CT_TCP_SIMULTANEOUS_OPEN: both ends sent a SYN

    @property
    def confirmed(self) -> bool:
        return "CONFIRMED" in self.status

    @property
    def proto(self) -> int:
        return self.tuples[0][1]

    def timeout(self) -> int:
        proto = self.proto
        if proto == 6:
            if self.tcp_timeout is not None:
                return self.tcp_timeout
            return tcp.TIMEOUTS.get(self.tcp_state or "NONE", 0)
        if proto in (17, 136):
            # the 120 s stream timeout only once the entry is 2 s old; a case takes no time
            return 30
        if proto in ICMP_PROTOS:
            return 30
        return 600


class Expectation:
    """A connection a helper announced: `src` None means any source address (with `src_hi`,
    any in src..src_hi); `sport` None any source port.  A permanent one is not used up."""

    __slots__ = ("l3", "proto", "src", "dst", "dport", "master", "helper", "src_hi", "sport",
                 "permanent", "cls", "follow")

    def __init__(self, l3, proto, src, dst, dport, master, helper, src_hi=None, sport=None,
                 permanent=False, cls=0):
        self.l3, self.proto, self.src, self.dst, self.dport = l3, proto, src, dst, dport
        self.master, self.helper = master, helper
        self.src_hi, self.sport, self.permanent = src_hi, sport, permanent
        self.cls = cls  # the helper's expectation class (SIP: audio, video, image)
        self.follow: Optional[int] = None  # nf_nat_ftp/tftp: the master's tuple to follow

    def matches(self, t: tuple) -> bool:
        l3, proto, src, dst, sp, dp = t
        if self.src is not None and not (src == self.src if self.src_hi is None
                                         else self.src <= src <= self.src_hi):
            return False
        return (l3 == self.l3 and proto == self.proto and dst == self.dst and dp == self.dport
                and (self.sport is None or sp == self.sport))

    def describe(self) -> str:
        src = "any" if self.src is None else addr_str(self.l3, self.src)
        if self.src_hi is not None:
            src += f"-{addr_str(self.l3, self.src_hi)}"
        sport = "" if self.sport is None else f" sport={self.sport}"
        return (f"{PROTO_NAMES.get(self.proto, self.proto)} src={src}{sport} "
                f"dst={addr_str(self.l3, self.dst)} dport={self.dport} helper={self.helper}"
                + (" permanent" if self.permanent else ""))


class ConntrackTable:
    def __init__(self, tcp_loose: bool = True, interfaces: Optional[dict] = None):
        self.tcp_loose = tcp_loose
        self.entries: dict[tuple, tuple[Entry, int]] = {}  # (zone, tuple) -> (entry, dir)
        self.expectations: list[Expectation] = []
        self._next_id = 1
        # interface -> (address/prefix, ...) of the simulated host, for the netbios-ns helper
        self.interfaces: dict = interfaces or {}
        self.random_bound: list[Entry] = []  # entries with Entry.random_port
        self._stand_in = 0

    # ------------------------------------------------------------------ lookup (priority -200)

    def lookup(self, skb: Skb, note: Callable[[str], None]) -> None:
        """Attach a conntrack entry and state to `skb` (sets skb.ct, ct_state, ct_dir)."""
        if skb.notrack:
            skb.ct_state = "UNTRACKED"
            note("conntrack: UNTRACKED (notrack)")
            return
        proto = skb.proto
        if proto in ICMP_PROTOS:
            if skb.icmp_type in ICMP_ERRORS[proto]:
                self._icmp_error(skb, note)
                return
            if proto == 58 and skb.icmp_type in ICMPV6_NOCT:
                skb.ct_state = "UNTRACKED"
                note(f"conntrack: UNTRACKED (ICMPv6 type {skb.icmp_type} is never tracked)")
                return
        if proto == 6 and not tcp.flags_valid(skb.flags):
            if self.entries.get((skb.tmpl_zone, skb.tuple())) is None:
                self._use_up_expectation(skb.tuple(), skb.tmpl_zone, note)
            return self._invalid(skb, note, "invalid TCP flag combination")
        if proto == 136 and skb.dir != "out" and skb.iif != "lo":
            # udplite_error checks the checksum of packets from outside (prerouting, with
            # nf_conntrack_checksum on) over UDP's pseudo-header: a UDP-Lite packet whose
            # checksum is right (RFC 3828, protocol 136) fails it
            return self._invalid(skb, note, "UDP-Lite checksum (checked as UDP's)")
        t = skb.tuple()
        zone = skb.tmpl_zone
        hit = self.entries.get((zone, t))
        if hit is None and self.random_bound:
            self._check_random_ports(t, zone)
        if hit is not None and proto == 6:
            hit = self._tcp_reopen(hit, skb, note)
        if hit is None:
            self._new(skb, t, zone, note)
            return
        entry, direction = hit
        if proto == 6 and not self._tcp_packet(entry, direction, skb, note):
            return
        if proto in ICMP_PROTOS and direction == 0 and t[5] not in ICMP_QUERY_REPLY[proto]:
            return self._invalid(skb, note, "ICMP reply type in the original direction")
        skb.ct, skb.ct_dir = entry, direction
        if direction == 1:
            skb.ct_state = "ESTABLISHED"
            entry.status.add("SEEN_REPLY")
        elif "SEEN_REPLY" in entry.status:
            skb.ct_state = "ESTABLISHED"
        elif "EXPECTED" in entry.status:
            skb.ct_state = "RELATED"
        else:
            skb.ct_state = "NEW"
        note(f"conntrack: {skb.ct_state} ({'reply' if direction else 'original'} direction of "
             f"entry #{entry.id})")

    def unknown_port(self) -> int:
        """A stand-in for a port the kernel picks at random: negative, unique, never a packet's."""
        self._stand_in -= 1
        return self._stand_in

    def _check_random_ports(self, t: tuple, zone: int) -> None:
        """A packet that differs from a randomly bound reply tuple only in that port, with a
        port the kernel could have picked, may or may not be that connection's reply."""
        for e in self.random_bound:
            r = e.tuples[1]
            k = next(i for i in (4, 5) if r[i] < 0)
            lo, hi, loc, why = e.random_port
            if e.confirmed and e.zone == zone and t[:k] + t[k + 1:] == r[:k] + r[k + 1:] \
                    and lo <= t[k] <= hi:
                from fwc.ir import Loc
                cause = ("the NAT rule's random/fully-random flag" if why == "random" else
                         "a clash with another connection's tuple")
                raise RandomPortUnknown(f"this packet may belong to connection #{e.id}: the kernel "
                                  f"picked that connection's port at random from {lo}-{hi} "
                                  f"({cause}), and which one is not known",
                                  loc if loc is not None else Loc("<conntrack>"))

    def source_mapping(self, current: tuple, entry: Entry, in_range) -> Optional[tuple]:
        """find_appropriate_src: the newest connection from the same source address and port
        (and protocol, zone) with a source binding whose mapping, with this packet's
        destination, is in the NAT range."""
        for e in reversed(self.all_entries()):
            o = e.tuples[0]
            if e is entry or e.zone != entry.zone or "SRC" not in e.nat_done or \
                    (o[0], o[1], o[2], o[4]) != (current[0], current[1], current[2], current[4]):
                continue
            mapped = invert(e.tuples[1])
            if mapped is None:
                continue
            result = (current[0], current[1], mapped[2], current[3], mapped[4], current[5])
            if in_range(result):
                return result
        return None

    def _invalid(self, skb: Skb, note, why: str) -> None:
        skb.ct, skb.ct_state = None, "INVALID"
        note(f"conntrack: INVALID ({why})")

    def _take_expectation(self, t: tuple, zone: int) -> Optional[Expectation]:
        """The expectation a new tuple matches, looked up in its zone (an expectation lives in
        its master's); init_conntrack takes it (unless permanent) before TCP checks the
        segment, so even a segment found INVALID after that uses it up."""
        for exp in self.expectations:
            if exp.master.zone == zone and exp.matches(t):
                if not exp.permanent:
                    self.expectations.remove(exp)
                return exp
        return None

    def _use_up_expectation(self, t: tuple, zone: int, note) -> None:
        exp = self._take_expectation(t, zone)
        if exp is not None and not exp.permanent:
            note(f"conntrack: expectation {exp.describe()} used up by an invalid segment")

    def _new(self, skb: Skb, t: tuple, zone: int, note) -> None:
        proto = skb.proto
        state = None
        if proto in ICMP_PROTOS and t[5] not in ICMP_QUERY_REPLY[proto]:
            return self._invalid(skb, note, f"ICMP type {t[5]} cannot open a connection")
        if proto == 6:
            state = tcp.new_state(skb.flags, self.tcp_loose)
            if state is None:
                why = ("no connection and nf_conntrack_tcp_loose=0"
                       if tcp.flag_class(skb.flags) == "ACK" else
                       f"{tcp.flag_class(skb.flags)} segment without a connection")
                self._use_up_expectation(t, zone, note)
                return self._invalid(skb, note, why)
        entry = Entry(t, invert(t), zone)
        entry.tcp_state = state
        if proto == 6:
            entry.tcp_timeout = tcp.refresh_timeout(state, False, False)
        entry.tcp_last = (0, tcp.flag_class(skb.flags)) if proto == 6 else (None, None)
        entry.helper = skb.tmpl_helper
        exp = self._take_expectation(t, zone)  # (used up now, even if the packet is dropped)
        if exp is not None:
            entry.status.add("EXPECTED")
            entry.master = exp.master
            entry.mark = exp.master.mark  # (init_conntrack copies the master's mark)
            if exp.follow is not None:
                entry.follow = (exp.master, exp.follow, exp.dport)
        skb.ct, skb.ct_dir = entry, 0
        skb.ct_state = "RELATED" if entry.master is not None else "NEW"
        extra = f" expected by helper {entry.master.helper}" if entry.master else ""
        extra += f", helper {entry.helper}" if entry.helper else ""
        if state == "ESTABLISHED":
            extra += ", picked up mid-stream (tcp_loose=1)"
        note(f"conntrack: {skb.ct_state} (new unconfirmed entry{extra})")

    def _tcp_reopen(self, hit, skb: Skb, note):
        """A SYN on a closed / TIME_WAIT connection replaces it (RFC 1122 reopen)."""
        entry, direction = hit
        nxt = tcp.transition(entry.tcp_state, direction, skb.flags)
        if nxt == "SYN_SENT" and entry.tcp_state in ("TIME_WAIT", "CLOSE"):
            last_dir, last_cls = entry.tcp_last
            if any(entry.close_init) or (last_dir == direction and last_cls == "RST"):
                self.remove(entry)
                note(f"conntrack: entry #{entry.id} closed, reopened by SYN")
                return None
        return hit

    def _tcp_packet(self, entry: Entry, direction: int, skb: Skb, note) -> bool:
        old = entry.tcp_state
        nxt = tcp.transition(old, direction, skb.flags)
        cls = tcp.flag_class(skb.flags)
        if nxt == tcp.IV:
            self._invalid(skb, note, f"TCP {cls} not allowed in state {old}")
            return False
        last_dir, last_cls = entry.tcp_last
        if nxt == tcp.IG and cls == "SYNACK" and last_cls == "SYN" and last_dir is not None \
                and last_dir != direction:
            # a SYN/ACK answering the SYN ignored just before: both ends are in sync and the
            # entry was not; it takes the annotated SYN (nf_conntrack_proto_tcp, "b)")
            old, nxt = "SYN_SENT", "SYN_RECV"
            note("conntrack: this SYN/ACK answers the SYN ignored before: back in sync")
        entry.tcp_last = (direction, cls)
        if nxt == "SYN_SENT2":
            entry.simultaneous_open = True
        elif nxt == "SYN_RECV" and direction == 1 and cls == "ACK" and entry.simultaneous_open:
            # the table cannot say it: after a simultaneous open the responder's ACK
            # establishes the connection (nf_conntrack_tcp_packet)
            nxt = "ESTABLISHED"
        if nxt in (tcp.IG, "SYN_SENT"):  # SYN_SENT here: a reopen the kernel ignores
            note(f"conntrack: TCP {cls} ignored in state {old}")
            return True
        entry.tcp_state = nxt
        if old != nxt and nxt == "FIN_WAIT":
            entry.close_init[direction] = True
        if skb.flags & tcp.ACK:
            entry.unacked[1 - direction] = False  # the peers' numbers follow each other
        if skb.payload or skb.flags & tcp.FIN:
            entry.unacked[direction] = True
        if "SEEN_REPLY" not in entry.status and skb.flags & tcp.RST:
            # either direction (nf_conntrack_proto_tcp: th->rst): a connection answered only
            # by RST is deleted at once, before its timeout is refreshed (the packet still
            # reads the old one)
            self.remove(entry)
            note(f"conntrack: entry #{entry.id} deleted (reset before any reply)")
            return True
        entry.tcp_timeout = tcp.refresh_timeout(nxt, any(entry.unacked),
                                                "SEEN_REPLY" in entry.status,
                                                bool(skb.flags & tcp.RST))
        if "SEEN_REPLY" in entry.status and "ASSURED" not in entry.status and \
                old in ("SYN_RECV", "ESTABLISHED") and nxt == "ESTABLISHED":
            entry.status.add("ASSURED")
        return True

    def set_closing(self, entry: Entry, note) -> None:
        """A TCP reset sent for a packet of `entry` (REJECT --reject-with tcp-reset): the
        kernel's nf_conntrack_tcp_set_closing moves a confirmed TCP entry to CLOSE with its
        10 s timeout, keeping the rest of its TCP state."""
        if entry.proto != 6 or not entry.confirmed:
            return
        old, entry.tcp_state = entry.tcp_state, "CLOSE"
        if old != "CLOSE":  # (an entry already in CLOSE keeps its timeout)
            entry.tcp_timeout = tcp.TIMEOUTS["CLOSE"]
            note(f"conntrack: entry #{entry.id} set to CLOSE (10 s) by the reset sent for it")

    def _icmp_error(self, skb: Skb, note) -> None:
        inner = skb.quote
        if inner is None:
            return self._invalid(skb, note, "ICMP error quoting no known packet")
        inv = invert(inner)
        hit = self.entries.get((skb.tmpl_zone, inv)) if inv else None
        if hit is None:
            return self._invalid(skb, note, "ICMP error quoting an unknown flow")
        if skb.dst != inner[2]:
            return self._invalid(skb, note, "ICMP error not addressed to the quoted packet's "
                                 "source")
        entry, direction = hit
        skb.ct, skb.ct_dir, skb.ct_state = entry, direction, "RELATED"
        note(f"conntrack: RELATED (ICMP error about entry #{entry.id})")

    # ------------------------------------------------------------------ confirmation

    def confirm(self, skb: Skb, note) -> None:
        entry = skb.ct
        if entry is None or entry.confirmed:
            return
        keys = [(entry.zone, entry.tuples[0]), (entry.zone, entry.tuples[1])]
        if any(k in self.entries for k in keys):
            note("conntrack: entry clashes with an existing one, not confirmed")
            return
        entry.id = self._next_id
        self._next_id += 1
        entry.status.add("CONFIRMED")
        self.entries[keys[0]] = (entry, 0)
        self.entries[keys[1]] = (entry, 1)
        note(f"conntrack: entry #{entry.id} confirmed")

    def remove(self, entry: Entry) -> None:
        if entry.random_port is not None and entry in self.random_bound:
            self.random_bound.remove(entry)
        for d in (0, 1):
            k = (entry.zone, entry.tuples[d])
            if self.entries.get(k, (None,))[0] is entry:
                del self.entries[k]
        self.expectations = [e for e in self.expectations if e.master is not entry]

    def taken(self, t: tuple, zone: int, entry: Entry) -> bool:
        """True if tuple `t` already belongs to another confirmed connection."""
        hit = self.entries.get((zone, t))
        return hit is not None and hit[0] is not entry

    # ------------------------------------------------------------------ listing

    def all_entries(self) -> list[Entry]:
        seen: dict[int, Entry] = {}
        for entry, _d in self.entries.values():
            seen.setdefault(id(entry), entry)
        return sorted(seen.values(), key=lambda e: e.id)

    def listing(self) -> list[str]:
        """Lines in the style of `conntrack -L`."""
        return [format_entry(e) for e in self.all_entries()] + \
               [f"expect: {e.describe()}" for e in self.expectations]


def _tuple_text(t: tuple) -> str:
    l3, proto, src, dst, sp, dp = t
    text = f"src={addr_str(l3, src)} dst={addr_str(l3, dst)} "
    if proto in PORT_PROTOS:
        text += f"sport={sp if sp >= 0 else '?'} dport={dp if dp >= 0 else '?'} "
    elif proto in ICMP_PROTOS:
        text += f"type={dp} code=0 id={sp if sp >= 0 else '?'} "
    return text


def format_entry(e: Entry) -> str:
    proto = e.proto
    name = PROTO_NAMES.get(proto, "unknown")
    text = f"{name:<8} {proto:<2} {e.timeout()} "
    if proto == 6:
        text += f"{e.tcp_state} "
    text += _tuple_text(e.tuples[0])
    if "SEEN_REPLY" not in e.status:
        text += "[UNREPLIED] "
    text += _tuple_text(e.tuples[1])
    if "ASSURED" in e.status:
        text += "[ASSURED] "
    text += f"mark={e.mark} "
    flags = sorted(e.status & {"SNAT", "DNAT", "EXPECTED"})
    if flags:
        text += f"status={','.join(flags)} "
    if e.helper:
        text += f"helper={e.helper} "
    return text + "use=1"
