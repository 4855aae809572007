"""Names and literals as nft 1.0.6's parser accepts them.

nft 1.0.6 cannot quote table/chain/set names: a name must be a bare word of its scanner and must
not be one of its keywords.  The keyword list below was measured by asking nft 1.0.6 to parse
`chain WORD` for every lower-case word of its man page and test suites (words it refused)."""

from __future__ import annotations

import re

NFT_KEYWORDS = frozenset("""
accept add ah all and arp auto-merge bridge cgroup chain comment comp constant continue counter
cpu create ct day dccp define delete describe device devices dnat drop dst dup dynamic ecn element
elements eq esp ether exists expires exthdr fib flags flow flowtable flush frag fwd gc-interval get
goto gt handle hbh hook hour ibrname icmp icmpv6 igmp iif iifgroup iifname iiftype include index
inet insert interval ip ip6 ipsec jhash jump limit list log lt map mark masquerade meta mh missing
monitor ne netdev nftrace not notrack numgen obrname offload oif oifgroup oifname oiftype or osf
pkttype policy position priority queue quota random redefine redirect reject rename replace reset
return rt rtclassid rule ruleset sctp secmark set size skgid skuid snat socket srh symhash synproxy
table tcp th time timeout tproxy type typeof udp udplite undefine update vlan vmap xor xt
meter export import tables sets chains rt0 rt2 ipv4 ipv6
""".split())

# (a ':' scans as part of a word only where the word also reads as hex, `a:b` but not `X:Y`:
# never written)
_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-./]*\Z")


def is_bare_name(name: str) -> bool:
    """True when nft 1.0.6 parses `name` as an identifier."""
    return bool(_BARE.match(name)) and name not in NFT_KEYWORDS


def check_table_name(name: str, what: str = "table") -> None:
    """A table name the user chose (`--table`, `emit_nft(table=...)`) is refused, never
    renamed, when nft 1.0.6 cannot parse it: a usage error."""
    from fwc.errors import FwcSyntaxError
    from fwc.ir import Loc
    why = "not a string" if not isinstance(name, str) else \
        "longer than 255 characters" if len(name) > 255 else \
        "an nft keyword" if name in NFT_KEYWORDS else \
        None if _BARE.match(name) else "not a letter or _ followed by letters, digits and _-./"
    if why is not None:
        raise FwcSyntaxError(f"{what} {name!r}: not a table name nft accepts ({why})",
                             Loc("<args>"))


def safe_name(name: str, taken: set[str]) -> str:
    """`name` itself when nft accepts it, else a deterministic legal variant not in `taken`."""
    if is_bare_name(name) and name not in taken:
        return name
    base = re.sub(r"[^A-Za-z0-9_\-./]", "_", name)
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = "c_" + base
    if base in NFT_KEYWORDS:
        base = base + "_"
    cand, n = base, 2
    while cand in taken or not is_bare_name(cand):
        cand = f"{base}_{n}"
        n += 1
    return cand


def quote(text: str) -> str | None:
    """An nft string literal for `text`, or None when nft 1.0.6 cannot carry it: its strings
    have no escapes (a backslash is kept literally), so a double quote cannot be written."""
    if '"' in text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        return None  # (nor a newline or another control character: nft's scanner stops)
    return f'"{text}"'
