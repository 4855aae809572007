"""iptables words for the IR nodes the iptables long tail reads (Quota, ConnLimit, Audit,
SetPriority, Dup, TProxy and the FieldMatch forms of the tail modules): the inverse of
fwc/frontends/iptables_ext_tail.py, so that parsing the emitted rule gives the same IR.

Each function returns None for a node it does not know; the caller then refuses it."""

from __future__ import annotations

import ipaddress

from typing import Optional

from fwc import ir

U32 = 0xFFFFFFFF
U64 = 2**64 - 1


def _neg(negate: bool) -> list[str]:
    return ["!"] if negate else []


def _urange(r: ir.Range) -> str:
    return str(r.lo) if r.lo == r.hi else f"{r.lo}:{r.hi}"


def _single_range(m: ir.FieldMatch) -> Optional[ir.Range]:
    if m.op != "eq" or m.mask is not None or m.xor is not None or len(m.values) != 1:
        return None
    v = m.values[0]
    if isinstance(v, int) and not isinstance(v, bool):
        return ir.Range(v, v)
    return v if isinstance(v, ir.Range) else None


SPI_FIELDS = {"ah spi": ("ah", "--ahspi", U32), "esp spi": ("esp", "--espspi", U32),
              "comp cpi": ("ipcomp", "--ipcompspi", 0xFFFF)}
ECN_NAMES = ("not-ect", "ect1", "ect0", "ce")
CONNBYTES = {f"ct {d}{mode}": (d.strip() or "both", mode)
             for d in ("", "original ", "reply ") for mode in ("packets", "bytes", "avgpkt")}


# FieldMatch forms whose iptables module needs its protocol given with -p (the nft forms
# carry it as an implicit `meta l4proto` test, or, for mh, find the header only there)
IMPLIED_PROTO = {"esp spi": 50, "comp cpi": 108, "mh type": 135}
EXTHDR_LEN_OPT = {"rt": "--rt-len", "hbh": "--hbh-len", "dst": "--dst-len"}


def implied_proto(m, fam: str) -> Optional[int]:
    if not isinstance(m, ir.FieldMatch):
        return None
    if m.expr == "ah spi" and fam == "ip":  # ipt_ah needs -p ah; ip6t_ah walks the headers
        return 51
    if first_header(m, fam) is not None:
        return m.values[0]
    return IMPLIED_PROTO.get(m.expr)


# the IPv6 extension headers (and "no next header"): `ip6 nexthdr N` of one of these is no
# upper-layer protocol test
IPV6_EXT_HEADERS = frozenset({0, 43, 44, 50, 51, 59, 60, 135, 139, 140, 253, 254})


def first_header(m, fam: str) -> Optional[int]:
    """N of `ip6 nexthdr N` (the first header after IPv6's is protocol N: no extension header
    before it), which ip6tables says as `-p N -m ipv6header --header protocol` (the packet has
    no extension header but an upper-layer one); None for other forms."""
    if isinstance(m, ir.FieldMatch) and m.expr == "ip6 nexthdr" and fam == "ip6" and \
            m.op == "eq" and m.mask is None and m.xor is None and not m.negate and \
            len(m.values) == 1 and isinstance(m.values[0], int) and \
            not isinstance(m.values[0], bool) and 0 < m.values[0] < 256 and \
            m.values[0] not in IPV6_EXT_HEADERS:
        return m.values[0]
    return None


def _exthdr_words(m: ir.FieldMatch, fam: str) -> Optional[list[str]]:
    """ip6tables frag/rt/hbh/dst/mh words: the inverse of the front end's readings."""
    if fam != "ip6" or m.mask is not None or m.xor is not None or m.op != "eq":
        return None
    hdr, _, field = m.expr.partition(" ")
    if hdr == "exthdr" and field in ("frag", "rt", "hbh", "dst") and m.values == ("exists",) \
            and not m.negate:
        return ["-m", field]
    r = _single_range(m)
    if r is None:
        return None
    neg = _neg(m.negate)
    if m.expr == "frag id":
        return ["-m", "frag"] + neg + ["--fragid", _urange(r)]
    if m.expr == "rt type" and r.lo == r.hi:
        return ["-m", "rt"] + neg + ["--rt-type", str(r.lo)]
    if m.expr == "rt seg-left":
        return ["-m", "rt"] + neg + ["--rt-segsleft", _urange(r)]
    if field == "hdrlength" and hdr in EXTHDR_LEN_OPT and r.lo == r.hi:
        return ["-m", hdr] + neg + [EXTHDR_LEN_OPT[hdr], str((r.lo + 1) * 8)]
    if m.expr == "mh type" and not (m.negate and r == ir.Range(0, 255)):
        return ["-m", "mh"] + neg + ["--mh-type", _urange(r)]
    if not m.negate and r.lo == r.hi:
        if m.expr == "frag frag-off" and r.lo == 0:
            return ["-m", "frag", "--fragfirst"]
        if m.expr == "frag more-fragments" and r.lo in (0, 1):
            return ["-m", "frag", "--fragmore" if r.lo else "--fraglast"]
    return None


def field_match_words(m: ir.FieldMatch, fam: str) -> Optional[list[str]]:
    """-m MODULE words for a FieldMatch of a tail module, None when no module reads back as it."""
    words = _exthdr_words(m, fam)
    if words is not None:
        return words
    if first_header(m, fam) is not None:  # (its -p comes from implied_proto)
        return ["-m", "ipv6header", "--header", "protocol"]
    r = _single_range(m)
    if m.expr in SPI_FIELDS and r is not None:
        mod, opt, top = SPI_FIELDS[m.expr]
        if r.hi > top or (m.negate and r == ir.Range(0, top)):
            return None
        return ["-m", mod] + _neg(m.negate) + [opt, _urange(r)]
    if m.expr == "meta cpu" and r is not None and r.lo == r.hi:
        return ["-m", "cpu"] + _neg(m.negate) + ["--cpu", str(r.lo)]
    if m.expr == "tcp option maxseg size" and r is not None and not m.negate:
        return ["-m", "tcpmss", "--mss", _urange(r)]
    if m.expr == f"{fam} ecn" and m.op == "eq" and len(m.values) == 1 and \
            m.values[0] in ECN_NAMES and m.mask is None:
        return ["-m", "ecn"] + _neg(m.negate) + ["--ecn-ip-ect",
                                                 str(ECN_NAMES.index(m.values[0]))]
    if m.expr == "ct label" and m.op == "any" and len(m.values) == 1 and \
            isinstance(m.values[0], int):
        return ["-m", "connlabel"] + _neg(m.negate) + ["--label", str(m.values[0])]
    if m.expr in ("meta rtclassid", "meta iifgroup", "meta oifgroup") and m.op == "eq" and \
            len(m.values) == 1 and isinstance(m.values[0], int) and m.xor is None:
        mask = U32 if m.mask is None else m.mask
        v = m.values[0]
        text = f"{v:#x}" if mask == U32 else f"{v:#x}/{mask:#x}"
        if m.expr == "meta rtclassid":
            return ["-m", "realm"] + _neg(m.negate) + ["--realm", text]
        if v & ~mask:
            return None  # the front end keeps only value & mask
        opt = "--src-group" if m.expr == "meta iifgroup" else "--dst-group"
        return ["-m", "devgroup"] + _neg(m.negate) + [opt, text]
    if m.expr in CONNBYTES and m.mask is None and m.xor is None and len(m.values) == 1:
        d, mode = CONNBYTES[m.expr]
        v = m.values[0]
        if m.op in ("ge", "lt") and isinstance(v, int):
            count, negate = str(v), m.op == "lt"
        elif m.op == "eq" and isinstance(v, ir.Range) and v.hi != U64:
            count, negate = f"{v.lo}:{v.hi}", m.negate
        else:
            return None
        return ["-m", "connbytes"] + _neg(negate) + ["--connbytes", count, "--connbytes-dir", d,
                                                     "--connbytes-mode", mode]
    return None


def match_words(m, fam: str) -> Optional[list[str]]:
    if isinstance(m, ir.Quota):
        return ["-m", "quota"] + _neg(m.over) + ["--quota", str(m.bytes)]
    if isinstance(m, ir.ConnLimit):
        width = 32 if fam == "ip" else 128
        w = ["-m", "connlimit", "--connlimit-above" if m.above else "--connlimit-upto",
             str(m.count)]
        if m.prefix != width:
            w += ["--connlimit-mask", str(m.prefix)]
        return w + (["--connlimit-daddr"] if m.field == "daddr" else [])
    if isinstance(m, ir.FieldMatch):
        return field_match_words(m, fam)
    if isinstance(m, (ir.ConnLabel, ir.ConnLabelSet)):
        return ["-m", "connlabel", *_neg(m.negate), "--label", str(m.bit)] + \
            (["--set"] if isinstance(m, ir.ConnLabelSet) else [])
    if isinstance(m, ir.Time):
        return time_words(m)
    if isinstance(m, ir.Cluster):  # (iptables-save's order and hex)
        return ["-m", "cluster", *_neg(m.negate), "--cluster-local-nodemask", f"0x{m.mask:08x}",
                "--cluster-total-nodes", str(m.total), "--cluster-hash-seed", f"0x{m.seed:08x}"]
    if isinstance(m, ir.Recent):
        return recent_words(m, fam)
    return None


def time_words(m: ir.Time) -> Optional[list[str]]:
    import time as _time

    def date(t: int) -> str:
        return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(t))

    def daytime(t: int) -> str:
        return f"{t // 3600:02d}:{t // 60 % 60:02d}:{t % 60:02d}"

    out = ["-m", "time"]
    if (m.daytime_start, m.daytime_stop) != (0, 86399):
        out += ["--timestart", daytime(m.daytime_start), "--timestop", daytime(m.daytime_stop)]
    if m.monthdays != 0xFFFFFFFE:
        days = [str(d) for d in range(1, 32) if m.monthdays & (1 << d)]
        if not days:
            return None  # no day selected: --monthdays cannot say it
        out += ["--monthdays", ",".join(days)]
    if m.weekdays & 0xFE != 0xFE:
        names = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
        days = [names[d - 1] for d in range(1, 8) if m.weekdays & (1 << d)]
        if not days:
            return None
        out += ["--weekdays", ",".join(days)]
    if m.date_start:
        out += ["--datestart", date(m.date_start)]
    if m.date_stop != 2**31 - 1:
        out += ["--datestop", date(m.date_stop)]
    if m.contiguous:
        out.append("--contiguous")
    return out


def recent_words(m: ir.Recent, fam: str) -> list[str]:
    """In iptables-save's order (libxt_recent), --mask and the side always written."""
    width = 32 if fam == "ip" else 128
    w = ["-m", "recent"] + _neg(m.negate) + [f"--{m.command}"]
    if m.seconds:
        w += ["--seconds", str(m.seconds)]
    if m.reap:
        w.append("--reap")
    if m.hitcount:
        w += ["--hitcount", str(m.hitcount)]
    if m.rttl:
        w.append("--rttl")
    mask = 2**width - 1 if m.mask is None else m.mask
    mask_text = str(ipaddress.ip_address(mask) if width == 32 else ipaddress.IPv6Address(mask))
    return w + ["--name", m.name, "--mask", mask_text,
                "--rsource" if m.side == "saddr" else "--rdest"]


def statement_words(s) -> Optional[list[str]]:
    if isinstance(s, ir.Audit):
        return ["-j", "AUDIT", "--type", "accept"]  # --type has no effect since Linux 4.12
    if isinstance(s, ir.SetPriority):
        return ["-j", "CLASSIFY", "--set-class", f"{s.value >> 16:x}:{s.value & 0xFFFF:x}"]
    if isinstance(s, ir.Dup):
        return ["-j", "TEE", "--gateway", str(s.gateway)] + \
            (["--oif", s.device] if s.device is not None else [])
    return None


def tproxy_words(v: ir.TProxy) -> list[str]:
    w = ["-j", "TPROXY", "--on-port", str(v.port or 0)]
    if v.addr is not None:
        w += ["--on-ip", str(v.addr)]
    if v.mark_mask is not None:
        w += ["--tproxy-mark", f"{v.mark_value:#x}/{v.mark_mask:#x}"]
    return w


def is_tproxy_fallback(prev: Optional[ir.Rule], rule: ir.Rule) -> bool:
    """`rule` is the drop rule the front end adds after a TPROXY rule (iptables' TPROXY drops
    by itself when no socket is found, so the pair is one iptables rule)."""
    return prev is not None and isinstance(prev.verdict, ir.TProxy) and \
        rule.verdict == ir.Drop() and not rule.statements and rule.matches == prev.matches \
        and rule.comment == prev.comment
