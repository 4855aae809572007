"""bridge, netdev and arp tables in the nft backend.

Their rules come from the nft front end, which keeps in a dedicated IR node only fields whose
nft text means the same in these families (`ip saddr`, `udp dport`, `meta l4proto`, ...) and
everything else as FieldMatch text.  The renderer writes that text back; what it would have to
translate with IP-family guards (`meta nfproto`, which these families do not have) or what the
IR models only for IP hooks (nat, reject, conntrack templates) is refused here, by name."""

from __future__ import annotations

from fwc import ir
from fwc.backends.nft_ctx import named_priority, refuse
# what the front end reads is what is written: one table of hooks and priority names
# (the nft front end's tables are imported when an L2 table is written: an iptables input
# never loads the nft front end)

_MATCHES = (ir.Proto, ir.Address, ir.Interface, ir.Port, ir.TcpFlags, ir.Icmp, ir.CtState,
            ir.CtStatus, ir.CtDirection, ir.Mark, ir.Mac, ir.PktType, ir.Limit, ir.Statistic,
            ir.FieldMatch, ir.SetMatch, ir.SetLookup)
_STATEMENTS = (ir.Counter, ir.NamedCounter, ir.Log, ir.NfLog, ir.SetMark, ir.CopyMark, ir.Trace, ir.SetUpdate,
               ir.FieldSet)  # (nft-sourced `EXPR set VALUE`, written back as nft says it)
_VERDICTS = (ir.Accept, ir.Drop, ir.Return, ir.Jump, ir.Goto, ir.Continue, ir.VerdictMap)


def check_rule(rule: ir.Rule, family: str) -> None:
    from fwc.frontends.nft_build import arp_conflict
    from fwc.frontends.nft_lower import in_table
    if family == "arp":
        for x in rule.matches + rule.statements:
            bad = arp_conflict(x)
            if bad is not None:
                raise refuse(f"{bad} in an arp table", "an ARP packet has no such header")
    for m in rule.matches:
        if not isinstance(m, _MATCHES) or (isinstance(m, ir.Icmp) and m.type is None):
            raise refuse(f"{ir.construct_name(m)} {in_table(family)}",
                         "only matches whose nft form is the same in every family are written")
    for s in rule.statements:
        if not isinstance(s, _STATEMENTS):
            raise refuse(f"{ir.construct_name(s)} {in_table(family)}",
                         "the IR defines it for ip, ip6 and inet hooks")
    if rule.verdict is not None and not isinstance(rule.verdict, _VERDICTS):
        raise refuse(f"{ir.construct_name(rule.verdict)} {in_table(family)}",
                     "the IR defines it for ip, ip6 and inet hooks")


def priority_text(family: str, prio: int, hook: str) -> str:
    from fwc.frontends.nft_build import FAMILY_PRIORITY_NAMES as PRIORITY_NAMES
    names = {n: v for n, (v, only) in PRIORITY_NAMES[family].items() if only in (None, hook)}
    return named_priority(names, prio)


def check_base(family: str, base: ir.BaseHook) -> None:
    """What nft accepts for a base chain of these families (an IR built by hand may differ)."""
    from fwc.frontends.nft_build import FAMILY_HOOKS as HOOKS
    from fwc.frontends.nft_lower import in_table
    if base.type != "filter":
        raise refuse(f"a {base.type} chain {in_table(family)}", "these families have filter chains only")
    if base.hook not in HOOKS[family]:
        raise refuse(f"hook {base.hook} {in_table(family)}")
    if (family == "netdev") != bool(base.devices):
        raise refuse(f"a {family} base chain {'without' if family == 'netdev' else 'with'} devices")


def devices_text(base: ir.BaseHook) -> str:
    """` device "eth0"` / ` devices = { "a", "b" }` ('' when the chain has none)."""
    for d in base.devices:
        if '"' in d or "\\" in d:
            raise refuse(f"device name {d!r}", "nft strings cannot contain quotes")
    names = [f'"{d}"' for d in base.devices]
    if not names:
        return ""
    if len(names) == 1:
        return f" device {names[0]}"
    return f" devices = {{ {', '.join(names)} }}"


def proto_redundant(m: ir.Proto, rule: ir.Rule) -> bool:
    """`meta l4proto udp` next to `udp dport` adds nothing here (nft compiles both to the same
    l4proto test); next to `icmp type` it does: `icmp type` alone also gets `ether type ip`
    (bridge) or `meta protocol ip` (netdev), an explicit l4proto test replaces that."""
    if m.negate or len(m.protos) != 1:
        return False
    (p,) = m.protos
    return any((isinstance(x, ir.Port) and ir.L4_PROTOS.get(x.proto) == p) or
               (isinstance(x, ir.TcpFlags) and p == 6) for x in rule.matches)
