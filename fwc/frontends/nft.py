"""nftables ruleset text -> IR.

`parse_nft(text, filename, include_dirs)` reads what `nft -f` reads: `table { ... }` blocks and
`add|create|insert|delete|destroy|flush` commands, applied in order; `define`/`$var`, `include`.
Layers: nft_lex (tokens) -> nft_pre (include, define) -> this module (commands) and nft_syntax
(rule statements) -> nft_lower (IR) -> nft_build (the ruleset)."""

from __future__ import annotations

import ipaddress
from typing import Optional, Sequence

import attrs

from fwc import ir
from fwc.errors import FwcSyntaxError
from fwc.frontends import nft_values as V
from fwc.frontends.nft_ast import Concat, Counted, MapElem, SetLit, Val, VerdictS
from fwc.frontends.nft_build import PRIORITY_NAMES, Builder, _Table
from fwc.frontends.nft_lower import _decode_tuple, decoder_for, lower_rules, lower_verdict
from fwc.frontends.nft_pre import Sources, preprocess
from fwc.frontends.nft_syntax import Cursor, describe, duration, parse_rule_body, parse_set

__all__ = ["parse_nft"]

FAMILY_WORDS = ("ip", "ip6", "inet", "arp", "bridge", "netdev")
SET_TYPES = {"ipv4_addr": "ip saddr", "ipv6_addr": "ip6 saddr", "inet_service": "tcp dport",
             "inet_proto": "meta l4proto", "ifname": "meta iifname", "mark": "meta mark",
             "ether_addr": "ether saddr", "ct_state": "ct state", "icmp_type": "icmp type",
             "icmpv6_type": "icmpv6 type", "ct_status": "ct status", "tcp_flag": "tcp flags",
             "uid": "meta skuid", "gid": "meta skgid", "pkt_type": "meta pkttype",
             "dscp": "ip dscp"}


SET_FLAGS = ("constant", "dynamic", "interval", "timeout")
# the key datatypes nft 1.0.6 takes in a set declaration (measured with nft -c)
KEY_TYPES = frozenset("""ipv4_addr ipv6_addr ether_addr inet_proto inet_service mark ifname
    iface_index ct_state ct_status ct_dir icmp_type icmp_code icmpv6_type icmpv6_code icmpx_code
    tcp_flag uid gid pkt_type dscp ecn boolean time realm classid devgroup ether_type arp_op
    nf_proto cgroupsv2 fib_addrtype iface_type igmp_type mh_type""".split())


def map_value(data: str, v, ctx):
    """A named map element's value of type `data`; a tuple for a concatenated type
    (`ipv4_addr . inet_service`: a nat map's address and port)."""
    if " . " in data:
        return _decode_tuple(tuple(SET_TYPES.get(t, t) for t in data.split(" . ")), v, ctx)
    return decoder_for(SET_TYPES.get(data, data))(v)



def parse_nft(text: str, filename: str = "<input>", include_dirs: Sequence[str] = ()) -> ir.Ruleset:
    sources = Sources()
    try:
        tokens = preprocess(text, filename, include_dirs or (), sources)
        p = _Parser(Cursor(tokens, sources), Builder(sources.line))
        p.top()
        return p.b.ruleset()
    except RecursionError:  # (thousands of nested parentheses: no ruleset is like that)
        from fwc.frontends import too_deep
        raise too_deep(filename) from None


class _Parser:
    def __init__(self, c: Cursor, b: Builder):
        self.c, self.b = c, b

    # ----------------------------------------------------------------- top level
    def top(self) -> None:
        c = self.c
        while True:
            c.skip_nl()
            if c.accept(";"):
                continue
            t = c.peek()
            if t.kind == "EOF":
                return
            if t.kind != "WORD":
                raise c.error(f"unexpected {describe(t)}")
            w = t.text
            c.next()
            if w == "table":
                self.table_block(t)
            elif w in ("add", "create", "insert", "replace", "delete", "destroy", "flush", "reset"):
                self.command(w, t)
            elif w in ("list", "monitor", "describe", "export", "import", "rename"):
                raise self.b.unsupported(f"nft command '{w}' in a ruleset file", t.loc())
            else:
                raise c.error(f"unknown command '{w}'", t)
            self.end_statement()

    def end_statement(self) -> None:
        c = self.c
        t = c.peek()
        if t.kind in ("NL", "EOF") or t.is_(";"):
            return
        raise c.error(f"expected end of line, got {describe(t)}")

    def family_and_name(self) -> tuple[str, str, object]:
        c = self.c
        first = c.word("a table name")
        if first.kind == "WORD" and first.text in FAMILY_WORDS and c.peek().kind in ("WORD", "STRING") \
                and not c.peek().text == "{":
            name = self.new_name("a table name")
            return first.text, name.text, first
        self.check_name(first)  # `table inet {`: a family without a name, as nft refuses it
        return "ip", first.text, first

    def new_name(self, what: str):
        """The name a table, chain or set is declared with: nft 1.0.6 reads its keywords as
        keywords, never as names (`chain fwd`, `table inet {` are syntax errors there)."""
        return self.check_name(self.c.word(what))

    def check_name(self, tok):
        from fwc.backends.nft_names import NFT_KEYWORDS
        if tok.kind == "WORD" and tok.text in NFT_KEYWORDS:
            raise self.c.error(f"'{tok.text}' is an nft keyword, not a name (nft refuses it here)",
                               tok)
        return tok

    def table_block(self, t) -> None:
        family, name, tok = self.family_and_name()
        table = self.b.add_table(family, name, tok.loc())
        if self.c.at("{"):
            self.table_body(table)

    # ----------------------------------------------------------------- commands
    def command(self, verb: str, vt) -> None:
        c = self.c
        obj = c.word("an object (table chain rule set map element)")
        o = obj.text
        if o == "ruleset" and verb == "flush":
            self.b.flush_ruleset()
            return
        if o == "table":
            family, name, tok = self.family_and_name()
            if verb in ("add", "create"):
                table = self.b.add_table(family, name, tok.loc(), create=verb == "create")
                if c.at("{"):
                    self.table_body(table)
            elif verb in ("delete", "destroy"):
                self.b.delete_table(family, name, tok.loc(), destroy=verb == "destroy")
            elif verb == "flush":
                self.b.flush_table(family, name, tok.loc())
            else:
                raise c.error(f"'{verb} table' is not valid", vt)
            return
        if o in ("chain", "rule", "set", "map", "element"):
            family, tname, tok = self.family_and_name()
            table = self.b.table(family, tname, tok.loc())
            if o == "chain":
                self.chain_command(verb, table, vt)
            elif o == "rule":
                self.rule_command(verb, table, vt)
            elif o in ("set", "map"):
                self.set_command(verb, o, table, vt)
            else:
                self.element_command(verb, table, vt)
            return
        if o == "ct" and c.at("helper") and verb in ("add", "create"):
            c.next()
            family, tname, tok = self.family_and_name()
            self.ct_helper_object(self.b.table(family, tname, tok.loc()))
            return
        if o == "counter" and verb in ("add", "create", "delete", "destroy", "reset"):
            family, tname, tok = self.family_and_name()
            table = self.b.table(family, tname, tok.loc())
            if verb in ("add", "create"):
                self.counter_object(table, braces_optional=True)
                return
            name = c.word("a counter name")
            if verb == "reset":
                if name.text in table.counters:
                    table.counters[name.text] = ir.CounterObject(name.text)
                return
            if name.text not in table.counters and verb == "delete":
                raise c.error(f"counter {name.text} does not exist", name)
            table.counters.pop(name.text, None)
            return
        if o == "limit" and verb in ("add", "create", "delete", "destroy", "reset"):
            family, tname, tok = self.family_and_name()
            table = self.b.table(family, tname, tok.loc())
            if verb in ("add", "create"):
                self.limit_object(table)
                return
            name = c.word("a limit name")
            if name.text not in table.limits and verb == "delete":
                raise c.error(f"limit {name.text} does not exist", name)
            if verb != "reset":  # (reset refills the bucket: state, not kept)
                table.limits.pop(name.text, None)
            return
        if o in ("counter", "quota", "limit", "ct", "flowtable", "secmark", "synproxy"):
            raise self.b.unsupported(_object_refusal(o), obj.loc())
        raise c.error(f"unknown object '{o}'", obj)

    def block_items(self):
        """Between a block's `{` and its `}`: one step per item, blank lines and `;` skipped;
        the closing `}` is consumed when the block ends."""
        c = self.c
        while True:
            c.skip_nl()
            if c.accept(";"):
                continue
            if c.accept("}"):
                return
            yield

    def limit_object(self, table: _Table) -> None:
        """`limit NAME { rate [over] N/unit [burst B packets]; [comment "..."] }`: one token
        bucket that the rules naming it (`limit name "NAME"`) share."""
        from fwc.frontends.nft_syntax import _st_limit
        from fwc.frontends.nft_lower import _limit
        c = self.c
        name = self.new_name("a limit name")
        c.expect("{")
        got = None
        for _ in self.block_items():
            if c.at("rate"):
                st = _st_limit(c, c.peek().loc())
                got = _limit(st.args, st, self.b.ctx(table))
            elif c.accept("comment"):
                c.word("a comment")
            else:
                k = c.word("rate or comment")
                raise c.error(f"unknown limit property '{k.text}'", k)
        if got is None:
            raise c.error(f"limit {name.text} needs a rate", name)
        if name.text in table.limits and table.limits[name.text] != got:
            raise c.error(f"limit {name.text} is declared twice, with different rates", name)
        table.limits[name.text] = got

    def counter_object(self, table: _Table, braces_optional: bool = False) -> None:
        """`counter NAME { [packets N bytes M] [comment "..."] }` (the counts are state)."""
        c = self.c
        name = self.new_name("a counter name")
        counts = {"packets": 0, "bytes": 0}
        if braces_optional and not c.at("{"):
            table.counters[name.text] = ir.CounterObject(name.text)
            return
        c.expect("{")
        for _ in self.block_items():
            k = c.word("packets, bytes or comment")
            if k.text in counts:
                n = c.word("a number")
                if not n.text.isdigit():
                    raise c.error(f"expected a number after {k.text}, got '{n.text}'", n)
                counts[k.text] = int(n.text)
            elif k.text == "comment":
                c.word("a comment")
            else:
                raise c.error(f"unknown counter property '{k.text}'", k)
        table.counters[name.text] = ir.CounterObject(name.text, counts["packets"],
                                                     counts["bytes"])

    def chain_command(self, verb, table: _Table, vt) -> None:
        c = self.c
        name = self.new_name("a chain name") if verb in ("add", "create") else c.word("a chain name")
        if verb in ("add", "create"):
            chain = self.b.add_chain(table, name.text, name.loc(), create=verb == "create")
            if c.at("{"):
                self.chain_body(table, chain, inline_spec=True)
        elif verb in ("delete", "destroy"):
            if verb == "destroy" and name.text not in table.chains:
                return
            self.b.delete_chain(table, name.text, name.loc())
        elif verb == "flush":
            self.b.chain(table, name.text, name.loc()).rules.clear()
        else:
            raise c.error(f"'{verb} chain' is not valid", vt)

    def rule_command(self, verb, table: _Table, vt) -> None:
        c = self.c
        name = c.word("a chain name")
        chain = self.b.chain(table, name.text, name.loc())
        if verb not in ("add", "insert"):
            raise self.b.unsupported(f"'{verb} rule' (rule handles are not part of the IR)", vt.loc())
        if c.at("position", "handle", "index"):
            raise self.b.unsupported(f"'{verb} rule ... {c.peek().text}' (rule handles are not part "
                                     "of the IR)", c.peek().loc())
        self.current_chain = chain.name
        rules = self.rules(table)
        if verb == "insert":
            chain.rules[0:0] = rules
        else:
            chain.rules.extend(rules)

    def set_command(self, verb, kind, table: _Table, vt) -> None:
        c = self.c
        name = self.new_name("a set name") if verb in ("add", "create") else c.word("a set name")
        if verb in ("add", "create"):
            self.set_block(table, name, kind)
        elif verb in ("delete", "destroy"):
            if name.text not in table.sets:
                if verb == "destroy":
                    return
                raise c.error(f"set {name.text} does not exist", name)
            del table.sets[name.text]
        elif verb == "flush":
            s = table.sets.get(name.text)
            if s is None:
                raise c.error(f"set {name.text} does not exist", name)
            import attrs
            table.sets[name.text] = attrs.evolve(s, elements=(), element_timeouts=())
        else:
            raise c.error(f"'{verb} {kind}' is not valid", vt)

    def element_command(self, verb, table: _Table, vt) -> None:
        c = self.c
        name = c.word("a set name")
        s = table.sets.get(name.text)
        if s is None:
            raise c.error(f"set {name.text} does not exist", name)
        lit = parse_set(c)
        elems = self.set_elements(table, s, lit)
        if verb in ("add", "create"):
            self.b.add_elements(table, name.text, elems, name.loc(), _flat(lit).timeouts)
        elif verb in ("delete", "destroy"):
            import attrs
            keep = [(e, t) for e, t in zip(s.elements, ir.padded_timeouts(
                s.element_timeouts, len(s.elements))) if e not in elems]
            table.sets[name.text] = attrs.evolve(
                s, elements=tuple(e for e, _ in keep),
                element_timeouts=ir.compact_timeouts(t for _, t in keep))
        else:
            raise c.error(f"'{verb} element' is not valid", vt)

    # ----------------------------------------------------------------- blocks
    def table_body(self, table: _Table) -> None:
        """A table block.  nft evaluates a block's sets before its chains, so a rule may use a
        set declared further down: chain bodies are read once the rest of the block is."""
        c = self.c
        c.expect("{")
        chains = []
        while True:
            c.skip_nl()
            if c.accept(";"):
                continue
            if c.accept("}"):
                end, shift = c.i, 0
                for chain, at in chains:
                    # (the parser splits some tokens in place: later positions move with it)
                    n = len(c.toks)
                    c.i = at + shift
                    self.chain_body(table, chain)
                    shift += len(c.toks) - n
                c.i = end + shift
                return
            t = c.word("chain, set or map")
            if t.text == "chain":
                name = self.new_name("a chain name")
                chain = self.b.add_chain(table, name.text, name.loc())
                chains.append((chain, c.i))
                self.skip_block()
            elif t.text in ("set", "map"):
                name = self.new_name("a set name")
                self.set_block(table, name, t.text)
            elif t.text == "flags":
                flags = [c.word("a table flag").text]
                while c.accept(","):
                    flags.append(c.word("a table flag").text)
                bad = [f for f in flags if f not in ("dormant", "owner", "persist")]
                if bad:  # (nft knows dormant, owner and persist)
                    raise c.error(f"unknown table flag '{bad[0]}'", t)
                raise self.b.unsupported(f"table flags {','.join(flags)}", t.loc())
            elif t.text == "comment":
                c.word("a comment")
            elif t.text == "ct" and self.c.at("helper"):
                self.c.next()
                self.ct_helper_object(table)
            elif t.text == "counter":
                self.counter_object(table)
            elif t.text == "limit":
                self.limit_object(table)
            elif t.text in ("quota", "limit", "ct", "flowtable", "secmark", "synproxy"):
                raise self.b.unsupported(_object_refusal(t.text), t.loc())
            elif t.kind == "STRING" or t.kind == "WORD":
                raise c.error(f"unknown table item '{t.text}'", t)
            self.end_statement_in_block()

    def skip_block(self) -> None:
        """Past a `{ ... }` block (strings are single tokens: their braces do not count)."""
        c = self.c
        c.expect("{")
        depth = 1
        while depth:
            t = c.next()
            if t.kind == "EOF":
                raise c.error("missing '}' at end of chain", t)
            if t.kind == "PUNCT" and t.text in "{}":
                depth += 1 if t.text == "{" else -1

    def end_statement_in_block(self) -> None:
        t = self.c.peek()
        if t.kind == "NL" or t.is_(";") or t.is_("}"):
            return
        raise self.c.error(f"expected end of line, got {describe(t)}")

    def chain_body(self, table: _Table, chain, inline_spec=False) -> None:
        c = self.c
        self.current_chain = chain.name  # (anonymous chains in it are named after it)
        c.expect("{")
        self._policy_given = False  # (nft: "you cannot set chain policy twice" in one block)
        comment_given = False
        for _ in self.block_items():
            t = c.peek()
            if t.kind == "EOF":
                raise c.error("missing '}' at end of chain")
            if t.is_("type") and c.peek(1).kind == "WORD" and c.peek(2).is_("hook"):
                self.base_spec(table, chain)
                continue  # the spec consumed its own semicolon
            elif t.is_("policy"):
                if self._policy_given:
                    raise c.error("the chain's policy is given twice", t)
                self._policy_given = True
                c.next()
                pol = c.word("accept or drop")
                base = chain.base
                if base is None:
                    raise c.error("policy needs a base chain (type ... hook ...)", t)
                if pol.text not in ("accept", "drop"):
                    raise c.error(f"unknown chain policy '{pol.text}'", pol)
                import attrs
                chain.base = attrs.evolve(base, policy=pol.text)
            elif t.is_("comment") and (c.peek(2).kind == "NL" or c.peek(2).is_(";") or c.peek(2).is_("}")):
                if comment_given:
                    raise c.error("the chain's comment is given twice", t)
                comment_given = True
                c.next()
                c.word("a comment")
            elif t.is_("devices") or t.is_("device"):
                raise c.error(f"'{t.text}' belongs in the chain's hook spec (type ... hook ... "
                              f"{t.text} ... priority ...)", t)
            else:
                chain.rules.extend(self.rules(table))
            self.end_statement_in_block()

    def base_spec(self, table, chain) -> None:
        c = self.c
        t = c.expect("type")
        ctype = c.word("a chain type").text
        c.expect("hook")
        hook = c.word("a hook").text
        devices = None
        if c.accept("device"):
            devices = [c.word("a device").text]
        elif c.accept("devices"):
            devices = self.device_list()
        c.expect("priority")
        prio = self.priority(lambda name, tok: self.b.priority_name(table, name, hook, tok.loc()))
        c.accept(";")
        policy = "accept"
        c.skip_nl()
        if c.at("policy"):
            c.next()
            policy = c.word("accept or drop").text
            self._policy_given = True
        base = self.b.make_base(table, ctype, hook, prio, policy, t.loc(), devices)
        if chain.base is not None and (chain.base.type, chain.base.hook, chain.base.priority,
                                       chain.base.devices) != \
                (base.type, base.hook, base.priority, base.devices):
            raise c.error(f"chain {chain.name} cannot change its type, hook, priority or devices", t)
        chain.base = base

    def device_list(self) -> list[str]:
        """`devices = { a, "b" }` (a `$var` holding a set arrives here expanded)."""
        c = self.c
        c.expect("=")
        c.expect("{")
        out = []
        while True:
            c.skip_nl()
            if c.accept("}"):
                break
            out.append(c.word("a device name").text)
            c.skip_nl()
            if c.accept("}"):
                break
            c.expect(",")
        if not out:
            raise c.error("empty device list")
        return out

    def priority(self, name_value=None) -> int:
        c = self.c
        t = c.peek()
        sign = 1
        if c.accept("-"):
            sign = -1
        w = c.word("a priority")
        n = V.parse_int(w.text)
        if n is None:
            base = name_value(w.text, w) if name_value else PRIORITY_NAMES.get(w.text)
            if base is None:
                if "+" in w.text or "-" in w.text[1:]:
                    pass
                raise c.error(f"unknown priority '{w.text}'", w)
            n = base
            if c.at("+", "-") or (c.peek().kind == "WORD" and c.peek().text.startswith("-")):
                op = c.next().text
                k = c.word("a number")
                d = V.parse_int(k.text)
                if d is None:
                    raise c.error("expected a number after the priority name", k)
                n = n + d if op == "+" else n - d
            elif c.peek().kind == "PUNCT" and c.peek().text == "*":
                raise c.error("invalid priority expression")
        if c.at("+"):
            raise c.error("invalid priority expression")
        if not -2**31 <= sign * n < 2**31:  # (nft would wrap it into 32 bits)
            raise c.error(f"priority {sign * n} is outside the kernel's 32-bit range", t)
        return sign * n

    def rules(self, table: _Table) -> list[ir.Rule]:
        """The IR rules of one nft rule (two when a match follows a log or counter)."""
        c = self.c
        start = c.peek()
        stmts, comment = parse_rule_body(c)
        if not stmts and comment is None:
            raise c.error(f"expected a rule, got {describe(c.peek())}")
        return self.lowered(table, stmts, comment, start.loc())

    def lowered(self, table: _Table, stmts: list, comment, loc) -> list[ir.Rule]:
        return self.b.lower_rules(table, self.current_chain, stmts, comment, loc)

    def ct_helper_object(self, table: _Table) -> None:
        """`ct helper NAME { type "ftp" protocol tcp; [l3proto ip;] }`: what `ct helper set "NAME"`
        assigns (only to connections of that protocol)."""
        c = self.c
        name = c.word("a ct helper name")
        c.expect("{")
        htype = proto = None
        for _ in self.block_items():
            k = c.word("type, protocol or l3proto")
            if k.text == "type":
                htype = c.word("a helper type").text
                if c.accept("protocol"):
                    proto = c.word("tcp or udp")
            elif k.text == "protocol":
                proto = c.word("tcp or udp")
            elif k.text == "l3proto":
                c.word("ip, ip6 or inet")
            elif k.text == "comment":
                c.word("a comment")
            else:
                raise c.error(f"unknown ct helper property '{k.text}'", k)
        if htype is None or proto is None:
            raise c.error(f"ct helper {name.text} needs 'type \"NAME\" protocol tcp|udp'", name)
        if proto.text not in ("tcp", "udp"):
            raise c.error(f"ct helper protocol must be tcp or udp, got '{proto.text}'", proto)
        table.helpers[name.text] = (htype, ir.L4_PROTOS[proto.text])

    # ----------------------------------------------------------------- sets
    def set_block(self, table: _Table, name, kind) -> None:
        c = self.c
        c.expect("{")
        types: tuple = ()
        data = None
        flags: set = set()
        timeout = comment = size = gc_interval = None
        counter = False
        elements_ast = None
        typeof = False
        for _ in self.block_items():
            t = c.word("a set property")
            w = t.text
            if w in ("type", "typeof"):
                typeof = w == "typeof"
                types, data = self.set_type(typeof, kind)
            elif w == "flags":
                while True:
                    f = c.word("a set flag")
                    if f.text not in SET_FLAGS:
                        raise c.error(f"unknown set flag '{f.text}' (nft knows "
                                      f"{', '.join(SET_FLAGS)})", f)
                    flags.add(f.text)
                    if not c.accept(","):
                        break
            elif w == "elements":
                c.expect("=")
                elements_ast = parse_set(c)
            elif w == "timeout":
                timeout = duration(c, c.word("a timeout"), "timeout")
            elif w == "size":
                n = c.word("a number")
                if not n.text.isdigit() or not 0 < int(n.text) < 2**32:
                    raise c.error(f"set size must be a number from 1 to 4294967295, got "
                                  f"'{n.text}'", n)
                size = int(n.text)
            elif w == "gc-interval":
                gc_interval = duration(c, c.word("a time"), "gc-interval")
            elif w == "policy":
                c.word("a set policy")
            elif w == "comment":
                comment = c.word("a comment").text
            elif w == "auto-merge":
                flags.add("auto-merge")
            elif w == "counter":
                counter = True
            else:
                raise c.error(f"unknown set property '{w}'", t)
        if not types:
            raise c.error(f"{kind} {name.text} needs a type", name)
        if kind == "map" and data is None:
            raise c.error(f"map {name.text} needs 'type KEY : VALUE'", name)
        if timeout is not None:
            flags.add("timeout")  # nft sets it for a set with a default timeout (its listing)
        s = ir.NamedSet(name.text, types, frozenset(flags), (), data, timeout, comment, counter,
                        size, gc_interval=gc_interval)
        if elements_ast is not None:
            s = attrs.evolve(s, elements=self.set_elements(table, s, elements_ast),
                             element_timeouts=_flat(elements_ast).timeouts)
            if size is not None and "interval" not in s.flags and len(s.elements) > size:
                raise c.error(f"{kind} {name.text} holds {len(s.elements)} elements but its size "
                              f"is {size} (the kernel refuses to load it)", name)
        self.b.add_set(table, s, name.loc())

    def set_type(self, typeof: bool, kind):
        c = self.c
        from fwc.frontends.nft_syntax import parse_selector
        parts = []
        while True:
            if typeof:
                parts.append(parse_selector(c).text)
            else:
                w = c.word("a data type")
                if w.text not in KEY_TYPES:
                    raise c.error(f"unknown datatype '{w.text}' for a set key", w)
                parts.append(w.text)
            if not c.accept("."):
                break
        data = None
        if c.accept(":"):
            values = []
            while True:  # (a concatenation: `ipv4_addr . inet_service`, for nat maps)
                if typeof and not c.at("verdict"):
                    values.append(parse_selector(c).text)
                else:
                    values.append(c.word("a data type").text)
                if not c.accept("."):
                    break
            if "verdict" in values and len(values) > 1:
                raise c.error("a verdict cannot be part of a concatenation", c.peek())
            data = " . ".join(values)
        return tuple(parts), data

    def set_elements(self, table: _Table, s: ir.NamedSet, lit: SetLit) -> tuple:
        keys = tuple(SET_TYPES.get(t, t) for t in s.types)
        ctx = self.b.ctx(table)
        out = []
        for e in _flat(lit).elems:
            if s.counter:  # the listing's per-element counts of a `counter` set: state, not kept
                if isinstance(e, Counted):
                    e = e.value
                elif isinstance(e, MapElem) and isinstance(e.key, Counted):
                    e = MapElem(e.key.value, e.data, e.loc)
            if isinstance(e, MapElem):
                if s.data is None:
                    raise self.c.src.error("a set element cannot have a value", e.loc)
                key = _decode_tuple(keys, e.key, ctx)
                if isinstance(e.data, VerdictS):
                    if s.data != "verdict":
                        raise self.c.src.error("type mismatch: verdict in a non-verdict map", e.loc)
                    val = lower_verdict(e.data, ctx)
                else:
                    if s.data == "verdict":
                        raise self.c.src.error("type mismatch: a verdict map needs verdicts", e.loc)
                    val = map_value(s.data, e.data, ctx)
                out.append((key, val))
            else:
                if s.data is not None:
                    raise self.c.src.error("a map element needs 'key : value'", e.loc)
                out.append(_decode_tuple(keys, e, ctx))
        if "interval" in s.flags and "auto-merge" not in s.flags and s.data is None and \
                len(keys) == 1:
            bad = _first_overlap([k[0] for k in out])
            if bad is not None:
                raise self.c.src.error("conflicting intervals specified (nft takes overlapping "
                                       "elements in an interval set only with auto-merge)",
                                       lit.elems[bad].loc)
        return tuple(out)


def _flat(lit: SetLit) -> SetLit:
    """`{ $lan, 10.0.0.1 }` with `define lan = { ... }`: nft merges a set inside a set."""
    if not any(isinstance(e, SetLit) for e in lit.elems):
        return lit
    elems, timeouts = [], []
    for e, t in zip(lit.elems, ir.padded_timeouts(lit.timeouts, len(lit.elems))):
        if isinstance(e, SetLit):
            inner = _flat(e)
            elems += inner.elems
            timeouts += ir.padded_timeouts(inner.timeouts, len(inner.elems))
        else:
            elems.append(e)
            timeouts.append(t)
    return SetLit(tuple(elems), lit.loc, ir.compact_timeouts(timeouts))


def _object_refusal(kind: str) -> str:
    if kind == "flowtable":
        return ("nft flowtable (flows it offloads skip the netfilter hooks, which fwc does not "
                "model)")
    return f"nft stateful object '{kind}'"


def _span(v):
    if isinstance(v, ir.Range):
        return v.lo, v.hi
    if isinstance(v, ir.AddrRange):
        return int(v.lo), int(v.hi)
    if isinstance(v, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return int(v.network_address), int(v.broadcast_address)
    if isinstance(v, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return int(v), int(v)
    if isinstance(v, int) and not isinstance(v, bool):
        return v, v
    return None


def _first_overlap(values) -> Optional[int]:
    """Index of the first element overlapping an earlier one it is not equal to, or None."""
    spans = []
    for i, v in enumerate(values):
        sp = _span(v)
        if sp is None:
            return None
        spans.append((sp, i))
    spans.sort()
    for (a, i), (b, j) in zip(spans, spans[1:]):
        if b[0] <= a[1] and a != b:
            return max(i, j)
    return None


def _unused(*a):  # keep linters quiet about re-exported helpers
    return Concat, Val, FwcSyntaxError
