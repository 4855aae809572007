"""The typed intermediate representation every front end produces and every backend consumes.

A ruleset is tables -> chains -> rules.  A rule is an ordered conjunction of matches, then
non-terminal statements, then at most one verdict.  Every node is frozen; passes build new trees.
The meaning of each node is written once, in `fwc.backends.simulate`.

Conventions:
- every match has `negate`; a negated match is the logical NOT of the un-negated one, except that
  protocol-dependent matches (ports, tcp flags, icmp types...) still require their protocol,
  exactly as both iptables and nftables do;
- integer ranges are inclusive (lo, hi);
- addresses are `ipaddress` networks or inclusive `AddrRange`s.
"""

from __future__ import annotations

import ipaddress
import weakref
from typing import Optional, Union

import attrs

frozen = attrs.frozen  # slotted, frozen, eq/hash by value


# --------------------------------------------------------------------------- locations


@frozen
class Loc:
    file: str = "<input>"
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOLOC = Loc()

# --------------------------------------------------------------------------- values

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]
IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


@frozen
class AddrRange:
    lo: IPAddress
    hi: IPAddress

    @property
    def version(self) -> int:
        return self.lo.version


Addr = Union[IPNetwork, AddrRange]


@frozen
class Range:
    """Inclusive integer range (ports, lengths, ttl, uid...)."""

    lo: int
    hi: int

    @classmethod
    def one(cls, v: int) -> "Range":
        return cls(v, v)

    def __contains__(self, v: int) -> bool:
        return self.lo <= v <= self.hi


FAMILIES = ("ip", "ip6", "inet")  # IP families: every backend and the simulator
# nft link-layer families (nft front end and backend only): bridge filters frames crossing a
# bridge, netdev frames at a device's ingress/egress, arp the ARP packets a host receives and
# sends; iptables and the simulator refuse them
L2_FAMILIES = ("bridge", "netdev", "arp")
NFT_FAMILIES = FAMILIES + L2_FAMILIES
CT_STATES = ("INVALID", "ESTABLISHED", "RELATED", "NEW", "UNTRACKED")
# --ctstate also accepts the virtual states SNAT and DNAT (ct status bits, ORed in)
CT_VIRTUAL_STATES = ("SNAT", "DNAT")
CT_STATUS_BITS = ("EXPECTED", "SEEN_REPLY", "ASSURED", "CONFIRMED", "SNAT", "DNAT", "DYING")
TCP_FLAGS = ("FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR")
L4_PROTOS = {
    "icmp": 1, "igmp": 2, "ipencap": 4, "tcp": 6, "egp": 8, "udp": 17, "ipv6": 41,
    "gre": 47, "esp": 50, "ah": 51, "icmpv6": 58, "ipv6-icmp": 58, "ospf": 89, "pim": 103,
    "vrrp": 112, "l2tp": 115, "sctp": 132, "dccp": 33, "udplite": 136, "mh": 135,
    "ipcomp": 108, "ipv6-route": 43, "ipv6-frag": 44, "ipv6-opts": 60, "hopopt": 0,
}

# --------------------------------------------------------------------------- matches


@frozen
class Proto:
    """Layer-4 protocol (iptables -p, nft meta l4proto / ip protocol)."""

    protos: frozenset[int]
    negate: bool = False


@frozen
class Address:
    """Source or destination address in one of `values` (prefixes or ranges)."""

    field: str  # "saddr" | "daddr"
    values: tuple[Addr, ...]
    negate: bool = False


@frozen
class Interface:
    """Interface name; a trailing '+' in `name` is a prefix wildcard (nft '*')."""

    field: str  # "iifname" | "oifname"
    name: str
    negate: bool = False


@frozen
class Fragment:
    """IPv4 non-first fragment (iptables -f)."""

    negate: bool = False


@frozen
class Port:
    """Transport port of `proto`.  field 'port' means source OR destination (multiport --ports)."""

    proto: str  # tcp udp sctp dccp udplite
    field: str  # "sport" | "dport" | "port"
    ranges: tuple[Range, ...]
    negate: bool = False


@frozen
class TcpFlags:
    """(flags & mask) == comp."""

    mask: frozenset[str]
    comp: frozenset[str]
    negate: bool = False


@frozen
class TcpOption:
    kind: int
    negate: bool = False


@frozen
class Icmp:
    """ICMP (family ip) or ICMPv6 (family ip6) type; type None = any type; codes inclusive."""

    family: str
    type: Optional[int]
    codes: Range = Range(0, 255)
    negate: bool = False


@frozen
class CtState:
    """Any of `states` (NEW ESTABLISHED RELATED INVALID UNTRACKED, plus virtual SNAT DNAT)."""

    states: frozenset[str]
    negate: bool = False


@frozen
class CtStatus:
    """Any of the conntrack status bits is set."""

    bits: frozenset[str]
    negate: bool = False


@frozen
class CtDirection:
    direction: str  # "ORIGINAL" | "REPLY"
    negate: bool = False


@frozen
class CtProto:
    """Layer-4 protocol of the original tuple."""

    proto: int
    negate: bool = False


@frozen
class CtAddress:
    """Address in a conntrack tuple: which = original|reply, field = saddr|daddr."""

    which: str
    field: str
    values: tuple[Addr, ...]
    negate: bool = False


@frozen
class CtPort:
    which: str  # original | reply
    field: str  # sport | dport
    ranges: tuple[Range, ...]
    negate: bool = False


@frozen
class CtExpire:
    """Remaining lifetime of the conntrack entry in milliseconds, as nft reads it; iptables'
    --ctexpire A:B compares whole (truncated) seconds, so it is A000..B999 ms."""

    range: Range
    negate: bool = False


@frozen
class Mark:
    """(mark & mask) == value for the packet mark (kind 'meta') or the connmark (kind 'ct')."""

    kind: str
    value: int
    mask: int = 0xFFFFFFFF
    negate: bool = False


@frozen
class Mac:
    addr: str  # lower-case aa:bb:cc:dd:ee:ff
    negate: bool = False


@frozen
class AddrType:
    """fib address type of saddr/daddr (LOCAL UNICAST BROADCAST ...), optionally per in/out iface."""

    field: str  # saddr | daddr
    types: frozenset[str]
    limit_iface: Optional[str] = None  # "in" | "out"
    negate: bool = False


@frozen
class SkUid:
    range: Range
    negate: bool = False


@frozen
class SkGid:
    range: Range
    negate: bool = False


@frozen
class SocketExists:
    """owner --socket-exists: the packet has a local socket."""

    negate: bool = False


@frozen
class MssOutside:
    """iptables `-m tcpmss ! --mss lo:hi`: the TCP packet's MSS option is outside lo..hi, or it
    has none.  (The un-negated form is `FieldMatch("tcp option maxseg size")`, which needs the
    option; nft's `maxseg size != X` needs it too, hence this node.)"""

    range: Range


@frozen
class Socket:
    """iptables `-m socket`: a local socket is found for the packet (the kernel's socket lookup,
    the one TPROXY uses; time-wait and request sockets count).  Without `nowildcard`, a full
    socket bound to the wildcard address does not count; with `transparent` only transparent
    sockets count; `restore_mark` sets the packet mark from a transparent, non-wildcard full
    socket's mark as a side effect of matching."""

    transparent: bool = False
    nowildcard: bool = False
    restore_mark: bool = False


@frozen
class PktType:
    type: str  # unicast broadcast multicast
    negate: bool = False


@frozen
class Length:
    """Length of the layer-3 packet (IPv4 total length / IPv6 payload + 40)."""

    range: Range
    negate: bool = False


@frozen
class Ttl:
    """IPv4 ttl or IPv6 hop limit compared with op (eq ne lt gt)."""

    family: str
    op: str
    value: int


@frozen
class Dscp:
    value: int
    negate: bool = False


@frozen
class Tos:
    value: int
    mask: int = 0xFF
    negate: bool = False


@frozen
class Limit:
    """Token bucket: `rate` per `unit` (second minute hour day; week from nft only), `burst`
    packets; negate = rate over.  With `bytes` (nft `limit rate N kbytes/second`), rate and
    burst count bytes: nft_limit's bucket then holds one unit's rate plus burst bytes, and a
    packet costs its length."""

    rate: int
    unit: str
    burst: int = 5
    negate: bool = False
    bytes: bool = False


@frozen
class NamedLimit:
    """nft `limit name "NAME"`: the table's limit object NAME, one token bucket that every rule
    naming it shares; `limit` holds the object's rate, burst and `over` (negate)."""

    name: str
    limit: Limit


@frozen
class LimitObject:
    """An nft named limit declared in a table (`limit NAME { rate [over] R/unit burst B }`)."""

    name: str
    limit: Limit


@frozen
class SetLookup:
    """External (ipset) set: the tuple of `fields` (saddr daddr sport dport) is in set `name`."""

    name: str
    fields: tuple[str, ...]
    negate: bool = False


@frozen
class IpsecPolicy:
    """-m policy / nft meta secpath: packet was (dir in) / will be (dir out) IPsec-processed."""

    direction: str  # in | out
    ipsec: bool  # --pol ipsec (True) / none (False)


@frozen
class PhysDevBridged:
    """physdev --physdev-is-bridged: the packet is being bridged (not routed)."""

    negate: bool = False


@frozen
class Helper:
    name: str
    negate: bool = False


@frozen
class Statistic:
    """mode random (probability) or nth (every, packet)."""

    mode: str
    probability: float = 0.0
    every: int = 0
    packet: int = 0
    negate: bool = False


@frozen
class HashLimit:
    """Per-key token bucket (iptables hashlimit, nft meter): the key is made of `mode` fields
    (srcip dstip srcport dstport) with addresses masked to srcmask/dstmask bits.
    above=False: match while the key is within rate (upto); above=True: match when over it."""

    name: str
    rate: int
    unit: str
    burst: int = 5
    mode: tuple[str, ...] = ()
    srcmask: Optional[int] = None
    dstmask: Optional[int] = None
    above: bool = False
    expire_ms: Optional[int] = None


Match = Union[
    Proto, Address, Interface, Fragment, Port, TcpFlags, TcpOption, Icmp, CtState, CtStatus,
    CtDirection, CtProto, CtAddress, CtPort, CtExpire, Mark, Mac, AddrType, SkUid, SkGid,
    SocketExists, PktType, Length, Ttl, Dscp, Tos, Limit, SetLookup, IpsecPolicy, PhysDevBridged,
    Helper, Statistic, HashLimit,
]

# --------------------------------------------------------------------------- statements


@frozen
class Log:
    prefix: Optional[str] = None
    level: Optional[int] = None  # syslog level 0..7
    flags: frozenset[str] = frozenset()  # tcp-sequence tcp-options ip-options uid macdecode


@frozen
class NfLog:
    group: int = 0
    prefix: Optional[str] = None
    size: Optional[int] = None
    threshold: Optional[int] = None


@frozen
class SetMark:
    """kind meta|ct: new = (old & ~mask) ^ value  (iptables --set-xmark semantics), then shifted
    by `shift` bits (> 0 left, < 0 right; CONNMARK --left/--right-shift-mark), as a u32."""

    kind: str
    value: int
    mask: int = 0xFFFFFFFF
    shift: int = 0


def shifted(value: int, shift: int) -> int:
    """A u32 shifted left (shift > 0) or right (< 0), as xt_CONNMARK's shift modes do."""
    return (value << shift if shift >= 0 else value >> -shift) & 0xFFFFFFFF


@frozen
class CopyMark:
    """CONNMARK --save-mark (to 'ct') / --restore-mark (to 'meta'):
    dst = (dst & ~dst_mask) ^ (src & src_mask) -- an xor, as xt_CONNMARK computes it (checked in
    the kernel; with equal masks the two parts share no bit, so it is also an or)."""

    to: str
    src_mask: int = 0xFFFFFFFF
    dst_mask: int = 0xFFFFFFFF
    shift: int = 0  # (src & src_mask) shifted first: > 0 left, < 0 right (as a u32)


@frozen
class Notrack:
    pass


@frozen
class CtHelperSet:
    """Give a new connection conntrack helper `name`.  template=True: iptables' `-j CT
    --helper` (raw table), a template attached before conntrack runs; False: nft's `ct helper
    set`, which sets the helper on the unconfirmed entry conntrack made and does nothing before
    conntrack (priority < -200), where no entry exists yet (nft_ct_helper_obj_eval)."""

    name: str
    template: bool = True


@frozen
class CtZoneSet:
    zone: int


@frozen
class TcpMss:
    """Clamp MSS of SYN packets to `mss` (None = path MTU)."""

    mss: Optional[int] = None


@frozen
class SetTtl:
    family: str
    op: str  # set inc dec
    value: int


@frozen
class SetDscp:
    value: int


@frozen
class SetTos:
    """new = (old & ~mask) ^ value."""

    value: int
    mask: int = 0xFF


@frozen
class Checksum:
    pass


@frozen
class Trace:
    pass


@frozen
class Counter:
    """A rule counter, with the values the input carried."""

    packets: int = 0
    bytes: int = 0


@frozen
class NamedCounter:
    """nft `counter name NAME`: the packet is counted in the table's counter object NAME (shared
    by every rule that names it; no verdict depends on it)."""

    name: str


@frozen
class CounterObject:
    """An nft named counter declared in a table (`counter NAME { packets N bytes M }`)."""

    name: str
    packets: int = 0
    bytes: int = 0


Statement = Union[
    Log, NfLog, SetMark, CopyMark, Notrack, CtHelperSet, CtZoneSet, TcpMss, SetTtl, SetDscp,
    SetTos, Checksum, Trace, Counter, NamedCounter,
]

# --------------------------------------------------------------------------- verdicts


@frozen
class Accept:
    pass


@frozen
class Drop:
    pass


@frozen
class Reject:
    """with_: icmp type name (port-unreachable ...) read in the rule's family, the same name
    with its family as iptables writes it (icmp-host-prohibited, icmp6-addr-unreachable), as
    the nft front end keeps `reject with icmp|icmpv6 ...` of inet tables, 'tcp-reset', or None
    for the default."""

    with_: Optional[str] = None


@frozen
class Jump:
    chain: str


@frozen
class Goto:
    chain: str


@frozen
class Return:
    pass


@frozen
class Queue:
    num: Range = Range(0, 0)
    bypass: bool = False
    fanout: bool = False


@frozen
class NatTarget:
    """Address range (None = keep) and port range (None = keep) of a SNAT/DNAT."""

    addr: Optional[Addr] = None
    ports: Optional[Range] = None


@frozen
class Snat:
    to: tuple[NatTarget, ...]
    flags: frozenset[str] = frozenset()  # random persistent fully-random


@frozen
class Dnat:
    to: tuple[NatTarget, ...]
    flags: frozenset[str] = frozenset()


@frozen
class Masquerade:
    ports: Optional[Range] = None
    flags: frozenset[str] = frozenset()


@frozen
class Redirect:
    ports: Optional[Range] = None
    flags: frozenset[str] = frozenset()


@frozen
class Netmap:
    """Map the saddr (field 'saddr', in srcnat) or daddr (in dstnat) onto `to`, keeping host bits."""

    field: str
    to: IPNetwork


Verdict = Union[Accept, Drop, Reject, Jump, Goto, Return, Queue, Snat, Dnat, Masquerade, Redirect,
                Netmap]
TERMINAL = (Accept, Drop, Reject, Goto, Return, Queue, Snat, Dnat, Masquerade, Redirect, Netmap)

# --------------------------------------------------------------------------- structure


@attrs.frozen(cache_hash=True)  # (rules are looked up by value: -C, -D, --inet alignment)
class Rule:
    matches: tuple[Match, ...] = ()
    statements: tuple[Statement, ...] = ()
    verdict: Optional[Verdict] = None
    comment: Optional[str] = None
    loc: Loc = attrs.field(default=NOLOC, eq=False)  # where it came from; not part of meaning


@frozen
class BaseHook:
    """What makes a chain a base chain."""

    type: str  # filter nat route
    hook: str  # prerouting input forward output postrouting; netdev: ingress egress
    priority: int
    policy: str = "accept"  # accept | drop
    devices: tuple[str, ...] = ()  # netdev hooks: the devices the chain is attached to (sorted)


@frozen
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    base: Optional[BaseHook] = None
    loc: Loc = attrs.field(default=NOLOC, eq=False)


@frozen
class ExternalSet:
    """A set filled outside the ruleset (ipset); `family` ip|ip6, `interval` for net types.
    `updated`: rules also add to it or delete from it (IpsetUpdate), so it holds single
    addresses; `timeout`: some of those additions carry a timeout."""

    name: str
    family: str
    fields: tuple[str, ...] = ("addr",)
    interval: bool = True
    updated: bool = False
    timeout: bool = False


@frozen
class Table:
    family: str  # ip ip6 inet, or bridge netdev arp (L2_FAMILIES)
    name: str
    chains: tuple[Chain, ...] = ()
    sets: tuple[ExternalSet, ...] = ()
    loc: Loc = attrs.field(default=NOLOC, eq=False)
    counters: tuple[CounterObject, ...] = ()  # nft named counter objects
    limits: tuple[LimitObject, ...] = ()  # nft named limit objects

    def chain(self, name: str) -> Optional[Chain]:
        """The first chain called `name` (a dict built once per table: passes ask per jump)."""
        got = _CHAIN_INDEX.get(id(self))
        if got is None or got[0]() is not self:
            index: dict = {}
            for c in self.chains:
                index.setdefault(c.name, c)
            ref = weakref.ref(self, lambda _r, k=id(self): _CHAIN_INDEX.pop(k, None))
            got = _CHAIN_INDEX[id(self)] = (ref, index)
        return got[1].get(name)


_CHAIN_INDEX: dict = {}  # id(table) -> (weak reference to it, chain name -> chain)


@frozen
class Ruleset:
    tables: tuple[Table, ...] = ()

    def table(self, family: str, name: str) -> Optional[Table]:
        for t in self.tables:
            if t.family == family and t.name == name:
                return t
        return None


# --------------------------------------------------------------------------- iptables conventions

# priority of each iptables table, as iptables-nft registers them
TABLE_PRIORITY = {"raw": -300, "mangle": -150, "nat": -100, "filter": 0, "security": 50}
NAT_SRC_PRIORITY = 100
TABLE_CHAINS = {
    "filter": ("INPUT", "FORWARD", "OUTPUT"),
    "nat": ("PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"),
    "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
    "raw": ("PREROUTING", "OUTPUT"),
    "security": ("INPUT", "FORWARD", "OUTPUT"),
}


def iptables_base_hook(table: str, chain: str, policy: str = "accept") -> BaseHook:
    """The nft base-chain description of iptables' built-in chain `chain` of `table`."""
    hook = chain.lower()
    if table == "nat":
        prio = NAT_SRC_PRIORITY if hook in ("postrouting", "input") else -100
        return BaseHook("nat", hook, prio, policy)
    ctype = "route" if (table == "mangle" and hook == "output") else "filter"
    return BaseHook(ctype, hook, TABLE_PRIORITY[table], policy)


def ip_family(addr: Addr) -> str:
    v = addr.version
    return "ip" if v == 4 else "ip6"


# --------------------------------------------------------------------------- nftables-only constructs
# (appended by the nft front end; values below are "nft values": int, Range, an Addr, or a
#  lower-case nft symbol string such as "echo-request" or an interface name)

NftValue = Union[int, Range, IPNetwork, AddrRange, str]


@frozen
class FieldMatch:
    """Generic nft relation on a field no dedicated class covers.

    `expr` is the nft expression in canonical nft text ("ip6 flowlabel", "meta iifgroup", "ct zone",
    "th dport", "vxlan ip saddr", "@th,160,32", "tcp option maxseg size", "fib daddr oif" ...);
    its value is the field as nft reads it (unsigned, network byte order for payload).
    If `mask` is set the value is first ANDed with it (after `xor` when set: (v ^ xor) & mask).
    op "eq": value is one of `values` (a Range matches any value inside it);
    op "lt" "gt" "le" "ge": compare with the single value;
    op "any": (value & OR(values)) != 0  (nft's implicit test on flag types, `ct event new,destroy`).
    Protocol-dependent fields (e.g. "th dport", "icmp code") also require their header, as nft does."""

    expr: str
    values: tuple[NftValue, ...]
    op: str = "eq"
    mask: Optional[int] = None
    xor: Optional[int] = None
    negate: bool = False


@frozen
class SetMatch:
    """The tuple of `keys` (nft expression texts, e.g. ("ip saddr", "tcp dport")) is an element of
    the named set `name` of the same table (a NamedSet), or, when name is None, of `elements`.
    Each element is a tuple with one nft value per key (a Range or network matches any value inside
    it).  Protocol-dependent keys require their header."""

    keys: tuple[str, ...]
    name: Optional[str] = None
    elements: tuple[tuple[NftValue, ...], ...] = ()
    negate: bool = False
    # Per-element statements (nft `{ 10.0.0.1 counter packets 0 bytes 0, ... }`): empty, or one
    # tuple per entry of `elements` (same order) of statements (so far only Counter) that run
    # when the packet's key is that element.  They change no verdict; an element with its own
    # counter counts only the packets that hit it.  Only inline sets, never negated.
    element_stmts: tuple[tuple["Statement", ...], ...] = ()


@frozen
class CtCount:
    """nft `ct count [over] N`: number of connections of this key (conntrack zone wide) is <= N
    (over=False) or > N (over=True), the new connection counted first."""

    count: int
    over: bool = False


@frozen
class NamedSet:
    """A set (or map, when `data` is set) declared in an nft table; kept in Table.sets next to
    ExternalSet.  `types`: nft key data types, one per concatenated field ("ipv4_addr",
    "inet_service", ...), or `typeof` expression texts; flags: interval timeout constant dynamic...;
    elements: key tuples (as in SetMatch), or for maps (key tuple, value) pairs where value is an
    nft value or a Verdict (data == "verdict")."""

    name: str
    types: tuple[str, ...]
    flags: frozenset[str] = frozenset()
    elements: tuple = ()
    data: Optional[str] = None
    timeout: Optional[str] = None
    comment: Optional[str] = None
    # nft `counter` in the declaration: every element counts the packets that hit it (no
    # verdict depends on it)
    counter: bool = False
    # nft `size N`: at most N elements; adding one more from the packet path fails, and the
    # rule that tried stops there (nft_dynset). None: nft's default.
    size: Optional[int] = None
    # empty, or one per element: (timeout, expires) nft texts ("1m30s"), None where not given;
    # such an element leaves the set when its time runs out
    element_timeouts: tuple[tuple[Optional[str], Optional[str]], ...] = ()
    gc_interval: Optional[str] = None  # nft `gc-interval`: when expired elements are reaped


NO_TIMEOUT = (None, None)  # an element without its own timeout or expiry


def padded_timeouts(timeouts: tuple, n: int) -> tuple:
    """NamedSet.element_timeouts (or a SetLit's) as one (timeout, expires) per element."""
    return tuple(timeouts) or (NO_TIMEOUT,) * n


def compact_timeouts(timeouts) -> tuple:
    """The NamedSet.element_timeouts form: empty when no element has a timeout of its own."""
    timeouts = tuple(timeouts)
    return timeouts if any(t != NO_TIMEOUT for t in timeouts) else ()


@frozen
class SetUpdate:
    """nft `add|update|delete @set { key [stateful statements] }`: add (op add, update refreshes the
    timeout) or delete the tuple of `keys` (expression texts) in the named set."""

    op: str
    set: str
    keys: tuple[str, ...]
    timeout: Optional[str] = None  # the added element's own timeout, nft text ("10s")


@frozen
class Continue:
    """nft `continue`: no verdict, evaluation goes on with the next rule."""


@frozen
class VerdictMap:
    """nft `KEYS vmap { k : verdict, ... }` (or `vmap @name`): look the tuple of `keys` up; when an
    element matches apply its verdict, when none matches the rule has no verdict (go on)."""

    keys: tuple[str, ...]
    name: Optional[str] = None
    elements: tuple[tuple[tuple[NftValue, ...], "Verdict"], ...] = ()
    # As SetMatch.element_stmts: empty, or per element the statements (Counter) that run when the
    # packet's key is that element, before its verdict applies.
    element_stmts: tuple[tuple["Statement", ...], ...] = ()
    # Empty, or one per key: an int the key's value is ANDed with before the lookup (None: the
    # key as is), e.g. nft `tcp flags & (ack | urg) vmap { ack : jump a, urg : jump u }`.
    key_masks: tuple[Optional[int], ...] = ()


Match = Union[Match, FieldMatch, SetMatch, CtCount]
Statement = Union[Statement, SetUpdate]


@frozen
class IpsetUpdate:
    """iptables -j SET --add-set / --del-set NAME src[,dst...]: add the packet's addresses (one
    per flag) to ipset NAME, or delete them; the rule goes on (a non-terminal target).  With
    `exist`, adding an element already there refreshes its timeout; `timeout` (seconds) is the
    added element's, None: the set's own default."""

    name: str
    op: str  # add | del
    fields: tuple[str, ...]  # src | dst per dimension
    timeout: Optional[int] = None
    exist: bool = False


Statement = Union[Statement, IpsetUpdate]
Verdict = Union[Verdict, Continue, VerdictMap]


# --------------------------------------------------------------------------- iptables long tail
# (appended by the iptables long-tail work: xt modules/targets with an exact nft counterpart)


@frozen
class Quota:
    """nft `quota [over] N bytes`: a byte counter private to this rule position adds the length of
    every packet reaching this match (this one included); the match holds while the total is
    <= `bytes` (over=False), or once it is > `bytes` (over=True).  iptables `-m quota --quota N`
    is Quota(N): both measured with kernel 6.18 (tests/kernel/test_quota_kernel.py)."""

    bytes: int
    over: bool = False


@frozen
class Audit:
    """AUDIT target / nft `log level audit`: emit an AUDIT_NETFILTER_PKT audit record (mark,
    addresses, protocol) for the packet; evaluation goes on."""


@frozen
class SetPriority:
    """CLASSIFY --set-class / nft `meta priority set`: skb->priority = `value`
    (major << 16 | minor); evaluation goes on."""

    value: int


@frozen
class Dup:
    """TEE / nft `dup to GW [device DEV]`: send a copy of the packet to next hop `gateway`
    (through interface `device` when set); the original goes on unchanged."""

    gateway: IPAddress
    device: Optional[str] = None


@frozen
class TProxy:
    """nft `tproxy to [ADDR]:[PORT]` then accept: when a transparent socket is found (listening on
    `addr`/`port`, None = the packet's own daddr/dport), assign the packet to it, apply the mark
    update (mark & ~mark_mask) ^ mark_value when `mark_mask` is set, and accept.  When no socket
    is found the rule does NOT match (evaluation goes on with the next rule) - iptables' TPROXY
    drops instead, so its front end follows this rule with a drop rule."""

    family: str  # ip | ip6
    addr: Optional[IPAddress] = None
    port: Optional[int] = None
    mark_value: int = 0
    mark_mask: Optional[int] = None


Match = Union[Match, Quota]
Statement = Union[Statement, Audit, SetPriority, Dup]
Verdict = Union[Verdict, TProxy]  # not in TERMINAL: without a socket evaluation goes on


# --------------------------------------------------------------------------- iptables connlimit
# (appended by helper tx2)


@frozen
class ConnLimit:
    """iptables -m connlimit / nft `add @SET { KEY ct count [over] N }` on a dynamic set of this
    rule's own: evaluating it adds the packet's connection to the list of its key - the packet's
    source (field saddr) or destination (daddr) address cut to `prefix` bits - and counts the
    live connections there.  It matches while the count is <= `count` (above=False) or once it
    is > `count` (above=True)."""

    field: str  # saddr | daddr
    prefix: int
    count: int
    above: bool = True


Match = Union[Match, ConnLimit]


# --------------------------------------------------------------------------- nft computed values
# (appended by the nft front end, helper nftf2: statements whose value is read from the packet)


@frozen
class FieldRef:
    """A value read from the packet, in canonical nft text: a field ("ip dscp", "ct mark",
    "ct original ip saddr") or one of nft's generators ("numgen inc mod 2 offset 100",
    "jhash ip saddr . ip daddr mod 2 seed 0xdeadbeef", "symhash mod 2", "osf name")."""

    expr: str


@frozen
class BitOp:
    """`left op right` (op & | ^ << >>) on values (int, FieldRef or BitOp), computed as nft does
    in the width of the field being written."""

    op: str
    left: object
    right: object


@frozen
class MapValue:
    """The value of the map element the tuple of `keys` (nft expression texts) is in: of the
    named map `name` of the same table, or, when name is None, of `elements` ((key tuple, value)
    pairs as in NamedSet).  When no element holds the key, the statement using it and the rest
    of the rule (later statements and the verdict) do not run: evaluation goes on with the next
    rule."""

    keys: tuple[str, ...]
    name: Optional[str] = None
    elements: tuple = ()


@frozen
class FieldSet:
    """nft `EXPR set VALUE` for a key no dedicated statement covers: payload writes (`ip ecn set`,
    `ip6 flowlabel set`, `udp dport set`, `tcp flags set`... with the checksums nft updates) and
    meta/ct keys (`meta mark`, `ct mark`, `ip dscp` in inet tables...).  VALUE is an nft value,
    a FieldRef, a BitOp or a MapValue, computed from the packet before it is written; evaluation
    goes on."""

    expr: str
    value: object


@frozen
class TProxySet:
    """nft `tproxy [ip|ip6] to [ADDR][:PORT]` NOT followed by a verdict: when a transparent
    socket is found (listening on `addr`/`port`, None = the packet's own daddr/dport) the packet
    is assigned to it and the rule goes on (later statements, then the verdict if any); when none
    is found the rest of the rule does not run (evaluation goes on with the next rule).  `family`
    is the address family it applies to; packets of the other family skip the rest of the rule
    too."""

    family: str  # ip | ip6
    addr: Optional[IPAddress] = None
    port: Optional[int] = None


@frozen
class Synproxy:
    """nft `synproxy [mss N] [wscale N] [timestamp] [sack-perm]`: a TCP packet with SYN set is
    answered with a SYN-ACK carrying a SYN cookie and the options given (None = not sent) and
    is dropped; else one with ACK set that completes such a handshake opens the connection to
    the server and is consumed, any other is dropped; TCP packets with neither flag go on with
    the rest of the rule; non-TCP packets skip the rest of the rule.  (iptables' SYNPROXY
    target takes only a SYN or ACK without the other flags and RST/FIN: not this node.)"""

    mss: Optional[int] = None
    wscale: Optional[int] = None
    timestamp: bool = False
    sack_perm: bool = False


@frozen
class NatMap:
    """nft `snat|dnat [ip|ip6] to KEYS map {...}|@m` and `redirect to :KEYS map {...}`: look the
    tuple of `keys` up in the named map `name` (same table) or in `elements` ((key tuple,
    NatTarget) pairs; for redirect only ports are set); the element's target is the new address
    and/or ports, applied as Snat/Dnat/Redirect with `flags`.  When no element holds the key the
    rule does not apply: evaluation goes on with the next rule.  `family` (ip|ip6) is the family
    of the new addresses; packets of the other family do not match."""

    kind: str  # snat dnat redirect
    family: str
    keys: tuple[str, ...]
    name: Optional[str] = None
    elements: tuple = ()
    flags: frozenset[str] = frozenset()


def nat_map_verdict(v: NatMap, target):
    """The NAT verdict a NatMap element's value applies (a named map's value is an address);
    None when the value is not one."""
    if isinstance(target, tuple) and len(target) == 2 and type(target[1]) in (int, Range):
        # a named map's `ipv4_addr . inet_service` value: address and port
        port = target[1] if isinstance(target[1], Range) else Range(target[1], target[1])
        target = NatTarget(target[0], port)
        if not isinstance(target.addr, (ipaddress.IPv4Network, ipaddress.IPv6Network, AddrRange)):
            return None
    if not isinstance(target, NatTarget):
        try:
            target = NatTarget(ipaddress.ip_network(target), None)
        except (TypeError, ValueError):
            return None
    if v.kind == "redirect":
        return Redirect(target.ports, v.flags)
    return (Snat if v.kind == "snat" else Dnat)((target,), v.flags)


Statement = Union[Statement, FieldSet, TProxySet, Synproxy]
Verdict = Union[Verdict, NatMap]  # not in TERMINAL: without an element evaluation goes on


# --------------------------------------------------------------------------- nft per-element limit
# (appended by the nft-optimize corpus work)


@frozen
class SetLimit:
    """nft `update @S { KEYS limit rate [over] N/unit burst B packets }` on a dynamic set S that
    has no timeout: the tuple of `keys` (expression texts) is added to S if absent, and each
    element of S has its own token bucket (rate N per unit, burst B packets).  Unlike HashLimit,
    an element is never forgotten while idle (it stays until deleted or the set is flushed).
    above=False matches while the packet's element is within its rate, above=True when over
    it.  When S is full (its size) a new key cannot be added and the rule does not match."""

    set: str
    keys: tuple[str, ...]
    rate: int
    unit: str
    burst: int = 5
    above: bool = False


Match = Union[Match, SetLimit]


# --------------------------------------------------------------------------- iptables -m recent


@frozen
class Recent:
    """iptables -m recent (xt_recent): named lists of addresses, each with the times it was seen.
    The packet's `side` address (saddr / daddr) cut by `mask` (an address as an int; None = all
    bits) is looked up in list `name`.  command set: add or refresh it, always matches;
    rcheck: matches if it is listed and (with seconds) seen in the last `seconds` s (with
    hitcount) at least `hitcount` times; update: as rcheck, and a match refreshes it; remove:
    matches if listed and removes it.  negate inverts the result (and so also which packets
    update refreshes).  rttl: the entry also needs the packet's TTL; reap: drop older stamps."""

    command: str  # set | rcheck | update | remove
    name: str = "DEFAULT"
    seconds: int = 0
    hitcount: int = 0
    reap: bool = False
    rttl: bool = False
    side: str = "saddr"
    mask: Optional[int] = None
    negate: bool = False


Match = Union[Match, Recent]


def proto_port_ranges(m: "SetMatch") -> dict[int, list[Range]]:
    """A (protocol, port) lookup's elements (`meta l4proto . th dport { tcp . 53, ... }`) as
    {protocol: its port ranges, sorted}."""
    ports: dict[int, list[Range]] = {}
    for proto, port in m.elements:
        ports.setdefault(proto, []).append(port if isinstance(port, Range) else Range(port, port))
    return {p: sorted(rs, key=lambda r: (r.lo, r.hi)) for p, rs in sorted(ports.items())}


# --------------------------------------------------------------------------- iptables time


@frozen
class Time:
    """iptables -m time, in UTC (xt_time without --kerneltz).  It reads the wall clock's whole
    second `t`: t must be in [date_start, date_stop]; its second of the day in
    [daytime_start, daytime_stop] (when start >= stop: not strictly between stop and start);
    and its day's weekday (bit 1 Monday .. bit 7 Sunday of `weekdays`) and day of the month
    (bit 1..31 of `monthdays`) selected.  With `contiguous` (start >= stop only) the part of the
    day up to daytime_stop counts as the day before.  fwc.timewindow.matches gives the exact
    meaning, written from the kernel's time_mt."""

    date_start: int = 0
    date_stop: int = 2**31 - 1
    daytime_start: int = 0
    daytime_stop: int = 86399
    weekdays: int = 0xFE
    monthdays: int = 0xFFFFFFFE
    contiguous: bool = False


Match = Union[Match, Time]


# --------------------------------------------------------------------------- iptables connlabel


@frozen
class ConnLabel:
    """iptables -m connlabel [!] --label BIT: the packet's conntrack entry carries label BIT,
    xor `negate`.  Without an entry (untracked, invalid, a template) the match is `negate`: a
    negated test also matches those packets, unlike nft's `ct label != BIT`."""

    bit: int
    negate: bool = False


@frozen
class ConnLabelSet:
    """iptables -m connlabel [!] --label BIT --set: when the packet has a conntrack entry with
    room for labels (every entry made once a rule uses labels), set label BIT and match (not
    `negate`); otherwise the match is `negate`."""

    bit: int
    negate: bool = False


Match = Union[Match, ConnLabel, ConnLabelSet]


@frozen
class Cluster:
    """iptables -m cluster --cluster-total-nodes TOTAL [!] --cluster-local-nodemask MASK
    --cluster-hash-seed SEED.  Evaluating it first turns a packet's pkt_type MULTICAST into HOST
    when its IP destination is not multicast (frames sent to a cluster's multicast MAC), matched
    or not.  Then: without a conntrack entry (invalid, untracked) it does not match, negated or
    not; else node = jhash of the original source address of the connection's master (the
    connection itself when it has none) with SEED, scaled to 0..TOTAL-1, and it matches when
    bit `node` of MASK is set, xor `negate`."""

    total: int
    mask: int
    seed: int
    negate: bool = False

    @property
    def every_node(self) -> bool:
        """MASK names every node: the hash cannot change the outcome."""
        return self.mask == (1 << self.total) - 1


Match = Union[Match, Cluster]


@frozen
class Refused:
    """A rule the front end refused (`message` says why), kept in place only when asked to
    (`--drop-unsupported`): it has no meaning, and every backend refuses it, so that the rule
    is left out with a comment where it stood."""

    message: str


Match = Union[Match, Refused]

# matches whose result depends on state kept between packets (token buckets, counters, lists,
# random draws): evaluating one is itself a side effect, so skipping or repeating it changes
# later packets
STATEFUL_MATCHES = (Limit, HashLimit, Statistic, CtCount, Quota, ConnLimit, Recent, SetLimit,
                    Socket, ConnLabelSet, Cluster, NamedLimit)
# (a socket lookup, --restore-skmark also sets the mark; cluster rewrites pkt_type)


_FAMILY_TESTS = {("meta protocol", "ip"): "ip", ("meta protocol", "ip6"): "ip6",
                 ("meta nfproto", "ipv4"): "ip", ("meta nfproto", "ipv6"): "ip6"}


def family_test(m) -> Optional[str]:
    """'ip' or 'ip6' when `m` is exactly `meta nfproto ipv4|ipv6` (or `meta protocol ...`)."""
    if isinstance(m, FieldMatch) and m.op == "eq" and not m.negate and m.mask is None and \
            m.xor is None and len(m.values) == 1:
        return _FAMILY_TESTS.get((m.expr, m.values[0]))
    return None


def match_family(m) -> Optional[str]:
    """The packet family ('ip' | 'ip6') match `m` holds only for in an inet rule, or None.
    nft puts that family's test in front of a header field (negated or not)."""
    if isinstance(m, Icmp) and not m.negate:
        return m.family
    if isinstance(m, (Address, CtAddress)) and not m.negate and m.values and \
            len({ip_family(a) for a in m.values}) == 1:
        return ip_family(m.values[0])
    if isinstance(m, FieldMatch):
        word = m.expr.split()[0]
        if word in ("ip", "ip6", "icmp", "icmpv6"):
            return "ip" if word in ("ip", "icmp") else "ip6"
    return family_test(m)


def match_families(matches) -> set:
    """The packet families the matches require, explicit family tests included (one element:
    a rule for that family; two: the matches conflict)."""
    return {family_test(m) or match_family(m) for m in matches} - {None}


# nft's `meta day` names, 0 (Sunday) to 6
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def required_family(matches) -> Optional[str]:
    """The one packet family a rule's matches hold for, or None (both, or they conflict)."""
    fams = {match_family(m) for m in matches} - {None}
    return fams.pop() if len(fams) == 1 else None


def reachable(edges: dict, start: str) -> set:
    """The chains reachable from chain `start` (itself included) through `edges`, a dict of
    chain name -> the chains its rules jump or go to."""
    todo, seen = [start], set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(edges.get(name, ()))
    return seen


# a match no packet meets (what iptables' inverted ranges of length, iprange... read as):
# every packet nft sees has a layer 4 protocol number, or stops the rule where it has none
NEVER = FieldMatch("meta l4proto", (Range(0, 255),), negate=True)
ALL_PORTS = (Range(0, 65535),)
MULTIPORT_SLOTS = 15  # xt_multiport's entries; a range takes two ("too many ports specified")


def _slots(r: Range) -> int:
    return 1 if r.lo == r.hi else 2


def multiport_slots(ranges) -> int:
    return sum(map(_slots, ranges))


def multiport_chunks(ranges) -> list[tuple]:
    """`ranges` in order, cut into runs that each fit one -m multiport."""
    out: list[list] = [[]]
    used = 0
    for r in ranges:
        need = _slots(r)
        if used + need > MULTIPORT_SLOTS:
            out.append([])
            used = 0
        out[-1].append(r)
        used += need
    return [tuple(c) for c in out if c]
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}

# the conntrack helpers the kernel registers: name -> (protocol numbers, families)
KERNEL_HELPERS = {
    "ftp": ({6}, ("ip", "ip6")), "tftp": ({17}, ("ip", "ip6")), "sip": ({6, 17}, ("ip", "ip6")),
    "sane": ({6}, ("ip", "ip6")), "amanda": ({17}, ("ip", "ip6")), "Q.931": ({6}, ("ip", "ip6")),
    "RAS": ({17}, ("ip", "ip6")), "irc": ({6}, ("ip",)), "pptp": ({6}, ("ip",)),
    "snmp": ({17}, ("ip",)), "netbios-ns": ({17}, ("ip",)),
}


def nat_maps_ports(v) -> bool:
    """Whether a NAT verdict maps ports (which needs one transport protocol in the rule)."""
    if isinstance(v, (Snat, Dnat)):
        return any(t.ports is not None for t in v.to)
    return isinstance(v, (Masquerade, Redirect)) and v.ports is not None


def per_rule_state(matches) -> bool:
    """Whether the matches keep state of their own that every packet reaching them updates,
    whatever its family: a limit's bucket, a quota, a connection count, an nth-packet counter.
    In an inet rule that is one state for IPv4 and IPv6; iptables and ip6tables keep one each."""
    return any(isinstance(m, (Limit, Quota, CtCount, NamedLimit)) or
               (isinstance(m, Statistic) and m.mode == "nth") for m in matches)


def state_sees_both_families(matches) -> bool:
    """Whether an inet rule's per-rule state (per_rule_state) is updated by packets of both
    families: no match before the first stateful one restricts the family (matches run in
    order, so `limit rate 1/second ip saddr 10.0.0.1` counts IPv6 packets too)."""
    for m in matches:
        if per_rule_state((m,)):
            return True
        if family_test(m) is not None or match_family(m) is not None:
            return False
    return False


def nat_family(v) -> Optional[str]:
    """'ip' or 'ip6' when every target of a SNAT/DNAT verdict has an address of that family
    (`dnat ip to ...` in an inet table acts on that family only), else None."""
    if not isinstance(v, (Snat, Dnat)) or not v.to or any(t.addr is None for t in v.to):
        return None
    fams = {ip_family(t.addr) for t in v.to}
    return fams.pop() if len(fams) == 1 else None


def reaching_bases(table: "Table", what: str = "hook", vmaps: bool = False) -> dict[str, set]:
    """For each chain, the hooks (or what="priority", the priorities) of the base chains whose
    traversal can reach it, through jumps and gotos (and anonymous verdict maps' with vmaps)."""
    def targets(r: "Rule"):
        if vmaps:
            return verdict_targets(r, {})
        return [r.verdict.chain] if isinstance(r.verdict, (Jump, Goto)) else []
    edges = {c.name: {x for r in c.rules for x in targets(r)} for c in table.chains}
    out: dict[str, set] = {}
    for c in table.chains:
        if c.base is not None:
            for n in reachable(edges, c.name):
                out.setdefault(n, set()).add(getattr(c.base, what))
    return out


def verdict_targets(r: "Rule", sets: dict) -> list[str]:
    """The chains a rule's verdict jumps or goes to (a verdict map's too; `sets`: name ->
    NamedSet of the rule's table, for `vmap @name`)."""
    v = r.verdict
    if isinstance(v, (Jump, Goto)):
        return [v.chain]
    if isinstance(v, VerdictMap):
        elems = v.elements
        if v.name is not None and isinstance(sets.get(v.name), NamedSet):
            elems = sets[v.name].elements
        return [e[1].chain for e in elems
                if isinstance(e, tuple) and len(e) == 2 and isinstance(e[1], (Jump, Goto))]
    return []


JUMP_STACK_SIZE = 16  # the kernel's NFT_JUMP_STACK_SIZE: a chain at this level is refused


def _jump_steps(t: "Table"):
    """(chain name -> chain, chain -> iterator of (rule, target chain name)) of a table's
    jumps, gotos and verdict map targets."""
    sets = {s.name: s for s in t.sets if isinstance(s, NamedSet)}

    def steps(c: "Chain"):
        return iter([(r, x) for r in c.rules for x in verdict_targets(r, sets)])
    return {c.name: c for c in t.chains}, steps


def jump_too_deep(t: "Table") -> Optional[tuple["Rule", str]]:
    """(rule, chain) where the rule's jump or goto reaches a chain JUMP_STACK_SIZE levels
    below a base chain (the kernel refuses the ruleset: EMLINK, "Too many links", also for an
    empty chain and for goto), or None.  Assumes no loops (see jump_loop)."""
    chains, steps = _jump_steps(t)
    deepest: dict = {}  # chain -> deepest level already explored from it
    for base in (c for c in t.chains if c.base is not None):
        stack = [(1, steps(base))]
        while stack:
            level, it = stack[-1]
            step = next(it, None)
            if step is None:
                stack.pop()
                continue
            rule, target = step
            if target not in chains or deepest.get(target, -1) >= level:
                continue
            if level >= JUMP_STACK_SIZE:
                return rule, target
            deepest[target] = level
            stack.append((level + 1, steps(chains[target])))
    return None


def too_deep_message(chain: str) -> str:
    return (f"this jump reaches chain '{chain}' {JUMP_STACK_SIZE} jumps below a base chain; "
            "the kernel refuses chains that deep (\"Too many links\")")


def jump_loop(t: "Table") -> Optional["Rule"]:
    """A rule whose jump closes a loop among chains a base chain reaches (the kernel refuses
    such a ruleset: ELOOP), or None."""
    chains, steps = _jump_steps(t)
    done: set = set()

    def named_steps(name):
        return ((rule, x) for rule, x in steps(chains[name]) if x in chains)
    for base in (c for c in t.chains if c.base is not None):
        for event, x in depth_first(base.name, named_steps, done):
            if event == "back":
                return x
            done.add(x)
    return None


def depth_first(root, steps, done):
    """An iterative depth-first walk from `root` (no recursion limit): `steps(node)` gives
    (step, child) pairs.  Yields ("back", step) for a step onto the current path (a loop) and
    ("exit", node) once all of a node's steps are walked; children in `done` (which the caller
    may grow as nodes exit) are not entered again."""
    path = {root}
    stack = [(root, iter(steps(root)))]
    while stack:
        node, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            path.discard(node)
            yield "exit", node
            continue
        step, child = nxt
        if child in path:
            yield "back", step
        elif child not in done:
            path.add(child)
            stack.append((child, iter(steps(child))))


# how error messages name a construct: its nft form and, where iptables has one, that form
CONSTRUCT_NAMES = {
    "Proto": "a protocol match (meta l4proto, -p)", "Address": "an address match (-s/-d)",
    "Interface": "an interface match (-i/-o)", "Fragment": "a fragment match (-f)",
    "Port": "a port match (--sport/--dport)", "TcpFlags": "tcp flags (--tcp-flags)",
    "TcpOption": "tcp option (--tcp-option)", "Icmp": "an ICMP type match",
    "CtState": "ct state (--ctstate)", "CtStatus": "ct status (--ctstatus)",
    "CtDirection": "ct direction (--ctdir)", "CtProto": "ct protocol (--ctproto)",
    "CtAddress": "a ct address (--ctorigsrc ...)", "CtPort": "a ct port (--ctorigsrcport ...)",
    "CtExpire": "ct expiration (--ctexpire)", "Mark": "meta/ct mark (-m mark, -m connmark)",
    "Mac": "ether saddr (-m mac)", "AddrType": "fib ... type (-m addrtype)",
    "SkUid": "meta skuid (-m owner --uid-owner)", "SkGid": "meta skgid (-m owner --gid-owner)",
    "SocketExists": "-m owner --socket-exists", "MssOutside": "tcp option maxseg (-m tcpmss)",
    "Socket": "socket (-m socket)", "PktType": "meta pkttype (-m pkttype)",
    "Length": "meta length (-m length)", "Ttl": "ip ttl / ip6 hoplimit (-m ttl, -m hl)",
    "Dscp": "dscp (-m dscp)", "Tos": "-m tos", "Limit": "limit rate (-m limit)",
    "NamedLimit": "limit name", "SetLookup": "an ipset match (-m set)",
    "IpsecPolicy": "meta secpath / ipsec (-m policy)",
    "PhysDevBridged": "-m physdev --physdev-is-bridged", "Helper": "-m helper",
    "Statistic": "numgen (-m statistic)", "HashLimit": "a meter (-m hashlimit)",
    "Log": "log (LOG)", "NfLog": "log group (NFLOG)", "SetMark": "meta/ct mark set (MARK, CONNMARK)",
    "CopyMark": "a mark copy (CONNMARK --save-mark/--restore-mark)", "Notrack": "notrack",
    "CtHelperSet": "ct helper set (CT --helper)", "CtZoneSet": "ct zone set (CT --zone)",
    "TcpMss": "tcp option maxseg size set (TCPMSS)", "SetTtl": "ip ttl set (TTL, HL)",
    "SetDscp": "ip dscp set (DSCP)", "SetTos": "TOS", "Checksum": "CHECKSUM",
    "Trace": "meta nftrace set 1 (TRACE)", "Counter": "counter", "NamedCounter": "counter name",
    "Accept": "accept", "Drop": "drop", "Reject": "reject", "Jump": "jump", "Goto": "goto",
    "Return": "return", "Queue": "queue (NFQUEUE)", "Snat": "snat (SNAT)", "Dnat": "dnat (DNAT)",
    "Masquerade": "masquerade (MASQUERADE)", "Redirect": "redirect (REDIRECT)",
    "Netmap": "a prefix map (NETMAP)", "FieldMatch": "a header field match",
    "SetMatch": "a set lookup", "CtCount": "ct count", "SetUpdate": "add/update @set",
    "Continue": "continue", "VerdictMap": "a verdict map (vmap)",
    "IpsetUpdate": "an ipset update (-j SET)", "Quota": "quota (-m quota)", "Audit": "AUDIT",
    "SetPriority": "meta priority set (CLASSIFY)", "Dup": "dup (TEE)",
    "TProxy": "tproxy (TPROXY)", "ConnLimit": "ct count per address (-m connlimit)",
    "FieldSet": "a header field write", "TProxySet": "tproxy without a verdict",
    "Synproxy": "synproxy (SYNPROXY)", "NatMap": "snat/dnat/redirect to a map",
    "SetLimit": "a per-element limit in a set", "Recent": "-m recent", "Time": "meta time/day/hour (-m time)",
    "ConnLabel": "ct label (-m connlabel)", "ConnLabelSet": "ct label set (-m connlabel --set)",
    "Cluster": "-m cluster",
}


def construct_name(node) -> str:
    """How error messages name an IR match, statement or verdict: nft and iptables forms."""
    name = type(node).__name__
    return CONSTRUCT_NAMES.get(name, name)
