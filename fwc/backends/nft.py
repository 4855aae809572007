"""IR -> nftables text for `nft -f`.

The output replaces only its own tables (`table X {}` + `delete table X` + definition), never
`flush ruleset`, so tables of other tools survive a reload.  Every construct nft cannot express
exactly is refused with a located Unsupported; all of them are reported together (ErrorGroup),
or, with drop_unsupported=True, each such rule is left out with a `# fwc: dropped` comment and a
warning.  The mapping is documented in README (nft backend)."""

from __future__ import annotations

import itertools
import re
from typing import Optional

import attrs

from fwc import ir
from fwc.errors import ErrorGroup, FwcError, Unsupported
from fwc.backends import nft_l2
from fwc.gcpause import without_gc
from fwc.backends.nft_action import needs_tcp_reset_split, render_statement, render_verdict
from fwc.backends.nft_helpers import split_raw_helpers
from fwc.backends.nft_ctx import NotExpressible, RuleCtx, named_priority, refuse
from fwc.backends.nft_layout import Entry, OutChain, OutTable, l3_of, plan
from fwc.backends.nft_match import NFPROTO, fmt_range, limit_text, redundant_proto, render_match
from fwc.backends import nft_native  # noqa: F401  (nft_match imports it lazily: loaded here, not mid-emit)
from fwc.backends.nft_names import check_table_name, safe_name
from fwc.conntrack.fields import ICMP_TYPES, ICMPV6_TYPES  # nft's ICMP type names
from fwc.backends.nft_tail import CONNLIMIT_SET

__all__ = ["emit_nft", "emit_nft_with_warnings"]

STANDARD_PRIORITIES = {"raw": -300, "mangle": -150, "dstnat": -100, "filter": 0,
                       "security": 50, "srcnat": 100}
MAX_SPLIT = 16  # rules one IR rule may become
# verdicts rule_lines' shortcut writes itself, and matches it leaves to the general path (they
# may be left out as implied by another match of the rule)
_PLAIN_VERDICTS = {ir.Accept: "accept", ir.Drop: "drop"}
_CHECKED = frozenset({ir.Proto, ir.Icmp})
# matches whose nft text depends only on the match and the rule context (not on the other
# matches of the rule): rendered once per context (a non-negated Port is one too)
CONTEXT_FREE = frozenset({ir.Proto, ir.Address, ir.Interface, ir.CtState, ir.CtStatus,
                          ir.Icmp, ir.CtDirection, ir.Mark, ir.Length, ir.Ttl, ir.Dscp,
                          ir.Tos, ir.PktType, ir.AddrType})


def priority_text(prio: int, hook: str) -> str:
    """`filter`, `mangle + 10`... where nft 1.0.6 accepts the name for this hook, else a number."""
    allowed = ["raw", "mangle", "filter", "security"]
    if hook == "prerouting":
        allowed.append("dstnat")
    if hook == "postrouting":
        allowed.append("srcnat")
    return named_priority({n: STANDARD_PRIORITIES[n] for n in allowed}, prio)


# nft strings are `"[^"]*"` (no escapes: a backslash is itself): a double quote becomes a
# single one, a control character a blank
_COMMENT_CHARS = {**{c: " " for c in range(0x20)}, 0x7F: " ", ord('"'): "'"}
COMMENT_MAX = 128  # bytes (NFTNL_UDATA_COMMENT_MAXLEN); iptables comments hold up to 255


def comment_text(text: str) -> str:
    # nft 1.0.6 strings have no escapes: a double quote becomes a single one
    clean = text.translate(_COMMENT_CHARS)
    if len(clean.encode()) > COMMENT_MAX:  # cut (with a warning: comment_too_long)
        clean = clean.encode()[:COMMENT_MAX - 3].decode(errors="ignore") + "..."
    return f'comment "{clean}"'


def comment_too_long(rule: ir.Rule) -> Optional[FwcError]:
    """The warning for a comment nft cannot hold whole (it changes no verdict)."""
    if rule.comment and len(rule.comment.encode()) > COMMENT_MAX:
        return FwcError(f"comment cut to {COMMENT_MAX} bytes, nft's limit "
                        f"(it has {len(rule.comment.encode())})", rule.loc)
    return None


# matches whose rule may need a chain of its own (rule_lines dispatches on them)
_OWN_CHAIN_MATCHES = frozenset({ir.Socket, ir.SkUid, ir.SkGid, ir.MssOutside, ir.ConnLabel,
                                ir.ConnLabelSet, ir.Cluster, ir.Helper})


class _TableRenderer:
    def __init__(self, table: OutTable, counters: bool, zones: bool = False):
        self.t = table
        self.counters = counters
        self.zones = zones  # the ruleset sets conntrack zones (CT --zone)
        self.helpers: dict[tuple[str, str], str] = {}
        self.dynamic_sets: dict[str, tuple[str, tuple, int]] = {}  # IR name -> (name, types, ms)
        self.sets = {s.name: s for s in table.sets}
        self._ctxs: dict = {}
        self._rendered: dict = {}  # (id(match), id(ctx)) -> (match, alternatives)
        # chains fwc adds for a rule (-m socket, negated owner and tcpmss), as text lines
        self.aux_chains: list[list[str]] = []
        self.time_sets: dict[tuple, str] = {}  # -m time day intervals -> set name
        # names handed out so far, kept as they grow (rebuilding them per name was quadratic)
        self._aux_taken = set(table.chain_names.values())
        self._aux_next: dict[str, int] = {}  # tag -> the next number to try
        self._set_taken = set(table.set_names.values())
        self._connlimits = 0
        self._cut_warned: set = set()  # locations of the rules whose comment was cut

    # ---------------------------------------------------------------- names
    def chain_namer(self, source: ir.Table):
        def name(chain: str) -> str:
            got = self.t.chain_names.get((id(source), chain))
            if got is None:
                raise refuse(f"jump to undefined chain {chain}")
            return got
        return name

    def helper_object(self, helper: str, l4: str) -> str:
        key = (helper, l4)
        if key not in self.helpers:
            self.helpers[key] = safe_name(f"{helper}-{l4}", set(self.helpers.values()))
        return self.helpers[key]

    def dynamic_set(self, name: str, types: tuple, timeout_ms: Optional[int]) -> str:
        """The emitted name of dynamic set `name`: hashlimit buckets (shared by name, with a
        timeout) or, for names starting with CONNLIMIT_SET, one connlimit rule's own set."""
        got = self.dynamic_sets.get(name)
        if got is None:
            visible = name
            if name.startswith(CONNLIMIT_SET):
                if self.zones:
                    raise refuse("connlimit in a ruleset that sets conntrack zones",
                                 "xt_connlimit counts per zone, nft's ct count across zones")
                visible = f"connlimit{self._connlimits}"
                self._connlimits += 1
            got = (safe_name(visible, self._set_taken), types, timeout_ms)
            self._set_taken.add(got[0])
            self.dynamic_sets[name] = got
        elif got[1:] != (types, timeout_ms):
            raise refuse(f"hashlimit {name!r} used with different keys or expiry",
                         "iptables would share one table between them")
        return got[0]

    def time_set(self, intervals: tuple) -> str:
        """The name of the `meta time` interval set of `intervals` (and of its `_ends` set)."""
        got = self.time_sets.get(intervals)
        if got is None:
            taken = self._set_taken
            k = len(self.time_sets) + 1
            while f"fwc_time_{k}" in taken or f"fwc_time_{k}_ends" in taken:
                k += 1
            got = self.time_sets[intervals] = f"fwc_time_{k}"
            taken |= {got, f"{got}_ends"}
        return got

    def time_set_text(self, intervals: tuple, name: str) -> list[str]:
        def elements(items: list[str]) -> list[str]:
            if not items:
                return []
            rows = [", ".join(items[i:i + 6]) for i in range(0, len(items), 6)]
            return ["\t\telements = { " + (",\n\t\t\t     ".join(rows)) + " }"]
        return ([f"\tset {name} {{", "\t\ttypeof meta time", "\t\tflags interval"] +
                elements([f"{lo}-{hi + 1}" for lo, hi in intervals]) + ["\t}",
                f"\tset {name}_ends {{", "\t\ttypeof meta time"] +
                elements([str(hi + 1) for _, hi in intervals]) + ["\t}"])

    def ctx(self, source: ir.Table, l3: Optional[str], chain: OutChain) -> RuleCtx:
        key = (id(source), l3, id(chain))  # both outlive the renderer: ids stay unique
        got = self._ctxs.get(key)
        if got is None:
            got = self._ctxs[key] = self._new_ctx(source, l3, chain)
        return got

    def _new_ctx(self, source: ir.Table, l3: Optional[str], chain: OutChain) -> RuleCtx:
        return RuleCtx(family=self.t.family, l3=l3, chain_name=self.chain_namer(source),
                       helper_object=self.helper_object,
                       set_name=lambda n: self.t.set_names.get(n, n),
                       priorities=chain.priorities, hooks=chain.hooks,
                       dynamic_set=self.dynamic_set, time_set=self.time_set,
                       counter_name=lambda n: self.t.counter_names.get(n, n),
                       limit_name=lambda n, s=id(source): self.t.limit_names.get((s, n), n))

    # ---------------------------------------------------------------- rules
    def socket_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str],
                     i: int) -> list[str]:
        """A rule with `-m socket` (matches[i]).  nft's `socket transparent` reads every socket
        the lookup finds (time-wait and request ones too, as xt_socket counts them), so
        `socket transparent 0-1` says "a socket is found".  Its `socket wildcard` and `socket
        mark` only read full sockets (the rule stops for the others), so excluding wildcard
        sockets, or restoring the mark, takes a chain of its own: the rule jumps to it, and
        there `socket wildcard 1 return` leaves out full wildcard sockets, `socket transparent
        1 meta mark set socket mark` restores the mark where xt_socket does, and the rest of
        the rule follows."""
        m = rule.matches[i]
        found = "socket transparent 1" if m.transparent else "socket transparent 0-1"
        before, after = rule.matches[:i], rule.matches[i + 1:]
        if m.nowildcard and not m.restore_mark:
            return self._with_words(rule, ctx, guard, before, after, found)
        first = []
        if not m.nowildcard:
            first.append("socket wildcard 1 return")
        if m.restore_mark:
            first.append("socket transparent 1 meta mark set socket mark")
        return self._aux_chain(rule, ctx, guard, before, first, after, "socket", "-m socket",
                               found)

    def owner_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str]) -> list[str]:
        """A rule with `! --uid-owner` / `! --gid-owner`.  xt_owner's negation also holds for a
        packet without a socket (or whose socket has no file); nft's `meta skuid` stops the
        rule for those.  So, in a chain of its own, `meta skuid X return` leaves out the
        packets the negation excludes, and the rest of the rule follows."""
        neg = [k for k, m in enumerate(rule.matches)
               if isinstance(m, (ir.SkUid, ir.SkGid)) and m.negate]
        lo, hi = neg[0], neg[-1]
        if any(isinstance(m, ir.STATEFUL_MATCHES) for m in rule.matches[lo:hi]):
            raise refuse("negated --uid-owner/--gid-owner around a stateful match",
                         "the stateful match would see other packets")
        returns = []
        for k in neg:
            key = "meta skuid" if isinstance(rule.matches[k], ir.SkUid) else "meta skgid"
            returns.append(f"{key} {fmt_range(rule.matches[k].range)} return")
        others = tuple(m for k, m in enumerate(rule.matches) if k > lo and k not in neg)
        return self._aux_chain(rule, ctx, guard, rule.matches[:lo], returns, others, "owner",
                               "! --uid-owner/--gid-owner")

    def mss_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str], i: int) -> list[str]:
        """`-m tcpmss ! --mss X` (matches[i]): xt also matches a packet without an MSS option,
        which `tcp option maxseg size != X` does not; so, in a chain of its own, `tcp option
        maxseg size X return` leaves out the packets with an MSS in X, and the rest of the rule
        follows (a packet without the option goes on to it)."""
        back = f"tcp option maxseg size {fmt_range(rule.matches[i].range)} return"
        return self._aux_chain(rule, ctx, guard, rule.matches[:i], [back],
                               rule.matches[i + 1:], "mss", "-m tcpmss ! --mss")

    def helper_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str], i: int) -> list[str]:
        """`-m helper ! --helper NAME` (matches[i]): xt also matches a packet without a
        conntrack entry or a master, or whose master has no helper, where nft's `ct helper`
        (which reads the master's helper too) stops the rule; so, in a chain of its own,
        `ct helper NAME return` leaves out the packets the negation excludes, and the rest of
        the rule follows."""
        positive = attrs.evolve(rule.matches[i], negate=False)
        back = " ".join(render_match(positive, ctx, rule, None)[0]) + " return"
        return self._aux_chain(rule, ctx, guard, rule.matches[:i], [back],
                               rule.matches[i + 1:], "helper", "-m helper ! --helper")

    def label_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str], i: int) -> list[str]:
        """`-m connlabel ! --label N [--set]` (matches[i]): xt also matches a packet without a
        conntrack entry, where nft's `ct label` stops the rule; so, in a chain of its own, (with
        --set, `ct label set N` first), `ct label N return` leaves out the packets whose entry
        has the label, and the rest of the rule follows.  After the set, only an entry without
        room for labels still lacks it, as in xt_connlabel."""
        m = rule.matches[i]
        first = ([f"ct label set {m.bit}"] if isinstance(m, ir.ConnLabelSet) else []) + \
            [f"ct label {m.bit} return"]
        return self._aux_chain(rule, ctx, guard, rule.matches[:i], first,
                               rule.matches[i + 1:], "label",
                               "-m connlabel ! --label")

    def cluster_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str],
                      i: int) -> list[str]:
        """`-m cluster` (matches[i]) whose node mask names every node: the hash cannot matter,
        so it matches exactly the packets with a conntrack entry (`ct state
        new,established,related`; negated: none).  xt_cluster first turns pkt_type multicast
        into host when the IP destination is not multicast, matched or not.  That can only
        happen in prerouting and input (the kernel drops forwarded packets not sent to the
        host's MAC before the forward hook; locally made ones are host), and nft sets pkt_type
        only in prerouting: there it is a rule of its own before the rule, `BEFORE DADDR !=
        MULTICAST meta pkttype multicast meta pkttype set host`; in input it is refused.  When
        BEFORE is stateful or reads pkt_type, evaluating it twice would differ: then both go
        into a chain of their own.  A mask naming only some nodes is refused: xt_cluster hashes
        the master connection of an expected one (FTP data, ...), which nft cannot read."""
        m = rule.matches[i]
        if not m.every_node:
            raise refuse("-m cluster with a node mask naming only some of the nodes",
                         "xt_cluster hashes the original source address of the master "
                         "connection of an expected one (FTP data, ...), which nft cannot "
                         "read; only a mask naming every node is exact")
        hooks = set(ctx.hooks)
        if "input" in hooks or ("prerouting" in hooks and len(hooks) > 1):
            raise refuse("-m cluster in a chain reached from the input hook" if "input" in hooks
                         else "-m cluster in a chain reached from prerouting and other hooks",
                         "xt_cluster turns pkt_type multicast into host there, which nft can "
                         "do only in prerouting chains")
        fams = (ctx.l3,) if ctx.l3 else ("ip", "ip6") if ctx.family == "inet" else \
            (ctx.family,)
        nets = {"ip": "224.0.0.0/4", "ip6": "ff00::/8"}
        fixes = [f"{f} daddr != {nets[f]} meta pkttype multicast meta pkttype set host"
                 for f in fams] if "prerouting" in hooks else []
        before = rule.matches[:i]
        rest = () if m.negate else \
            (ir.CtState(frozenset({"NEW", "ESTABLISHED", "RELATED"})),) + rule.matches[i + 1:]
        if not fixes:
            if m.negate:  # it never matches: only what BEFORE does when evaluated remains
                stateful = any(isinstance(x, ir.STATEFUL_MATCHES) for x in before)
                return self._match_words(rule, ctx, guard, before, counter=False) \
                    if stateful else []
            return self.rule_lines(attrs.evolve(rule, matches=before + rest), ctx, guard)
        twice_differs = any(isinstance(x, (ir.PktType,) + ir.STATEFUL_MATCHES) or
                            (isinstance(x, ir.FieldMatch) and "pkttype" in x.expr)
                            for x in before)
        if twice_differs:
            return self._aux_chain(rule, ctx, guard, before, fixes, rest, "cluster",
                                   "-m cluster", tail=not m.negate)
        heads = self._match_words(rule, ctx, guard, before, counter=False) if before or guard \
            else [""]
        lines = [" ".join(x for x in (h, f) if x) for h in heads for f in fixes]
        if m.negate:
            return lines
        return lines + self.rule_lines(attrs.evolve(rule, matches=before + rest), ctx, guard)

    def copymark_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str],
                       k: int) -> list[str]:
        """CONNMARK --save-mark/--restore-mark (statements[k]) that writes only some bits:
        dst = (dst & ~dst_mask) ^ ((src & src_mask) shifted).  nft 1.0.6 cannot combine two
        marks in one expression, but the formula works bit by bit: in a chain of its own the
        dst_mask bits are cleared, then each destination bit whose source bit is set is set
        (inside dst_mask) or flipped (outside it), one line per source bit.  Without a
        conntrack entry xt_CONNMARK does nothing: each line reads the ct mark, which stops it
        then, but restore's clearing, which a `ct state` test guards."""
        s = rule.statements[k]
        dst, src = ("ct mark", "meta mark") if s.to == "ct" else ("meta mark", "ct mark")
        first = []
        if k:  # what the rule does before (a counter)
            pre = attrs.evolve(rule, matches=(), statements=rule.statements[:k],
                               verdict=ir.Continue(), comment=None)
            first += [x.removesuffix("continue").strip() for x in self.rule_lines(pre, ctx, None)]
        if s.dst_mask:
            has_ct = "ct state != { invalid, untracked } " if s.to == "meta" else ""
            first.append(f"{has_ct}{dst} set {dst} and {~s.dst_mask & 0xFFFFFFFF:#x}")
        for b in range(32):
            p = b - s.shift  # the source bit that lands on destination bit b
            if 0 <= p < 32 and s.src_mask >> p & 1:
                op = "or" if s.dst_mask >> b & 1 else "xor"
                first.append(f"{src} and {1 << p:#x} == {1 << p:#x} {dst} set {dst} {op} "
                             f"{1 << b:#x}")
        post = attrs.evolve(rule, statements=rule.statements[k + 1:])
        tail = bool(post.statements) or rule.verdict is not None and \
            not isinstance(rule.verdict, ir.Continue)
        return self._aux_chain(post, ctx, guard, rule.matches, first, (), "connmark",
                               "CONNMARK --save-mark/--restore-mark with a mask", tail=tail)

    def _aux_chain(self, rule: ir.Rule, ctx: RuleCtx, guard, before: tuple, first: list[str],
                   after: tuple, tag: str, what: str, words: str = "",
                   tail: bool = True) -> list[str]:
        """The rule as `BEFORE jump fwc_TAG_N`; chain fwc_TAG_N holds the `first` lines, then
        (unless not `tail`: the rest never matches) the rule with `words` and the `after`
        matches (its statements and verdict)."""
        if tail and isinstance(rule.verdict, (ir.Return, ir.Goto)):
            raise refuse(f"{what} with -j RETURN or -g",
                         "it needs a chain of its own, and there the verdict would act on that "
                         "chain instead")
        # the protocol test again (the packet's protocol cannot change on the way): nft
        # needs it in the rule itself for a NAT port mapping or a port test
        again = tuple(m for m in before if isinstance(m, ir.Proto) and not m.negate)
        rest = self._with_words(rule, ctx, None, again, tuple(after), words) if tail else []
        k = self._aux_next.get(tag, 1)
        while f"fwc_{tag}_{k}" in self._aux_taken:
            k += 1
        name = f"fwc_{tag}_{k}"
        self._aux_taken.add(name)
        self._aux_next[tag] = k + 1
        self.aux_chains.append([f"\tchain {name} {{"] + [f"\t\t{x}" for x in first + rest] +
                               ["\t}"])
        return [" ".join(x for x in (head, f"jump {name}") if x)
                for head in self._match_words(rule, ctx, guard, before)]

    def _match_words(self, rule: ir.Rule, ctx: RuleCtx, guard, matches: tuple,
                     counter: bool = True) -> list[str]:
        """The nft text of `matches` alone (with the family guard and, with --counters and
        `counter`, a counter), one per alternative."""
        lines = self.rule_lines(attrs.evolve(rule, matches=matches, statements=(),
                                             verdict=ir.Continue(), comment=None), ctx, guard)
        out = [x.removesuffix("continue").strip() for x in lines]
        return out if counter or not self.counters else \
            [x.removesuffix("counter").strip() for x in out]

    def _with_words(self, rule: ir.Rule, ctx: RuleCtx, guard, before: tuple, after: tuple,
                    words: str) -> list[str]:
        """rule_lines of `rule` with `before` matches, then `words` (nft text), then `after`."""
        post = self.rule_lines(attrs.evolve(rule, matches=after), ctx, None)
        # (the rest of the rule brings the one counter --counters asks for)
        pre = self._match_words(rule, ctx, guard, before, counter=False) if before or guard \
            else [""]
        return [" ".join(x for x in (a, words, b) if x) for a in pre for b in post]

    def rule_lines(self, rule: ir.Rule, ctx: RuleCtx, guard: Optional[str]) -> list[str]:
        for i, m in enumerate(rule.matches):
            if type(m) not in _OWN_CHAIN_MATCHES:  # (the usual match: one set lookup)
                continue
            if type(m) is ir.Socket:
                return self.socket_lines(rule, ctx, guard, i)
            if type(m) in (ir.SkUid, ir.SkGid) and m.negate:
                return self.owner_lines(rule, ctx, guard)
            if type(m) is ir.MssOutside:
                return self.mss_lines(rule, ctx, guard, i)
            if type(m) is ir.Helper and m.negate:
                return self.helper_lines(rule, ctx, guard, i)
            if type(m) in (ir.ConnLabel, ir.ConnLabelSet) and m.negate:
                return self.label_lines(rule, ctx, guard, i)
            if type(m) is ir.Cluster:
                return self.cluster_lines(rule, ctx, guard, i)
        for k, st in enumerate(rule.statements):
            if type(st) is ir.CopyMark and st.dst_mask != 0xFFFFFFFF:
                return self.copymark_lines(rule, ctx, guard, k)
        memo, cid = self._rendered, id(ctx)
        if not rule.statements and not self.counters and rule.comment is None and \
                guard is None and type(rule.verdict) in _PLAIN_VERDICTS:
            # the usual rule of a big ruleset: every match already rendered once, as one
            # alternative, and a plain verdict; the same text the general path below builds
            words = []
            for m in rule.matches:
                got = memo.get((id(m), cid))
                if got is None or type(m) in _CHECKED or len(got[1]) != 1:
                    break
                words += got[1][0]
            else:
                if not any("!=" in w for w in words):
                    words.append(_PLAIN_VERDICTS[type(rule.verdict)])
                    return [" ".join(words)]
        alts_per_match = []
        single = True
        for m in rule.matches:
            if isinstance(m, ir.Proto):
                if (nft_l2.proto_redundant(m, rule) if self.t.family in ir.L2_FAMILIES
                        else redundant_proto(m, rule)):
                    continue
            elif isinstance(m, ir.Icmp) and _any_icmp_of(m, rule):
                continue
            key = (id(m), cid)
            got = memo.get(key)
            if got is None:
                alts = render_match(m, ctx, rule, self.sets)
                if type(m) in CONTEXT_FREE or (type(m) is ir.Port and not m.negate) or \
                        type(m) is ir.SetMatch:  # rendered from itself and the context
                    memo[key] = (m, alts)  # m kept alive: its id stays its own
            else:
                alts = got[1]
            if len(alts) != 1:
                single = False
            alts_per_match.append(alts)
        if single:  # the usual case: no OR to split
            bodies = [unmerge_negations([x for alts in alts_per_match for x in alts[0]])]
        else:
            bodies = [unmerge_negations(sum(combo, []))
                      for combo in itertools.product(*alts_per_match)]
            if len(bodies) > 1:
                self.check_splittable(rule, len(bodies))
        tail = []
        if rule.statements:
            has_counter = any(isinstance(s, ir.Counter) for s in rule.statements)
            if self.counters and not has_counter:
                tail.append("counter")
            for s in rule.statements:
                text = render_statement(s, ctx, rule, self.counters)
                if text:  # "" = a statement that changes nothing (TOS --xor-tos 0)
                    tail.append(text)
        elif self.counters:
            tail.append("counter")
        verdict = render_verdict(rule.verdict, ctx, rule)
        if verdict:
            tail.append(verdict)
        if rule.comment:
            tail.append(comment_text(rule.comment))
        head = [f"meta nfproto {NFPROTO[guard]}"] if guard else []
        if needs_tcp_reset_split(rule):
            self.check_splittable(rule, 2 * len(bodies))
            drop_tail = tail[:-2] + ["drop"] + tail[-1:] if rule.comment else tail[:-1] + ["drop"]
            out = []
            for body in bodies:
                out.append(" ".join(head + ["meta l4proto tcp"] + body + tail))
                out.append(" ".join(head + body + drop_tail))
            return out
        # a rule with nothing to test or do only counts packets (its sole use in iptables)
        return [" ".join(head + body + tail) or "counter" for body in bodies]

    @staticmethod
    def check_splittable(rule: ir.Rule, n: int) -> None:
        """An OR becomes consecutive rules only when the first match ends evaluation and no
        match or statement has a side effect that running twice would change."""
        why = None
        if not isinstance(rule.verdict, ir.TERMINAL):
            why = "its verdict does not end the chain"
        elif rule.statements:
            why = "it has statements"
        elif any(isinstance(m, (ir.Limit, ir.Statistic, ir.Quota, ir.ConnLimit, ir.CtCount,
                                ir.HashLimit)) for m in rule.matches):
            why = "it has a stateful match (limit/statistic)"
        elif n > MAX_SPLIT:
            why = f"it would become {n} rules"
        if why:
            ors = [type(m).__name__ for m in rule.matches if _is_or(m)]
            raise refuse(f"an OR of {', '.join(ors) or 'matches'} that nft needs several rules for",
                         f"splitting is not exact because {why}")

    def entry_lines(self, e: Entry, chain: OutChain) -> list[str]:
        if self.t.family in ir.L2_FAMILIES:
            nft_l2.check_rule(e.rule, self.t.family)
        if e.l3 != "both":
            guard = e.l3 if e.guard else None
            return self.rule_lines(e.rule, self.ctx(e.source, e.l3, chain), guard)
        v4 = self.rule_lines(e.rule, self.ctx(e.source, "ip", chain), None)
        v6 = self.rule_lines(e.rule, self.ctx(e.source6, "ip6", chain), None)
        if v4 == v6:
            return v4
        return (self.rule_lines(e.rule, self.ctx(e.source, "ip", chain), "ip") +
                self.rule_lines(e.rule, self.ctx(e.source6, "ip6", chain), "ip6"))

    # ---------------------------------------------------------------- chains / table
    def chain_text(self, c: OutChain, errors: list, warnings: list, drop: bool) -> list[str]:
        lines = [f"\tchain {c.name} {{"]
        if c.base is not None:
            b = c.base
            if b.type == "nat" and b.policy != "accept":
                errors.append(Unsupported(f"nat chain {c.name} with policy {b.policy} cannot be "
                                          "expressed in nftables: nat chains accept only", c.loc))
            if self.t.family in ir.L2_FAMILIES:
                try:
                    nft_l2.check_base(self.t.family, b)
                    spec = (f"{nft_l2.devices_text(b)} priority "
                            f"{nft_l2.priority_text(self.t.family, b.priority, b.hook)}")
                except NotExpressible as ne:
                    errors.append(ne.located(c.loc))
                    spec = ""
            else:
                if b.devices or b.hook in ("ingress", "egress"):
                    what = f"devices {', '.join(b.devices)}" if b.devices else f"hook {b.hook}"
                    errors.append(Unsupported(f"base chain {c.name}: {what} in an "
                                              f"{self.t.family} table is not written (the IR "
                                              "models them in netdev tables)", c.loc))
                spec = f" priority {priority_text(b.priority, b.hook)}"
            lines.append(f"\t\ttype {b.type} hook {b.hook}{spec}; policy {b.policy};")
        for e in c.entries:
            cut = comment_too_long(e.rule)
            if cut is not None and cut.loc not in self._cut_warned:  # (inet: once, not twice)
                self._cut_warned.add(cut.loc)
                warnings.append(cut)
            try:
                body = self.entry_lines(e, c)
            except NotExpressible as ne:
                err = ne.located(e.rule.loc)
                if drop:
                    warnings.append(err)
                    lines.append(f"\t\t# fwc: dropped unsupported rule: {err.message}")
                else:
                    errors.append(err)
                continue
            lines += [f"\t\t{b}" for b in body]
        for fam in c.final_drop:
            lines.append(f"\t\tmeta nfproto {NFPROTO[fam]} drop")
        lines.append("\t}")
        return lines

    def set_text(self, s) -> list[str]:
        if isinstance(s, ir.NamedSet):
            from fwc.backends.nft_native import named_set_lines
            src = self.t.set_sources[s.name]
            ctx = RuleCtx(family=self.t.family, l3=l3_of(src), chain_name=self.chain_namer(src),
                          helper_object=self.helper_object)
            try:
                return named_set_lines(s, self.t.set_names[s.name], ctx)
            except NotExpressible as ne:
                raise ne.located(src.loc) from None
        types = []
        for f in s.fields:
            if f in ("addr", "net", "ip"):
                types.append("ipv4_addr" if s.family == "ip" else "ipv6_addr")
            elif f == "mac":
                types.append("ether_addr")
            else:
                raise Unsupported(f"set {s.name} cannot be expressed in nftables: field {f}",
                                  self.t_loc)
        flags = "; flags interval" if s.interval and "mac" not in s.fields else ""
        name = self.t.set_names[s.name]
        note = []
        if getattr(s, "updated", False):
            # SET adds to it from the packet path: single addresses in a hash (dynamic) set
            flags = "; flags dynamic" + (",timeout" if s.timeout else "")
            note = [f"\t# ipset {s.name} is also updated by the rules below (SET): if the ipset "
                    "had a default timeout, give the set `timeout N` here"]
        return [f"\t# external set (ipset {s.name}): fill it, e.g. nft add element "
                f"{self.t.family} {self.t.name} {name} {{ ... }}", *note,
                f"\tset {name} {{",
                f"\t\ttype {' . '.join(types)}{flags}",
                "\t}"]

    t_loc = ir.NOLOC

    def text(self, errors: list, warnings: list, drop: bool) -> str:
        body: list[str] = []
        for s in self.t.sets:
            try:
                body += self.set_text(s)
            except Unsupported as e:
                errors.append(e)
        chains = []
        for c in self.t.chains:
            chains.append(self.chain_text(c, errors, warnings, drop))
        for name, types, ms in self.dynamic_sets.values():
            if ms is None:  # connlimit: elements live while they count connections
                body += [f"\tset {name} {{", f"\t\ttype {' . '.join(types)}",
                         "\t\tflags dynamic", "\t}"]
                continue
            body += [f"\tset {name} {{", f"\t\ttype {' . '.join(types)}",
                     f"\t\tsize 65535", "\t\tflags dynamic,timeout",
                     f"\t\ttimeout {ms}ms", "\t}"]
        for intervals, name in self.time_sets.items():
            body += self.time_set_text(intervals, name)
        for k in self.t.counters:  # the counts restart when the table is replaced
            counts = f"\t\tpackets {k.packets} bytes {k.bytes}" if k.packets or k.bytes else None
            body += [f"\tcounter {self.t.counter_names[k.name]} {{", *([counts] if counts else []),
                     "\t}"]
        for name, lim in self.t.limits:
            body += [f"\tlimit {name} {{", f"\t\t{limit_text(lim)}", "\t}"]
        for (helper, l4), name in self.helpers.items():
            l3 = "\t\tl3proto inet;" if self.t.family == "inet" else ""
            body += [f"\tct helper {name} {{", f'\t\ttype "{helper}" protocol {l4};'] + \
                ([l3] if l3 else []) + ["\t}"]
        for i, c in enumerate(chains + self.aux_chains):
            if body or i:
                body.append("")
            body += c
        fam, name = self.t.family, self.t.name
        # The replace prelude.  Its deletion costs each load one RCU grace period (nf_tables frees
        # deleted objects from a work item that waits for one; closing nft's netlink socket
        # flushes that work).  nft 1.0.6 has no cheaper exact form: `destroy table` came with
        # nft 1.0.7, and `flush table` leaves stale chains, sets and flags (README, "What the
        # blocklist's load time is made of"; tests/kernel/test_nft_reload_kernel.py).
        return "\n".join([f"table {fam} {name} {{}}", f"delete table {fam} {name}",
                          f"table {fam} {name} {{", *body, "}"]) + "\n"


def _any_icmp_of(m: ir.Icmp, rule: ir.Rule) -> bool:
    """`-p icmp -m icmp --icmp-type any`: the type test adds nothing to the protocol test."""
    proto = 1 if m.family == "ip" else 58
    return m.type is None and not m.negate and any(
        isinstance(x, ir.Proto) and not x.negate and x.protos == {proto} for x in rule.matches)


# nft 1.0.6 merges comparisons of adjacent header fields (also with other matches between them)
# into one wider compare; for `!=` that turns "a != x and b != y" into "not (a == x and b == y)".  A range comparison
# is never merged, so such a negated single value is written as the range v-v.
_PAYLOAD = re.compile(r"^(ip|ip6|tcp|udp|udplite|sctp|dccp|th|icmp|icmpv6|ah|esp|comp) "
                      r"([a-z-]+(?: [a-z-]+)?) != ([A-Za-z0-9_.:-]+)$")
def _numeric(proto: str, field: str, value: str):
    if re.fullmatch(r"0x[0-9a-fA-F]+|\d+", value):
        return int(value, 0)
    if field in ("protocol", "nexthdr"):
        return ir.L4_PROTOS.get(value)
    if field == "type":
        return (ICMP_TYPES if proto == "icmp" else ICMPV6_TYPES).get(value)
    return None


def unmerge_negations(body: list[str]) -> list[str]:
    # (addresses are never merged: measured with nft --debug=netlink)
    if not any("!=" in f for f in body):
        return body
    neg = [bool(m) and m.group(2) not in ("saddr", "daddr")
           for m in (_PAYLOAD.match(f) for f in body)]
    out = list(body)
    if sum(neg) < 2:
        return body
    for i, f in enumerate(body):
        # (not only neighbours: nft merges `ip protocol != udp ct direction original ip ttl
        # != 63` too, across the ct match, into one 16-bit `!=`)
        if not neg[i]:
            continue
        proto, field, value = _PAYLOAD.match(f).groups()
        if re.fullmatch(r"\d+-\d+", value):
            continue  # already a range
        n = _numeric(proto, field, value)
        if n is None:
            raise refuse(f"'{f}' next to another negated header comparison",
                         "nft 1.0.6 would merge the two into one comparison")
        out[i] = f"{proto} {field} != {n}-{n}"
    return out


def _is_or(m: ir.Match) -> bool:
    return (isinstance(m, ir.Port) and m.field == "port" and not m.negate) or isinstance(
        m, (ir.CtState, ir.Length, ir.Dscp, ir.Tos, ir.Fragment))


@without_gc
def emit_nft_with_warnings(ruleset: ir.Ruleset, *, table: Optional[str] = None,
                           counters: bool = False, inet: bool = False,
                           drop_unsupported: bool = False) -> tuple[str, list[FwcError]]:
    """nft text for `ruleset` and the warnings for the rules left out (drop_unsupported)."""
    if table is not None:
        check_table_name(table)  # (as the CLI's --table: refused, not renamed)
    errors: list[FwcError] = []
    warnings: list[FwcError] = []
    tables = plan(split_raw_helpers(ruleset), table, inet)
    zones = any(isinstance(s, ir.CtZoneSet) for t in ruleset.tables for c in t.chains
                for r in c.rules for s in r.statements)
    parts = ["#!/usr/sbin/nft -f", "# generated by fwc: replaces only the tables below", ""]
    for t in tables:
        name = safe_name(t.name, set())
        if name != t.name:
            t.name = name
        parts.append(_TableRenderer(t, counters, zones).text(errors, warnings, drop_unsupported))
    if errors:
        raise ErrorGroup(errors)
    return "\n".join(parts), warnings


def emit_nft(ruleset: ir.Ruleset, *, table: Optional[str] = None, counters: bool = False,
             inet: bool = False, drop_unsupported: bool = False) -> str:
    """nftables text (loadable with `nft -f`) meaning exactly `ruleset`.  Each table is
    replaced on its own (no `flush ruleset`).  table=NAME puts each family into one table,
    counters=True adds a counter to every rule, inet=True merges IPv4 and IPv6 into one inet
    table where rules are identical.  Raises ErrorGroup of located Unsupported errors for what
    nftables cannot express (drop_unsupported=True leaves those rules out, as comments)."""
    return emit_nft_with_warnings(ruleset, table=table, counters=counters, inet=inet,
                                  drop_unsupported=drop_unsupported)[0]
