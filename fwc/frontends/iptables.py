"""iptables front end: iptables-save/restore files and shell scripts of iptables commands -> IR.

Both formats feed the same command interpreter (`_Interp`), which applies -A/-I/-D/-N/-X/-F/-P/-Z
to an in-memory model of the tables exactly as the kernel's rule list would change, then freezes
it into an `ir.Ruleset`.
"""

from __future__ import annotations

import collections
import os
import re
from typing import Optional

import attrs

from fwc import ir
from fwc.errors import ErrorGroup, FwcError, FwcSyntaxError, Unsupported
from fwc.frontends import iptables_ext as X
from fwc.frontends import values as V
from fwc.frontends.lex import Word, split_restore_words, split_words
from fwc.gcpause import without_gc

# core options iptables takes once per rule ("multiple -p flags not allowed")
_ONCE = frozenset({"--protocol", "--source", "--destination", "--in-interface",
                   "--out-interface", "--fragment"})
# modules whose options may repeat (policy: one set per --next element)
_REPEATABLE = frozenset({"policy"})
# options of one module instance that exclude each other (libxtables .excl / fcheck)
_EXCLUSIVE = {
    "tcp": ({"--syn", "--tcp-flags"},),
    "multiport": ({"--sports", "--dports", "--ports"},),
    "hashlimit": ({"--hashlimit-upto", "--hashlimit-above"},),
    "connlimit": ({"--connlimit-upto", "--connlimit-above"},
                  {"--connlimit-saddr", "--connlimit-daddr"}),
    # targets: one action each
    "MARK": ({"--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark"},),
    "CONNMARK": ({"--set-xmark", "--set-mark", "--and-mark", "--or-mark", "--xor-mark",
                  "--save-mark", "--restore-mark"},),
}


def _check_option_counts(rp, ext, opts) -> None:
    """libxtables: an option once per module instance, and not with one it excludes."""
    if ext.name in _REPEATABLE:
        return
    seen: dict[str, object] = {}
    for o in opts:
        if o.name in seen:
            raise FwcSyntaxError(f"{ext.name}: option {o.name} can only be used once",
                                 ir.Loc(rp.loc.file, rp.loc.line, o.col), rp.line)
        seen[o.name] = o
    for group in _EXCLUSIVE.get(ext.name, ()):
        both = [o for o in opts if o.name in group]
        if len(both) > 1:
            raise FwcSyntaxError(f"{ext.name}: {both[0].name} and {both[1].name} cannot be "
                                 "combined", ir.Loc(rp.loc.file, rp.loc.line, both[1].col),
                                 rp.line)

# modules libxtables refuses without one of their options (XTOPT_MAND or an fcheck)
NEEDS_AN_OPTION = {
    "addrtype": "--src-type or --dst-type", "connmark": "--mark", "conntrack": "an option",
    "state": "--state", "cpu": "--cpu", "devgroup": "--src-group or --dst-group",
    "dscp": "--dscp or --dscp-class", "tos": "--tos", "ecn": "an option", "helper": "--helper",
    "iprange": "--src-range or --dst-range", "length": "--length", "mac": "--mac-source",
    "mark": "--mark", "multiport": "--sports, --dports or --ports",
    "owner": "an option", "physdev": "an option", "pkttype": "--pkt-type",
    "set": "--match-set", "ttl": "--ttl-eq, --ttl-lt or --ttl-gt",
    "hl": "--hl-eq, --hl-lt or --hl-gt", "realm": "--realm",
}

BUILTIN_TARGETS = ("ACCEPT", "DROP", "RETURN", "QUEUE")
# the module `-p PROTO` loads by itself, for options given without -m
_IMPLICIT_MODULE = {6: "tcp", 17: "udp", 132: "sctp", 33: "dccp", 136: "udplite", 1: "icmp",
                    58: "icmp6", 135: "mh"}
_MODULE_PROTO = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33, "udplite": 136, "icmp": 1,
                 "icmp6": 58, "esp": 50, "ipcomp": 108, "mh": 135}


def _module_proto(name: str, family: str):
    """The protocol a match module is registered for (the kernel refuses it with another one);
    ip6t_ah walks the extension headers and needs none, ipt_ah needs -p ah."""
    if name == "ah":
        return 51 if family == "ip" else None
    return _MODULE_PROTO.get(name)


class _RuleList(list):
    """A chain's rules, with a count of each rule kept as the list changes once a lookup has
    needed it: `-C` is then a lookup instead of a scan (an idempotent script's `-C R || -A R`
    per rule was quadratic), and a restore file that never looks pays no hashing."""

    def __init__(self, items=()):
        super().__init__(items)
        self._counted = None

    @property
    def _count(self) -> collections.Counter:
        if self._counted is None:
            self._counted = collections.Counter(self)
        return self._counted

    def __contains__(self, r) -> bool:
        return self._count[r] > 0

    def count_of(self, r) -> int:
        return self._count[r]

    def index_of(self, r) -> int:
        """The first position of `r` (-D deletes the first rule equal to it), or -1."""
        n = self._count[r]
        if not n:
            return -1
        h = hash(r)
        if n > 1:
            return next(k for k, x in enumerate(self) if hash(x) == h and x == r)
        # the only one: look from both ends (scripts delete what they added last, or first)
        lo, hi = 0, len(self) - 1
        while lo <= hi:
            x = self[lo]
            if hash(x) == h and x == r:
                return lo
            x = self[hi]
            if hash(x) == h and x == r:
                return hi
            lo, hi = lo + 1, hi - 1
        return -1

    def _add(self, rs) -> None:
        if self._counted is not None:
            self._counted.update(rs)

    def _drop(self, r) -> None:
        if self._counted is not None:
            self._counted[r] -= 1

    def append(self, r) -> None:
        super().append(r)
        self._add((r,))

    def extend(self, rs) -> None:
        rs = list(rs)
        super().extend(rs)
        self._add(rs)

    def insert(self, k, r) -> None:
        super().insert(k, r)
        self._add((r,))

    def __setitem__(self, k, v) -> None:
        if isinstance(k, int):  # (-R: one rule replaced)
            self._drop(self[k])
            super().__setitem__(k, v)
            self._add((v,))
            return
        super().__setitem__(k, v)
        self._counted = None

    def __delitem__(self, k) -> None:
        if isinstance(k, int):
            self._drop(self[k])
            super().__delitem__(k)
        else:
            super().__delitem__(k)
            self._counted = None

    def clear(self) -> None:
        super().clear()
        self._counted = None

    def pop(self, k=-1):
        r = super().pop(k)
        self._drop(r)
        return r

    def remove(self, r) -> None:
        super().remove(r)
        self._drop(r)

    def __iadd__(self, rs):
        self.extend(rs)
        return self


@attrs.define
class _Chain:
    name: str
    builtin: bool
    policy: str = "accept"
    rules: list = attrs.field(factory=_RuleList, converter=_RuleList)
    loc: ir.Loc = ir.NOLOC
    refs: list = attrs.field(factory=list)  # (rule loc, source line) of jumps to it


@attrs.define
class _Table:
    family: str
    name: str
    chains: dict = attrs.field(factory=dict)
    loc: ir.Loc = ir.NOLOC


class _Interp:
    """The ruleset being built, one iptables command at a time."""

    def __init__(self, filename: str, keep_refused: bool = False):
        self.filename = filename
        self.keep_refused = keep_refused  # an unsupported rule becomes an ir.Refused placeholder
        self.tables: dict[tuple[str, str], _Table] = {}
        self.errors: list[FwcError] = []
        self.other_family = False  # a -4/-6 rule for the other family was skipped

    def table(self, family: str, name: str, loc: ir.Loc) -> _Table:
        key = (family, name)
        if key not in self.tables:
            self.tables[key] = _Table(family, name, {}, loc)
        return self.tables[key]

    def chain(self, t: _Table, name: str, loc: ir.Loc, create_builtin: bool = True) -> Optional[_Chain]:
        if name in t.chains:
            return t.chains[name]
        if create_builtin and name in ir.TABLE_CHAINS[t.name]:
            t.chains[name] = _Chain(name, True, "accept", [], loc)
            return t.chains[name]
        return None

    def freeze(self) -> ir.Ruleset:
        tables = []
        for (family, name), t in self.tables.items():
            chains = []
            for c in t.chains.values():
                if c.builtin:
                    base = ir.iptables_base_hook(name, c.name, c.policy)
                else:
                    base = None
                chains.append(ir.Chain(c.name, tuple(c.rules), base, c.loc))
                # jumps to chains that do not exist are errors iptables-restore reports too
            for c in t.chains.values():
                for r in c.rules:
                    v = r.verdict
                    if not isinstance(v, (ir.Jump, ir.Goto)):
                        continue
                    if v.chain in ir.TABLE_CHAINS[name]:
                        self.errors.append(FwcSyntaxError(_builtin_jump(v.chain), r.loc))
                    elif v.chain not in t.chains:
                        self.errors.append(FwcSyntaxError(
                            f"chain '{v.chain}' does not exist in table {name}", r.loc))
            sets = self._ipsets(family, name, chains)
            tables.append(ir.Table(family, name, tuple(chains), sets, t.loc))
            looping = ir.jump_loop(tables[-1])
            if looping is not None:  # (iptables-restore: "Too many links")
                self.errors.append(FwcSyntaxError(
                    f"this jump to chain '{looping.verdict.chain}' closes a loop of chains "
                    "(the kernel refuses it)", looping.loc))
            elif (deep := ir.jump_too_deep(tables[-1])) is not None:
                self.errors.append(FwcSyntaxError(ir.too_deep_message(deep[1]), deep[0].loc))
            else:
                self.errors += _hook_errors(tables[-1])
        self._check_updated_ipsets(tables)
        if self.errors:
            raise ErrorGroup(self.errors)
        return ir.Ruleset(tuple(tables))


    def _ipsets(self, family: str, table: str, chains) -> tuple:
        """The ipsets the table's rules use (ExternalSet), in order of first use; `updated`
        when a SET target adds to or deletes from one."""
        found: dict[str, ir.ExternalSet] = {}
        for c in chains:
            for r in c.rules:
                for x in (*r.matches, *r.statements):
                    if isinstance(x, (ir.SetLookup, ir.IpsetUpdate)) and x.name not in found:
                        found[x.name] = ir.ExternalSet(x.name, family,
                                                       tuple("addr" for _ in x.fields), True)
                    if isinstance(x, ir.IpsetUpdate):
                        old = found[x.name]
                        found[x.name] = attrs.evolve(old, interval=False, updated=True,
                                                     timeout=old.timeout or x.timeout is not None)
        return tuple(found.values())

    def _check_updated_ipsets(self, tables) -> None:
        """An ipset is one set for the whole host; nft's sets are per table.  One that rules
        update cannot be split into copies that would each see only their table's updates."""
        users: dict[tuple[str, str], list] = {}
        for t in tables:
            for s in t.sets:
                users.setdefault((t.family, s.name), []).append((t, s))
        for (family, name), uses in users.items():
            if len(uses) > 1 and any(s.updated for _, s in uses):
                t = next(t for t, s in uses if s.updated)
                self.errors.append(Unsupported(
                    f"ipset {name} is updated by SET in table {t.name} and used in table(s) "
                    f"{', '.join(u.name for u, _ in uses if u is not t)} too: an nft set "
                    "belongs to one table", t.loc))


# ----------------------------------------------------------------------------- one command

_CMDS = {"-A": "append", "--append": "append", "-I": "insert", "--insert": "insert",
         "-D": "delete", "--delete": "delete", "-N": "new", "--new-chain": "new",
         "-X": "delete-chain", "--delete-chain": "delete-chain", "-F": "flush", "--flush": "flush",
         "-P": "policy", "--policy": "policy", "-Z": "zero", "--zero": "zero",
         "-R": "replace", "--replace": "replace", "-E": "rename", "--rename-chain": "rename",
         "-L": "list", "--list": "list", "-S": "list", "--list-rules": "list",
         "-C": "check", "--check": "check"}
_CORE = {"-p": "--protocol", "-s": "--source", "--src": "--source", "-d": "--destination",
         "--dst": "--destination", "-i": "--in-interface", "-o": "--out-interface",
         "-f": "--fragment", "-m": "--match", "-j": "--jump", "-g": "--goto", "-c": "--set-counters",
         "-t": "--table", "-4": "--ipv4", "-6": "--ipv6", "-n": "--numeric", "-v": "--verbose",
         "-w": "--wait", "-x": "--exact", "-W": "--wait-interval"}
_ZERO_ARG_CORE = ("--fragment", "--ipv4", "--ipv6", "--numeric", "--verbose", "--exact",
                  "--line-numbers", "--noflush")
# iptables' own getopt table: an abbreviation of one of these is no module's (a command
# cannot be abbreviated inside a rule)
_COMMANDS = frozenset(f"--{c}" for c in (
    "append", "check", "delete", "insert", "replace", "list", "list-rules", "flush", "zero",
    "new-chain", "delete-chain", "policy", "rename-chain", "help", "version", "modprobe",
    "line-numbers"))
_LONG_CORE = frozenset([*_CORE.values(), "--src", "--dst", *_COMMANDS])


def _abbreviated(text: str, exts) -> Optional[str]:
    """The long option `text` abbreviates, as getopt_long reads it (a prefix of exactly one
    option in the table: iptables' own, the loaded matches', the target's, plus the implicit
    protocol match's, which iptables loads and retries with: `--dp 22`, `--to-port 80`,
    `--limit-b 5`, `--log-pref x` load), or None."""
    if not text.startswith("--") or len(text) < 3 or "=" in text:
        return None
    found = {o for o in _LONG_CORE if o.startswith(text)}
    for ext in exts:
        if ext is not None:
            found |= {ext.aliases.get(o, o) for o in (*ext.options, *ext.aliases)
                      if o.startswith(text)}
    return found.pop() if len(found) == 1 and not found & _COMMANDS else None


class CommandFailed(FwcSyntaxError):
    """An iptables command that iptables itself would refuse in the state the commands before
    it built (no such rule or chain, chain exists or is in use, ...): nothing changes and it
    exits non-zero.  A script may test that (`iptables -N X || true`); anywhere else it is an
    error, as a rule the author meant to add would be missing."""

    absent = False  # what the command names is not there (no such chain, rule or number)


class _RuleParser:
    """Parses the words of one iptables command after the command word."""

    def __init__(self, interp: _Interp, family: str, table: str, loc: ir.Loc, line: str):
        self.interp = interp
        self.family = family
        self.table = table
        self.loc = loc
        self.line = line

    def err(self, msg: str, word: Optional[Word] = None, unsupported: bool = False) -> FwcError:
        col = word.col if word is not None else self.loc.col
        cls = Unsupported if unsupported else FwcSyntaxError
        return cls(msg, ir.Loc(self.loc.file, self.loc.line, col), self.line)

    def fail(self, msg: str, word: Optional[Word] = None, absent: bool = False) -> CommandFailed:
        col = word.col if word is not None else self.loc.col
        e = CommandFailed(msg, ir.Loc(self.loc.file, self.loc.line, col), self.line)
        e.absent = absent
        return e

    def parse(self, words: list[Word], chain: str, counters=None) -> list[ir.Rule]:
        """Parse rule-spec words; returns the rules (several when -s/-d hold lists)."""
        proto: Optional[int] = None
        proto_neg = False
        proto_word = None
        srcs = dsts = None
        src_neg = dst_neg = False
        iif = oif = None
        iif_word = oif_word = None
        frag = None
        modules: list[tuple[X.Ext, Word, list[X.Opt]]] = []
        target: Optional[tuple[str, Word]] = None
        target_opts: list[X.Opt] = []
        goto = False
        comment = None
        i, n = 0, len(words)
        negate_next = False
        current: Optional[tuple[X.Ext, Word, list[X.Opt]]] = None
        seen_core: set[str] = set()
        copied = False

        def take(k: int, w: Word) -> list[Word]:
            nonlocal i
            if i + k > n:
                raise self.err(f"option {w.text} needs {k} argument{'s' if k > 1 else ''}", w)
            args = words[i:i + k]
            i += k
            return args

        while i < n:
            w = words[i]
            i += 1
            t = w.text
            if t == "!":
                if negate_next:
                    raise self.err("double negation '! !'", w)
                negate_next = True
                continue
            opt = _CORE.get(t, t)
            if target is not None:
                ext = X.TARGETS.get(target[0])
                name = ext.aliases.get(opt, opt) if ext else opt
                if ext is not None and name in ext.options:
                    args = take(ext.options[name], w)
                    target_opts.append(X.Opt(name, [a.text for a in args], negate_next, w.col))
                    negate_next = False
                    continue
                # anything else after -j is parsed as if it stood before it, as iptables does
            if opt in _ONCE and opt in seen_core:
                raise self.err(f"multiple {t} flags not allowed", w)
            if opt in _ONCE:
                seen_core.add(opt)
            if opt in _ONCE and opt != "--fragment" and i < n and words[i].text == "!":
                value = words[i + 1].text if i + 1 < n else "..."
                raise self.err(f"'!' goes before the option: ! {t} {value} (iptables no longer "
                               f"reads the old '{t} ! {value}' form)", words[i])
            if opt == "--protocol":
                (a,) = take(1, w)
                try:
                    proto = V.parse_proto(a.text) or None  # 0 (all, ip, hopopt): every packet
                except V.ValueError_ as e:
                    raise self.err(str(e), a, isinstance(e, V.UnsupportedValue))
                proto_neg, negate_next, proto_word = negate_next, False, a
                if proto_neg and proto is None:
                    raise self.err(f"'! -p {a.text}' matches nothing (protocol 0 is every "
                                   "protocol; iptables: rule would never match protocol)", w)
            elif opt in ("--source", "--destination"):
                (a,) = take(1, w)
                vals = []
                for part in a.text.split(","):
                    try:
                        vals.append(V.parse_addr_or_masked(
                            part, self.family, "saddr" if opt == "--source" else "daddr"))
                    except V.ValueError_ as e:
                        raise self.err(str(e), a, isinstance(e, V.UnsupportedValue))
                if negate_next and len(vals) > 1:
                    raise self.err("! not allowed with multiple source or destination addresses", w)
                if opt == "--source":
                    srcs, src_neg = vals, negate_next
                else:
                    dsts, dst_neg = vals, negate_next
                negate_next = False
            elif opt in ("--in-interface", "--out-interface"):
                (a,) = take(1, w)
                name = a.text
                if not name or len(name) > 15 or any(c in name for c in " /"):
                    raise self.err(f"invalid interface name {name!r}", a)
                val = ir.Interface("iifname" if opt == "--in-interface" else "oifname", name,
                                   negate_next)
                if opt == "--in-interface":
                    iif, iif_word = val, w
                else:
                    oif, oif_word = val, w
                negate_next = False
            elif opt == "--fragment":
                if self.family != "ip":
                    raise self.err("-f is only valid for IPv4 (use -m frag)", w)
                frag = ir.Fragment(negate_next)
                negate_next = False
            elif opt == "--match":
                (a,) = take(1, w)
                name = X.MATCH_ALIASES.get(self.family, {}).get(a.text, a.text)
                if negate_next:
                    raise self.err("'!' before -m is not allowed", w)
                only = X.FAMILY_MATCHES.get(name)
                if only is not None and only != self.family:
                    raise self._other_family("-m", name, only, a)
                ext = X.MATCHES.get(name)
                if ext is None:
                    if name in X.NOT_EXPRESSIBLE_MATCHES:
                        raise self.err(f"-m {name} cannot be expressed exactly in nftables: "
                                       f"{X.NOT_EXPRESSIBLE_MATCHES[name]}", a, True)
                    if name in X.KNOWN_UNSUPPORTED_MATCHES:
                        raise self.err(f"match module '{name}' is not supported by fwc yet", a, True)
                    raise self.err(f"unknown match module '{a.text}'", a)
                current = (ext, a, [])
                modules.append(current)
            elif opt in ("--jump", "--goto"):
                (a,) = take(1, w)
                if target is not None:
                    raise self.err("only one target (-j/-g) per rule", w)
                if negate_next:
                    raise self.err("'!' before -j is not allowed", w)
                only = X.FAMILY_TARGETS.get(a.text)
                if only is not None and only != self.family:
                    raise self._other_family(opt, a.text, only, a)
                target = (a.text, a)
                goto = opt == "--goto"
                current = None
                if a.text in X.KNOWN_UNSUPPORTED_TARGETS and a.text not in X.TARGETS:
                    # its options are unknown here: name the target, not its first option
                    raise self.err(f"target '{a.text}' is not supported by fwc yet", a, True)
            elif opt == "--set-counters":
                a, b = take(2, w)
                counters = (a.text, b.text)
            elif opt in ("--ipv4", "--ipv6"):
                want = "ip" if opt == "--ipv4" else "ip6"
                if want != self.family:
                    self.interp.other_family = True
                    return []  # iptables-restore skips rules meant for the other family
            elif opt in ("--wait", "--wait-interval"):
                if i < n and words[i].text.isdigit():
                    i += 1
            elif opt in ("--numeric", "--verbose", "--exact"):
                pass
            elif opt.startswith("-"):
                # a module option: the current module first, then any loaded module, then the
                # implicit protocol module (-p tcp --dport 22 works without -m tcp)
                target_mod = None
                for cand in ([current] if current else []) + list(reversed(modules)):
                    if cand[0].aliases.get(opt, opt) in cand[0].options:
                        target_mod = cand
                        break
                if target_mod is None:
                    # getopt_long: an exact name, else a unique prefix, among what is loaded
                    # (`-m multiport --dport 1,2` is --dports); only then does iptables load
                    # the protocol's match and read the option again
                    loaded = [m[0] for m in modules] + [
                        X.TARGETS.get(target[0]) if target else None]
                    full = _abbreviated(t, loaded)
                    ext = X.MATCHES.get(_IMPLICIT_MODULE.get(proto, ""))
                    if full is None and (ext is None or
                                         ext.aliases.get(opt, opt) not in ext.options):
                        full = _abbreviated(t, loaded + [ext])
                        if full is None:
                            raise self.err(f"unknown option {t}", w)
                    if full is not None:
                        if full == t:
                            raise self.err(f"unknown option {t}", w)
                        if not copied:
                            words, copied = list(words), True  # (the caller's stays as it was)
                        i -= 1
                        words[i] = Word(full, w.col, w.quoted)
                        continue
                    current = target_mod = (ext, w, [])
                    modules.append(current)
                ext = target_mod[0]
                name = ext.aliases.get(opt, opt)
                args = take(ext.options[name], w)
                if args and args[0].text == "!":  # old syntax: iptables 1.8 refuses it
                    value = words[i].text if i < n else "..."
                    raise self.err(f"'!' goes before the option: ! {t} {value} (iptables no "
                                   f"longer reads the old '{t} ! {value}' form)", args[0])
                target_mod[2].append(X.Opt(name, [x.text for x in args], negate_next, w.col))
                negate_next = False
            else:
                raise self.err(f"unexpected argument {t!r}", w)
        if negate_next:
            raise self.err("'!' at the end of the rule", words[-1] if words else None)

        # iptables refuses these for built-in chains (the interface is not known there)
        if iif is not None and chain in ("OUTPUT", "POSTROUTING"):
            raise self.err(f"can't use -i with {chain}", iif_word)
        if oif is not None and chain in ("INPUT", "PREROUTING"):
            raise self.err(f"can't use -o with {chain}", oif_word)
        ctx = X.Ctx(self.family, self.table, chain, proto, self._ctx_error, proto_neg)
        matches: list = []
        if iif:
            matches.append(iif)
        if oif:
            matches.append(oif)
        if frag:
            matches.append(frag)
        if proto is not None:
            matches.append(ir.Proto(frozenset({proto}), proto_neg))
        core_len = len(matches)
        for ext, word, opts in modules:
            need = _module_proto(ext.name, self.family)
            if need is not None and proto is None:
                # -m icmp without -p icmp: the module can only match its own protocol, so
                # requiring it states the meaning exactly (the kernel itself refuses the rule)
                proto = need
                ctx.proto = proto
                matches.insert(core_len, ir.Proto(frozenset({proto})))
            self._check_module_proto(ext, word, proto, proto_neg)
            if ext.name == "comment":
                c = [o for o in opts if o.name == "--comment"]
                if not c:
                    raise self.err("comment needs --comment", word)
                # iptables-restore 1.8.9 (nf_tables) keeps the first 255 bytes, without a word
                text = c[-1].args[0].encode()[:255].decode(errors="ignore")
                comment = text if comment is None else comment + " " + text
            _check_option_counts(self, ext, opts)
            if not opts and ext.name in NEEDS_AN_OPTION:
                # iptables refuses these without an option; a bare one must not match all
                raise self.err(f"{ext.name} match needs {NEEDS_AN_OPTION[ext.name]}", word)
            self._current_word = word
            matches.extend(ext.build(opts, ctx))
        statements: tuple = ()
        verdict = None
        if target is not None:
            tname, tword = target
            self._current_word = tword
            if tname in X.TARGETS:
                if goto:
                    raise self.err(f"-g needs a user-defined chain, not {tname}", tword)
                _check_option_counts(self, X.TARGETS[tname], target_opts)
                res = X.TARGETS[tname].build(target_opts, ctx)
                statements, verdict = res.statements, res.verdict
                self._check_target_context(tname, tword, chain)
            elif tname in X.KNOWN_UNSUPPORTED_TARGETS:
                raise self.err(f"target '{tname}' is not supported by fwc yet", tword, True)
            else:
                if tname.upper() == tname and tname not in self._chains():
                    pass  # checked when freezing: could be a chain created later
                verdict = ir.Goto(tname) if goto else ir.Jump(tname)
        if counters is not None:
            try:
                p, b = int(counters[0]), int(counters[1])
            except ValueError:
                raise self.err("counters must be numbers", words[0] if words else None)
            statements = (ir.Counter(p, b),) + tuple(statements)
        # -s/-d lists expand into one rule per combination, in iptables' order
        rules = []
        for s in (srcs or [None]):
            for d in (dsts or [None]):
                ms = list(matches)
                pos = (1 if iif else 0) + (1 if oif else 0) + (1 if frag else 0) + \
                    (1 if proto is not None else 0)
                extra = []
                if s is not None and not (getattr(s, "prefixlen", 1) == 0 and not src_neg):
                    extra.append(_addr_match("saddr", s, src_neg))
                if d is not None and not (getattr(d, "prefixlen", 1) == 0 and not dst_neg):
                    extra.append(_addr_match("daddr", d, dst_neg))
                ms[pos:pos] = extra
                rules.append(ir.Rule(tuple(ms), tuple(statements), verdict, comment, self.loc))
                if isinstance(verdict, ir.TProxy):  # iptables' TPROXY drops when no socket
                    rules.append(X.tproxy_fallback(rules[-1], ctx))
        return rules

    _current_word: Optional[Word] = None

    def _ctx_error(self, message: str, opt=None, unsupported: bool = False) -> FwcError:
        if opt is not None:
            w = Word("", opt.col)
        else:
            w = self._current_word
        return self.err(message, w, unsupported)

    def _chains(self):
        t = self.interp.tables.get((self.family, self.table))
        return t.chains if t else {}

    def _other_family(self, opt: str, name: str, only: str, word: Word) -> FwcError:
        tool, other = ("iptables", "ip6tables") if only == "ip" else ("ip6tables", "iptables")
        what, does = ("match", "cannot load it") if opt == "-m" else \
            ("target", "reads it as a chain that does not exist")
        hint = X.OTHER_FAMILY_HINT.get(name)
        return self.err(f"{opt} {name} is an {tool} {what} only; the {other} tool {does}"
                        + (f" (use {hint})" if hint else ""), word)

    def _check_module_proto(self, ext: X.Ext, word: Word, proto, proto_neg):
        need = _module_proto(ext.name, self.family)
        if need is not None and (proto != need or proto_neg):
            raise self.err(f"-m {ext.name} needs -p {ext.name if ext.name != 'icmp6' else 'ipv6-icmp'}",
                           word)

    def _check_target_context(self, tname: str, word: Word, chain: str):
        nat_only = {"SNAT": ("POSTROUTING", "INPUT"), "MASQUERADE": ("POSTROUTING",),
                    "DNAT": ("PREROUTING", "OUTPUT"), "REDIRECT": ("PREROUTING", "OUTPUT"),
                    "NETMAP": ("PREROUTING", "POSTROUTING", "OUTPUT", "INPUT")}
        if tname in nat_only and self.table != "nat":
            raise self.err(f"{tname} is only valid in the nat table", word)
        if tname == "REJECT" and chain in ("PREROUTING", "POSTROUTING"):
            # ipt_REJECT's hooks: INPUT, FORWARD, OUTPUT
            raise self.err(f"REJECT is not valid in chain {chain} (only INPUT, FORWARD, "
                           "OUTPUT and chains called from them)", word)
        if tname == "REJECT" and self.table != "filter":
            # (ipt_REJECT's .table: the kernel says "only valid in filter table, not mangle")
            raise self.err(f"REJECT is only valid in the filter table, not {self.table}", word)
        if tname == "DROP" and self.table == "nat":
            raise self.err("the nat table is not for filtering: iptables refuses DROP there",
                           word)
        if tname in nat_only and chain in ir.TABLE_CHAINS["nat"] and chain not in nat_only[tname]:
            raise self.err(f"{tname} is not valid in chain {chain}", word)


# ----------------------------------------------------------------------------- command dispatch


def _apply_command(interp: _Interp, family: str, table: str, words: list[Word], loc: ir.Loc,
                   line: str, in_restore: bool) -> None:
    """Apply one command to the ruleset being built.  What iptables would refuse in this state
    raises CommandFailed and changes nothing."""
    rp = _RuleParser(interp, family, table, loc, line)
    if not words:
        return
    cmd_word = words[0]
    cmd = _CMDS.get(cmd_word.text)
    if cmd is None:
        raise rp.err(f"expected a command (-A, -I, -N, -P, ...), found {cmd_word.text!r}", cmd_word)
    rest = words[1:]
    t = interp.table(family, table, loc)

    def need_chain(create_builtin=True) -> tuple[_Chain, Word]:
        if not rest:
            raise rp.err(f"{cmd_word.text} needs a chain name", cmd_word)
        w = rest[0]
        c = interp.chain(t, w.text, loc, create_builtin)
        if c is None:
            raise rp.fail(f"chain '{w.text}' does not exist in table {table}", w, absent=True)
        return c, w

    if cmd == "list":
        return
    if cmd in ("append", "insert", "delete", "replace", "check"):
        c, w = need_chain()
        args = rest[1:]
        pos = None
        if cmd in ("insert", "replace", "delete") and args and args[0].text.isdigit():
            pos = int(args[0].text)
            if pos == 0:  # (iptables: "Invalid rule number `0'")
                raise rp.err("invalid rule number 0 (rules count from 1)", args[0])
            args = args[1:]
        if cmd_word.col != loc.col:
            rp.loc = ir.Loc(loc.file, loc.line, cmd_word.col)
        try:
            rules = rp.parse(args, c.name)
        except Unsupported as e:
            if not interp.keep_refused or cmd not in ("append", "insert"):
                raise
            rules = [ir.Rule((ir.Refused(e.message),), loc=e.loc)]
        if not in_restore and cmd in ("append", "insert", "replace"):
            _check_jump_targets(rp, t, rules, args)
        if cmd == "append":
            c.rules.extend(rules)
        elif cmd == "insert":
            at = (pos or 1) - 1
            if at > len(c.rules):
                raise rp.fail(f"index of insertion too big (chain {c.name} has {len(c.rules)} "
                              "rules)", rest[1])
            c.rules[at:at] = rules
        elif cmd == "replace":
            if pos is None or len(rules) != 1:
                raise rp.err("-R needs a rule number and one rule", w)
            if not 1 <= pos <= len(c.rules):
                raise rp.fail(f"no rule number {pos} in chain {c.name}", rest[1], absent=True)
            c.rules[pos - 1] = rules[0]
        elif cmd == "check":
            if any(r not in c.rules for r in rules):  # (_RuleList: a lookup each)
                raise rp.fail("-C: no such rule in chain " + c.name, w, absent=True)
        else:  # delete
            if pos is not None and not args:
                if not 1 <= pos <= len(c.rules):
                    raise rp.fail(f"no rule number {pos} in chain {c.name}", w, absent=True)
                del c.rules[pos - 1]
            else:
                need = collections.Counter(rules)  # (all of them there, or nothing changes)
                if any(c.rules.count_of(r) < n for r, n in need.items()):
                    raise rp.fail("-D: no such rule in chain " + c.name, w, absent=True)
                for r in rules:
                    del c.rules[c.rules.index_of(r)]
    elif cmd == "new":
        if not rest:
            raise rp.err("-N needs a chain name", cmd_word)
        name = rest[0].text
        _check_chain_name(rp, rest[0])
        if name in t.chains or name in ir.TABLE_CHAINS[table]:
            if in_restore and name in t.chains:
                return
            raise rp.fail(f"chain '{name}' already exists", rest[0])
        t.chains[name] = _Chain(name, False, "accept", [], ir.Loc(loc.file, loc.line, rest[0].col))
    elif cmd == "delete-chain":
        if not rest:
            doomed = [c for c in t.chains.values() if not c.builtin]
        else:
            c, w = need_chain(False)
            if c.builtin:
                raise rp.fail("cannot delete a built-in chain", w)
            doomed = [c]
        for c in doomed:  # iptables deletes all or nothing
            if c.rules:
                raise rp.fail(f"chain '{c.name}' is not empty (flush it first)",
                              rest[0] if rest else cmd_word)
            user = next((o.name for o in t.chains.values() if o not in doomed
                         for r in o.rules if _jumps_to(r, c.name)), None)
            if user is not None:
                raise rp.fail(f"chain '{c.name}' is in use (a rule of chain {user} jumps to it)",
                              rest[0] if rest else cmd_word)
        for c in doomed:
            del t.chains[c.name]
    elif cmd == "flush":
        if not rest:
            for c in t.chains.values():
                c.rules.clear()
        else:
            c, _ = need_chain()
            c.rules.clear()
    elif cmd == "zero":
        if rest and not rest[0].text.startswith("-"):
            need_chain()
    elif cmd == "policy":
        if len(rest) < 2:
            raise rp.err("-P needs a chain and a policy", cmd_word)
        c, w = need_chain()
        if not c.builtin:
            raise rp.fail("only built-in chains have a policy", w)
        _set_policy(rp, c, rest[1], table)
    elif cmd == "rename":
        if len(rest) < 2:
            raise rp.err("-E needs the old and the new chain name", cmd_word)
        c, w = need_chain(False)
        if c.builtin:
            raise rp.fail("cannot rename a built-in chain", w)
        new = rest[1].text
        _check_chain_name(rp, rest[1])
        if new in t.chains or new in ir.TABLE_CHAINS[table]:
            raise rp.fail(f"chain '{new}' already exists", rest[1])
        t.chains = {(new if k == c.name else k): v for k, v in t.chains.items()}
        c.name = new
        for other in t.chains.values():
            if any(_jumps_to(r, w.text) for r in other.rules):  # (only the chains that jump)
                other.rules = [_retarget(r, w.text, new) for r in other.rules]


def _jumps_to(r: ir.Rule, name: str) -> bool:
    v = r.verdict
    return isinstance(v, (ir.Jump, ir.Goto)) and v.chain == name


def _builtin_jump(chain: str) -> str:
    return f"a jump to the built-in chain {chain} (the kernel refuses it: RULE_APPEND failed)"


def _check_jump_targets(rp: _RuleParser, t: _Table, rules, words: list[Word]) -> None:
    """iptables refuses a jump to a chain that does not exist yet (a script must -N it first)."""
    for r in rules:
        v = r.verdict
        if isinstance(v, (ir.Jump, ir.Goto)) and (v.chain not in t.chains or
                                                   v.chain in ir.TABLE_CHAINS[t.name]):
            at = next((words[k + 1] for k in range(len(words) - 1)
                       if words[k].text in ("-j", "--jump", "-g", "--goto")), None)
            if v.chain in ir.TABLE_CHAINS[t.name]:
                raise rp.err(_builtin_jump(v.chain), at)
            raise rp.fail(f"chain '{v.chain}' does not exist in table {t.name} (create it with "
                          "-N before jumping to it)", at, absent=True)


def _retarget(r: ir.Rule, old: str, new: str) -> ir.Rule:
    v = r.verdict
    if isinstance(v, (ir.Jump, ir.Goto)) and v.chain == old:
        return attrs.evolve(r, verdict=type(v)(new))
    return r


def _addr_match(field: str, value, negate: bool):
    if isinstance(value, ir.FieldMatch):  # non-contiguous netmask
        return attrs.evolve(value, negate=negate)
    return ir.Address(field, (value,), negate)


def _check_chain_name(rp: _RuleParser, w: Word):
    name = w.text
    if not name or len(name) > 28 or name.startswith("-") or name.startswith("!") or " " in name:
        raise rp.err(f"invalid chain name {name!r}", w)
    if name in X.TARGETS or name in BUILTIN_TARGETS:
        raise rp.err(f"chain name {name!r} is a target name", w)


def _set_policy(rp: _RuleParser, c: _Chain, w: Word, table: str):
    p = w.text.upper()
    if p not in ("ACCEPT", "DROP"):
        raise rp.err(f"policy must be ACCEPT or DROP, not {w.text!r}", w)
    if table == "nat" and p == "DROP":
        raise rp.err("the nat table's chains cannot have policy DROP", w)
    c.policy = p.lower()


# ----------------------------------------------------------------------------- iptables-save files

_V6_HINT = re.compile(
    r"(?:\s-[sd]\s+!?\s*[0-9a-fA-F]*:[0-9a-fA-F:]*[/\s])|icmp6|icmpv6|ipv6-icmp|-m\s+hl\b|"
    r"-j\s+HL\b|--hl-|icmp6-|adm-prohibited|-m\s+(?:frag|rt|hbh|mh|dst|ipv6header)\b")


def detect_family(text: str) -> str:
    return "ip6" if _V6_HINT.search(text) else "ip"


_COUNTERS = re.compile(r"\[(\d+):(\d+)\]\s+").match


def parse_iptables_save(text: str, filename: str = "<input>", family: Optional[str] = None,
                        keep_refused: bool = False) -> ir.Ruleset:
    """Parse iptables-save / iptables-restore (or ip6tables) text.  `family` ip|ip6 forces it.
    Without it, a file with `-4`/`-6` rules (one file for both iptables-restore and
    ip6tables-restore) gives both families' tables, each as its restore tool reads the file.
    keep_refused: a rule with a construct fwc refuses becomes a rule whose one match is
    ir.Refused (for --drop-unsupported), instead of an error."""
    if family is None:
        first = _parse_save(text, filename, detect_family(text), keep_refused)
        if not first[1]:
            return first[0]
        other = _parse_save(text, filename, "ip6" if first[0].tables[0].family == "ip" else "ip",
                            keep_refused)[0]
        return ir.Ruleset(tuple(sorted(first[0].tables + other.tables,
                                       key=lambda t: t.family != "ip")))
    return _parse_save(text, filename, family, keep_refused)[0]


@without_gc  # ~100k small objects that all stay alive: no cycles to look for
def _parse_save(text: str, filename: str, family: str, keep_refused: bool):
    """(the ruleset of one family, whether a -4/-6 rule for the other family was skipped)"""
    _check_binary(text, filename)
    _check_not_a_listing(text, filename)
    interp = _Interp(filename, keep_refused)
    table: Optional[str] = None
    table_loc = ir.NOLOC
    open_table = False
    # `iptables -S` prints the filter table's commands with no *table, :chain or COMMIT line
    listing = all(not ln.strip().startswith(("*", ":")) and ln.strip() != "COMMIT"
                  for ln in text.split("\n"))
    chain_decl: dict[str, tuple] = {}
    lines = text.split("\n")
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n").rstrip()
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if not stripped or (stripped[0] == "#" and not indent):
            continue
        loc = ir.Loc(filename, lineno, indent + 1)
        try:
            if indent and (stripped[0] in "*:#" or stripped == "COMMIT"):
                # iptables-restore tests the line's first character: an indented one is read
                # as a rule and refused ("Bad argument"), so it would not load
                what = "COMMIT" if stripped == "COMMIT" else stripped[0]
                raise FwcSyntaxError(f"'{what}' must start the line (iptables-restore reads an "
                                     f"indented '{what}' as a rule and refuses it: Bad argument)",
                                     loc, line)
            if stripped.startswith("*"):
                if open_table:
                    raise FwcSyntaxError(f"table {table} was not committed (COMMIT expected) before "
                                         f"this table", loc, line)
                table = stripped[1:].strip()
                if table not in ir.TABLE_CHAINS:
                    raise FwcSyntaxError(f"unknown table {table!r}", ir.Loc(filename, lineno, indent + 2),
                                         line)
                t = interp.table(family, table, loc)
                t.chains.clear()  # iptables-restore replaces the whole table
                table_loc = loc
                open_table = True
                continue
            if stripped == "COMMIT":
                if not open_table:
                    raise FwcSyntaxError("COMMIT without a table", loc, line)
                open_table = False
                continue
            if table is None:  # files without a *table header start in filter
                table = "filter"
                table_loc = loc
                interp.table(family, table, loc)
                open_table = True
            if not open_table:
                # iptables-restore accepts rules after COMMIT only inside a new *table
                raise FwcSyntaxError("rule outside a table (missing *table line)", loc, line)
            if stripped.startswith(":"):
                _chain_line(interp, family, table, stripped, line, loc, indent)
                continue
            counters = None
            body = stripped
            m = _COUNTERS(body) if body.startswith("[") else None
            if m:
                counters = (m.group(1), m.group(2))
                if any(int(x) >= 1 << 64 for x in counters):
                    raise FwcSyntaxError("packet or byte counter over 2^64 - 1", loc, line)
                body = body[m.end():]
                indent += m.end()
            words = split_restore_words(" " * indent + body, loc, source=line)
            if words and words[0].text not in _CMDS and words[0].text.startswith(("-", "!")):
                # options before the command (`-4 -A INPUT ...`): getopt takes any order
                at = next((j for j, w in enumerate(words) if w.text in _CMDS), None)
                if at is not None:
                    words = _command_first(words, at)
            if counters:
                words = words[:2] + [Word("-c", 0), Word(counters[0], 0), Word(counters[1], 0)] + words[2:] \
                    if words and words[0].text in ("-A", "--append", "-I", "--insert") else words
            _apply_command(interp, family, table, words, loc, line, True)
        except FwcError as e:
            interp.errors.append(e)
            if len(interp.errors) >= 50:
                break
    if listing:
        other = {c for t, cs in ir.TABLE_CHAINS.items() if t != "filter" for c in cs} - \
            set(ir.TABLE_CHAINS["filter"])
        for e in interp.errors:
            if any(e.message == f"chain '{c}' does not exist in table filter" for c in other):
                e.message += (" (an `iptables -S` listing names no table, so it is read as "
                              "filter's; for `iptables -t nat -S` output put a `*nat` line first "
                              "and COMMIT last)")
    if open_table and not interp.errors and not listing:
        interp.errors.append(FwcSyntaxError(f"COMMIT expected at end of table {table}",
                                            ir.Loc(filename, len(lines), 1), None))
    if not interp.tables and not interp.errors:
        interp.errors.append(FwcSyntaxError("no tables or rules found (empty input?)",
                                            ir.Loc(filename, 1, 1)))
    if interp.errors:
        raise ErrorGroup(interp.errors)
    return interp.freeze(), interp.other_family


def _chain_line(interp, family, table, stripped, line, loc, indent):
    parts = stripped[1:].split()
    if not parts:
        raise FwcSyntaxError("chain name expected after ':'", loc, line)
    if len(parts) < 2:  # (iptables-restore: "policy invalid")
        raise FwcSyntaxError(f"chain line :{parts[0]} needs a policy (ACCEPT, DROP or - for a "
                             "user chain)", loc, line)
    name, policy = parts[0], parts[1]
    t = interp.table(family, table, loc)
    cloc = ir.Loc(loc.file, loc.line, indent + 2)
    if name in ir.TABLE_CHAINS[table]:
        if policy not in ("ACCEPT", "DROP"):
            raise FwcSyntaxError(f"built-in chain {name} needs policy ACCEPT or DROP, not {policy!r}",
                                 cloc, line)
        if table == "nat" and policy == "DROP":
            raise FwcSyntaxError("the nat table's chains cannot have policy DROP", cloc, line)
        t.chains[name] = _Chain(name, True, policy.lower(), [], cloc)
    else:
        # `:NAME [0:0]` (no '-'; Fedora's nf-persist files): iptables-nft-restore ignores a user
        # chain's policy word, legacy refuses it; counters there can only mean "no policy"
        if policy != "-" and not re.fullmatch(r"\[\d+:\d+\]", policy):
            raise FwcSyntaxError(f"user chain {name} cannot have a policy ({policy!r})", cloc, line)
        rp = _RuleParser(interp, family, table, loc, line)
        _check_chain_name(rp, Word(name, indent + 2))
        if name in t.chains:
            raise FwcSyntaxError(f"chain {name} declared twice", cloc, line)
        t.chains[name] = _Chain(name, False, "accept", [], cloc)
    # iptables-restore never reads what follows a user chain's '-' (nor, without -c, a built-in
    # chain's counters), so junk there loads; fwc keeps no chain counters either
    if len(parts) > 2 and policy != "-" and not re.fullmatch(r"\[\d+:\d+\]", parts[2]):
        raise FwcSyntaxError(f"bad counters {parts[2]!r} (expected [packets:bytes])", cloc, line)


_LIST_HEADER = re.compile(r"^Chain \S+ \((?:policy \w+|\d+ references?)")


def _check_not_a_listing(text: str, filename: str) -> None:
    """`iptables -L` output shows rules only in part (no module options in its columns)."""
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if _LIST_HEADER.match(line.strip()):
            raise FwcSyntaxError("this is `iptables -L` output, which does not hold whole rules; "
                                 "give fwc `iptables-save` (or `iptables -S`) output",
                                 ir.Loc(filename, lineno, 1), line)
        return


_BINARY = re.compile("[\x00-\x08\x0b\x0e-\x1f\ufffd]")


def _check_binary(text: str, filename: str):
    m = _BINARY.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
        raise FwcSyntaxError("binary data (control character) in input",
                             ir.Loc(filename, line, col))


# ----------------------------------------------------------------------------- shell scripts

IPTABLES_COMMANDS = {
    "iptables": "ip", "iptables-legacy": "ip", "iptables-nft": "ip",
    "ip6tables": "ip6", "ip6tables-legacy": "ip6", "ip6tables-nft": "ip6",
}
_ASSIGN = re.compile(r"^(?:export\s+|readonly\s+|local\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$",
                     re.S)  # (a quoted value may span lines)
_DECLARE = re.compile(r"^(?:export|readonly|unset)(?:\s+[A-Za-z_][A-Za-z0-9_]*)+\s*;?$")
_SHELL_KEYWORDS = ("if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done",
                   "case", "esac", "function", "select", "{", "}")
_HARMLESS = ("set", "true", ":")
# commands that set up the host, not the ruleset: left out with a warning (their redirections
# too, e.g. `echo 1 > /proc/sys/net/ipv4/ip_forward`)
_HOST_COMMANDS = {
    "modprobe": "loads a kernel module", "insmod": "loads a kernel module",
    "sysctl": "sets a kernel parameter", "echo": "prints, or writes a file such as a /proc/sys "
    "setting", "printf": "prints, or writes a file", "logger": "logs a message",
    "sleep": "waits", "iptables-save": "prints the ruleset, or saves it to a file",
    "ip6tables-save": "prints the ruleset, or saves it to a file",
    "ipset": "creates or fills an ipset (the nft output declares the set for you to fill; the "
    "simulator takes elements with --set NAME=ELEMENT)",
    "ip": "configures links, addresses, routes or routing rules",
    "tc": "configures traffic control", "wait": "waits for background jobs",
    "route": "configures routes", "ifconfig": "configures links or addresses",
}
# `service iptables save`, `/etc/init.d/iptables save`, `netfilter-persistent save`: they save
# the ruleset the script built (other actions of a service may load or flush a saved one)
_SAVES = "saves the ruleset to a file"


def _init_script(word: str) -> bool:
    return "/init.d/" in word or "/rc.d/" in word


def _netns_iptables(words: list[str]) -> Optional[str]:
    """NS of `[sudo] ip netns exec NS [sudo] iptables ...` (another namespace's ruleset)."""
    if words[:1] == ["sudo"]:
        words = words[1:]
    inner = words[4:6]
    if inner[:1] == ["sudo"]:
        inner = inner[1:]
    if os.path.basename(words[0]) == "ip" and words[1:3] == ["netns", "exec"] and inner and \
            os.path.basename(inner[0]) in IPTABLES_COMMANDS:
        return words[3]
    return None
_REDIRECT = re.compile(r"(?:\d*>>?|&>>?|<)\s*(?:&\d+|\S+)")
_CHAINING = re.compile(r"[;&|`()]")
_EXIT = re.compile(r"^exit(?:\s+\d+)?\s*$")


def _host_command(stripped: str) -> Optional[tuple[str, str]]:
    """(command, what it does) of a host-setup command line (see _HOST_COMMANDS), or None when
    the line is something else, or chains other commands (`;`, `&&`, `|`, `$(...)`)."""
    words = stripped.split()
    if words and words[0] == "sudo":
        words = words[1:]
    if not words:
        return None
    name = os.path.basename(words[0])
    what = _HOST_COMMANDS.get(name)
    if _netns_iptables(words) is not None:
        return None  # (another namespace's ruleset: refused below, named)
    if words[-1:] == ["save"] and (name == "service" and len(words) == 3 or len(words) == 2 and
                                   (name == "netfilter-persistent" or _init_script(words[0]))):
        name, what = " ".join(words), _SAVES
    if what is not None and _pipes_into_filters(stripped):
        return name, what + " (through a pipe into " + ", ".join(
            sorted({_stage_name(x) for x in _unquoted_split(stripped, "|")[1:]})) + ")"
    if what is None or _chains_commands(_REDIRECT.sub(" ", stripped)):
        return None
    return name, what


# what a host command may pipe into and still change no rule (`echo 1 | sudo tee
# /proc/sys/net/ipv4/ip_forward`): text filters, and tee writing a file
_PIPE_SAFE = frozenset(("tee", "cat", "grep", "cut", "sort", "uniq", "head", "tail", "wc",
                        "tr", "logger"))


def _stage_name(stage: str) -> str:
    """The command a pipeline stage runs (after a plain `sudo [flags]`)."""
    words = stage.split()
    if words[:1] == ["sudo"]:
        words = words[1:]
        while words and words[0] in _SUDO_FLAGS:
            words = words[1:]
    return os.path.basename(words[0]) if words else ""


def _unquoted_split(line: str, sep: str) -> list[str]:
    """`line` cut at each `sep` outside quotes."""
    cuts = [i for i in _unquoted(line) if line[i] == sep]
    out, start = [], 0
    for i in cuts:
        out.append(line[start:i])
        start = i + 1
    out.append(line[start:])
    return out


def _pipes_into_filters(stripped: str) -> bool:
    """A host command piped (one `|`, not `||`) only into _PIPE_SAFE commands, with no other
    chaining: the whole pipeline builds no rule."""
    stages = _unquoted_split(stripped, "|")
    if len(stages) < 2 or any(not x.strip() for x in stages):
        return False  # (no pipe, or `||`)
    if any(_chains_commands(_REDIRECT.sub(" ", x)) for x in stages):
        return False
    return all(_stage_name(x) in _PIPE_SAFE for x in stages[1:])


_REMOVALS = ("-D", "--delete", "-X", "--delete-chain", "-F", "--flush", "-Z", "--zero")
_LIST_BUNDLE = re.compile(r"-[nvx]*[LS][nvx]*")


def _command_first(words: list, at: int) -> list:
    """`-p tcp -A INPUT --dport 22`: the command word at `at` and its operands (chain, rule
    number, policy: the words after it up to the next option) first, then the rest in order."""
    end = at + 1
    while end < len(words) and not words[end].text.startswith(("-", "!")):
        end += 1
    return words[at:end] + words[:at] + words[end:]


# reserved words after which sh needs a command before an operator (`do;`, `then &&`)
_NEEDS_COMMAND = ("do", "then", "else", "elif", "if", "while", "until", "!", "{")


def _blank(part: str) -> bool:
    return not part.strip() or part.lstrip().startswith("#")


def _no_command(stage: str) -> bool:
    """Whether a list or pipeline element holds no command (blank, a comment, a bare `do`)."""
    return _blank(stage) or stage.split() in ([w] for w in _NEEDS_COMMAND)


def _script_commands(text: str, filename: str = "<script>"):
    """The script's simple commands: its logical lines, each cut at `;`, `&&` and `||` outside
    quotes (`iptables -F; iptables -X`, `iptables -N X 2>/dev/null || true`).  Yields (line
    number, command padded with spaces to keep its columns, the whole line, the operator before
    it, the operator after it); the operators are "&&", "||" or None (a line start or `;`).
    A line ending in `&&`, `||` or `|` goes on at the next command, as in the shell.  An
    operator without a command before it, or at the end without one after it, is a syntax
    error, as in sh."""
    def refuse(message: str, lineno: int, col: int, line: str) -> ErrorGroup:
        return ErrorGroup([FwcSyntaxError(f"{message} (a shell syntax error)",
                                          ir.Loc(filename, lineno, col), line)])

    carry = None  # (operator, line number, column, line) ending the previous line
    for lineno, line in _logical_lines(text):
        cuts, n, skip, depth = [], len(line), 0, 0
        if ";" in line or "&" in line or "|" in line:
            for i in _unquoted(line):
                if i < skip:
                    continue  # (the second character of `&&` / `||`)
                c = line[i]
                if depth:  # inside $(...): its operators are the substitution's
                    depth += (c == "(") - (c == ")")
                elif line.startswith("$(", i):
                    depth, skip = 1, i + 2
                elif c == ";" and not line.startswith(";", i + 1):  # `;;` is case syntax
                    cuts.append((i, 1, ";"))
                elif line.startswith(("&&", "||"), i):
                    cuts.append((i, 2, line[i:i + 2]))
                    skip = i + 2
                elif c == "|":  # a pipe: checked here, refused (not cut) later
                    cuts.append((i, 1, "|"))
        if not cuts and _blank(line):
            continue  # (a blank or comment line: `a &&` still goes on below it)
        start = stage = 0
        before = carry[0] if carry and carry[0] != "|" else None
        for at, width, op in cuts + [(n, 0, None)]:
            if op is not None and _no_command(line[stage:at]):
                raise refuse(f"{op!r} without a command before it", lineno, at + 1, line)
            stage = at + width
            if op == "|":
                continue
            part, op = line[start:at], None if op == ";" else op
            if not _blank(part):
                yield lineno, " " * start + part, line, before, op
            start, before = at + width, op
        last = cuts[-1] if cuts else None
        carry = (last[2], lineno, last[0] + 1, line) \
            if last and last[2] != ";" and _blank(line[last[0] + last[1]:]) else None
    if carry:
        raise refuse(f"{carry[0]!r} at the end of the script, without a command after it",
                     *carry[1:])


def _chains_commands(line: str) -> bool:
    """A `;`, `&` or `|` outside quotes (`echo -e "\\e[1;32m"` chains none), or a command
    substitution anywhere (one runs inside double quotes too)."""
    if "$(" in line or "`" in line:
        return True
    return _CHAINING.search("".join(line[i] for i in _unquoted(line))) is not None


def _unquoted(line: str):
    """The indexes of `line`'s characters outside quotes and escapes, up to a `# comment`."""
    i, n, word_start = 0, len(line), True
    while i < n:
        c = line[i]
        if c in "'\"\\":
            i = _past_quoted(line, i)
            word_start = False
            continue
        if c == "#" and word_start:
            return  # a comment: the rest of the line
        yield i
        word_start = c in " \t;&|"
        i += 1


def _past_quoted(line: str, i: int) -> int:
    """The index just past the quoted part or escape starting at line[i] ('...', "...", \\x);
    an unterminated quote runs to the end (split_words reports it)."""
    n = len(line)
    if line[i] == "'":
        j = line.find("'", i + 1)
        return n if j < 0 else j + 1
    if line[i] == '"':
        i += 1
        while i < n and line[i] != '"':
            i += 2 if line[i] == "\\" else 1
        return i + 1
    return i + 2


# an output redirection at a word start: `2>/dev/null`, `>> log`, `2>&1` (not bash's `&>`,
# which sh reads as `&` then `>`: the command would run in the background)
_REDIR_AT = re.compile(r"\d*>>?[ \t]*(?:&\d+|&-|[^\s'\"<>|&;()`]+)")


def _without_redirects(part: str) -> str:
    """`part` with its unquoted output redirections blanked (columns kept): where an iptables
    command's messages go changes no rule.  A `>` inside a word is left for split_words."""
    out, i, n, word_start = None, 0, len(part), True
    while i < n:
        c = part[i]
        if word_start and c in "0123456789>":
            m = _REDIR_AT.match(part, i)
            if m:
                out = (out if out is not None else part)
                out = out[:i] + " " * (m.end() - i) + out[m.end():]
                i = m.end()
                word_start = True
                continue
        i = _past_quoted(part, i) if c in "'\"\\" else i + 1
        word_start = c in " \t"
    return part if out is None else out


def _logical_lines(text: str):
    """Join backslash-continued lines, and lines a quote spans (the newline stays in the
    quoted text, as in sh); yields (first line number, text)."""
    buf, start = [], None
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if start is None:
            start = lineno
        end = _line_end("".join(buf) + line)
        if end == "\\":
            buf.append(line[:-1])  # the shell removes both the backslash and the newline
            continue
        if end in ("'", '"'):
            buf.append(line + "\n")
            continue
        buf.append(line)
        yield start, "".join(buf)
        buf, start = [], None
    if buf:
        yield start, "".join(buf)


def _line_end(text: str) -> Optional[str]:
    """How sh's reading of `text` stands at its end: '\\' when a backslash there joins the
    next line (not when it is escaped itself, inside single quotes, or in a `# comment`), the
    quote character when a quote is still open, else None."""
    quote, k, n = None, 0, len(text)
    while k < n:
        ch = text[k]
        if quote == "'":
            if ch == "'":
                quote = None
        elif ch == "\\":
            if k == n - 1:
                return "\\"
            k += 1  # (the next character is taken literally)
        elif quote == '"':
            if ch == '"':
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (k == 0 or text[k - 1] in " \t;&|()"):
            return None  # the rest of the line is a comment
        k += 1
    return quote


_ASSIGN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")


def _assignment_words(line: str) -> list[tuple[int, int]]:
    """(start, end) of each NAME=value word that begins `line` (`A=1 B="x y" cmd`)."""
    spans, i, n = [], 0, len(line)
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if not _ASSIGN_WORD.match(line, i):
            return spans
        j, depth = i, 0
        while j < n and (depth or line[j] not in " \t"):
            if line[j] in "'\"\\":
                j = _past_quoted(line, j)
                continue
            if line.startswith("$(", j) or depth and line[j] == "(":
                depth += 1
            elif depth and line[j] == ")":
                depth -= 1
            j += 1 + line.startswith("$(", j)
        spans.append((i, j))
        i = j


class _Stop(Exception):
    """The script ends here (`exit`, or too many errors)."""


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*$")
_LOOPS = ("for", "while", "until")


def _first_word(part: str) -> str:
    w = part.split(None, 1)
    return w[0] if w else ""


def _command_word(part: str) -> str:
    """The first word of the command in `part`, past a `do`, `then` or `else` before it on
    the same line (`do for b in ...`: a nested loop opens there)."""
    words = part.split()
    k = 0
    while k < len(words) - 1 and words[k] in ("do", "then", "else"):
        k += 1
    return words[k] if words else ""


def _for_loop(items: list, k: int, filename: str):
    """`for NAME in WORDS; do ...; done` starting at items[k] (the commands of
    _script_commands): (index of its `done`, NAME, (WORDS padded to their columns, line),
    the body's commands)."""
    lineno, line, whole, before, after = items[k]
    col = len(line) - len(line.lstrip()) + 1
    loc = ir.Loc(filename, lineno, col)
    head = line.split()
    if before is not None or after is not None:
        raise Unsupported("a for loop inside a `&&`/`||` list is not supported", loc, whole)
    if len(head) > 1 and head[1].startswith("(("):  # (bash's arithmetic for loop)
        raise Unsupported("C-style `for ((...))` loops (bash) are not supported", loc, whole)
    if len(head) < 2 or not _NAME.match(head[1]):  # (`for;`, `for 1 in`: dash refuses them)
        raise FwcSyntaxError(f"for loop: {head[1]!r} is not a variable name" if len(head) > 1
                             else "for loop without a variable name", loc, whole)
    if len(head) > 2 and head[2] not in ("in", "do"):
        raise FwcSyntaxError(f"for loop: `in` or `do` expected after `for {head[1]}`, not "
                             f"{head[2]!r}", loc, whole)
    if len(head) < 3 or head[2] != "in":  # `for NAME; do`: the positional parameters
        raise Unsupported("only `for NAME in WORDS...; do ...; done` loops are supported",
                             loc, whole)
    at = line.index(" in", line.index(head[1], col - 1 + 3)) + 3
    values = (" " * at + line[at:], lineno, whole)
    if k + 1 >= len(items) or _first_word(items[k + 1][1]) != "do":
        raise FwcSyntaxError("for loop without `do`", loc, whole)
    dl, dline, dwhole, dbefore, dafter = items[k + 1]
    body = []
    rest = dline.replace("do", "  ", 1)
    if rest.strip():
        body.append((dl, rest, dwhole, None, dafter))
    depth, j = (1 if _first_word(rest) in _LOOPS else 0), k + 2  # (`do for b in ...`)
    while j < len(items):
        word = _command_word(items[j][1])
        if word in _LOOPS:
            depth += 1
        elif word == "done":
            if depth == 0:
                if items[j][1].strip() != "done" or items[j][3] is not None \
                        or items[j][4] is not None:
                    raise Unsupported("only a plain `done` ends a loop (no redirection, "
                                         "pipe or `&&`/`||` after it)",
                                         ir.Loc(filename, items[j][0], 1), items[j][2])
                return j, head[1], values, body
            depth -= 1
        body.append(items[j])
        j += 1
    raise FwcSyntaxError("for loop without `done`", loc, whole)


_COMPOUND = ("if", "while", "until", "case")


_CLOSERS = ("then", "else", "elif", "fi", "do", "done", "esac")


def _compound_end(items: list, k: int, word: str) -> Optional[int]:
    """Index of the `fi`/`done`/`esac` closing the construct that starts at items[k] (None
    when it is not closed)."""
    opens = {"if": "fi", "while": "done", "until": "done", "for": "done", "case": "esac"}
    stack = [opens[word]]
    for j in range(k + 1, len(items)):
        w = _command_word(items[j][1])
        if w in opens:
            stack.append(opens[w])
        elif stack and w == stack[-1]:
            stack.pop()
            if not stack:
                return j
    return None


def _subshell_end(items: list, k: int) -> Optional[int]:
    """Index of the command holding the `)` that closes the `(` starting items[k]."""
    depth = 0
    for j in range(k, len(items)):
        line = items[j][1]
        for i in _unquoted(line):
            depth += (line[i] == "(") - (line[i] == ")")
        if depth <= 0:
            return j
    return None


def _unknown_value(name: str, why: FwcError, loc: ir.Loc, whole: str) -> Unsupported:
    return Unsupported(f"the value of ${name} is unknown to fwc (its assignment at line "
                       f"{why.loc.line} column {why.loc.col}: {why.message})", loc, whole)


def _loop_values(values_at, variables: dict, filename: str, whole: str,
                 unknown: Optional[dict] = None) -> list[str]:
    """The words a for loop runs over, expanded and split as the shell does."""
    text, lineno, whole = values_at

    def expand(name: str, col: int) -> str:
        if name in variables:
            return variables[name]
        if unknown and name in unknown:
            raise _unknown_value(name, unknown[name], ir.Loc(filename, lineno, col), whole)
        raise Unsupported(f"undefined variable ${name}", ir.Loc(filename, lineno, col), whole)

    words = split_words(text, ir.Loc(filename, lineno, 1), expand, source=whole)
    for w in words:
        if not w.quoted and any(c in w.text for c in "*?["):
            raise Unsupported(f"a glob in a for loop's words ({w.text!r}): the shell would "
                                 "expand it against files; quote it",
                                 ir.Loc(filename, lineno, w.col), whole)
    return [w.text for w in words]


def _refuse_here_documents(text: str, filename: str) -> None:
    """A here-document (`cat <<EOF ... EOF`, `iptables-restore <<EOF`) feeds its lines to a
    command: read as commands they would mean something else.  Refused, located."""
    for lineno, line in _logical_lines(text):
        for i in _unquoted(line):
            if line.startswith("<<", i) and not line.startswith("<<<", i):
                raise ErrorGroup([Unsupported(
                    "a here-document (<<) is not supported in iptables scripts: its lines "
                    "are a command's input, not commands", ir.Loc(filename, lineno, i + 1),
                    line)])


def parse_iptables_script(text: str, filename: str = "<script>",
                          keep_refused: bool = False,
                          warnings: Optional[list] = None) -> ir.Ruleset:
    """Parse a shell script of iptables/ip6tables commands (with NAME=value variables).
    Host-setup commands (modprobe, sysctl, echo ...) are left out: with a `warnings` list,
    one located FwcError per such line is appended to it."""
    _check_binary(text, filename)
    _refuse_here_documents(text, filename)
    interp = _Interp(filename, keep_refused)
    variables: dict[str, str] = {}
    unknown: dict[str, Unsupported] = {}  # variables whose value fwc cannot know, and why
    saw_command = False
    exited = None
    # the exit status `&&` and `||` test: True, False, or None after a host command (unknown)
    status: Optional[bool] = True
    host_name = ""
    def step(lineno, line, whole, before, after):
        nonlocal saw_command, exited, status, host_name
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            return
        indent = len(line) - len(line.lstrip())
        loc = ir.Loc(filename, lineno, indent + 1)
        if exited is not None:
            if warnings is not None:
                warnings.append(FwcError(f"not run: the script exits at line {exited}", loc, whole))
            raise _Stop
        runs: Optional[bool] = True
        if before is not None:
            runs = None if status is None else (status if before == "&&" else not status)
            if runs is False:
                return  # the shell skips it and $? stays
        unknown_status = Unsupported(f"whether this runs depends on the exit status of "
                                     f"'{host_name}', which fwc cannot know", loc, whole)
        if _EXIT.match(stripped):
            if runs is None:
                interp.errors.append(unknown_status)
                return
            exited = lineno
            return
        spans = _assignment_words(line)
        if spans and not _blank(_without_redirects(line[spans[-1][1]:])):
            # `LC_ALL=C iptables ...`: the assignments are that command's environment only,
            # which no rule depends on
            line = " " * spans[-1][1] + line[spans[-1][1]:]
            stripped = line.strip()
            indent = len(line) - len(line.lstrip())
            loc = ir.Loc(filename, lineno, indent + 1)
        elif len(spans) > 1:  # `A=1 B=2`: each assigned in turn, as sh does
            if runs is None:
                interp.errors.append(unknown_status)
                return
            for a, b in spans:
                step(lineno, " " * a + line[a:b], whole, None, None)
            return
        # (`IPSET=/sbin/ipset` assigns: a command word never holds a `=` before its name)
        host = None if _ASSIGN.match(stripped) else _host_command(stripped)
        if host is not None:
            if warnings is not None:
                warnings.append(FwcError(f"'{host[0]}' left out: it {host[1]}, which is not "
                                         "part of the ruleset", loc, whole))
            status, host_name = None, host[0]
            return
        try:
            def expand(name: str, col: int) -> str:
                if name in variables:
                    return variables[name]
                if name in os.environ and name in ("HOME",):
                    return os.environ[name]
                if name in unknown:
                    raise _unknown_value(name, unknown[name], ir.Loc(filename, lineno, col), whole)
                raise Unsupported(f"undefined variable ${name}", ir.Loc(filename, lineno, col), whole)

            head = stripped.split()[0].rstrip(";")
            if head in _SHELL_KEYWORDS:  # before the words: `for p in 1 2; do` has a ';' too
                raise Unsupported(f"shell construct '{head}' is not supported in iptables "
                                  "scripts (only iptables commands, NAME=value, lists and for "
                                  "loops)", loc, whole)
            m = _ASSIGN.match(stripped)
            if m:
                if runs is None:
                    raise unknown_status
                name = m.group(1)
                # (padded so that columns count from the start of the line)
                value = " " * (indent + m.start(2)) + m.group(2)
                try:
                    value_words = split_words(value, loc, expand, source=whole,
                                              field_split=False) if m.group(2) else []
                except Unsupported as e:
                    # `PATH="$PATH:/sbin"`, `WAN=$(...)`: the value is unknown, which matters
                    # only where the variable is used
                    unknown[name] = e
                    variables.pop(name, None)
                    status = True
                    return
                if len(value_words) > 1:
                    raise Unsupported("assignment value must be quoted if it contains spaces",
                                      loc, whole)
                variables[name] = value_words[0].text if value_words else ""
                unknown.pop(name, None)
                status = True
                return
            if _DECLARE.match(stripped):  # `export PATH`: the shell's environment only
                if stripped.startswith("unset"):
                    for name in stripped.rstrip(";").split()[1:]:
                        variables.pop(name, None)
                        unknown.pop(name, None)
                status = True
                return
            words = split_words(_without_redirects(line), loc, expand, source=whole)
            if not words:
                return
            words = _without_sudo(words)
            first = words[0]
            base = os.path.basename(first.text)
            if first.quoted is False and base in _SHELL_KEYWORDS or first.text.endswith("()"):
                raise Unsupported(f"shell construct '{first.text}' is not supported in iptables "
                                  "scripts (only iptables commands, NAME=value, lists and for "
                                  "loops)", ir.Loc(filename, lineno, first.col), whole)
            if base in _HARMLESS or base == "false":
                status = base != "false"
                return
            namespace = _netns_iptables([w.text for w in words])
            if namespace is not None:
                raise Unsupported(f"iptables in network namespace '{namespace}' (ip netns "
                                  "exec): fwc reads the ruleset of one namespace; translate "
                                  "that namespace's commands as a script of their own",
                                  ir.Loc(filename, lineno, first.col), whole)
            if base in _HOST_COMMANDS and first.text != stripped.split()[0]:
                # a host command named by a variable (`$IPSET -F`, `$MODPROBE ...`)
                if warnings is not None:
                    warnings.append(FwcError(f"'{base}' left out: it {_HOST_COMMANDS[base]}, "
                                             "which is not part of the ruleset", loc, whole))
                status, host_name = None, base
                return
            if base not in IPTABLES_COMMANDS or _init_script(first.text):
                raise Unsupported(f"command '{first.text}' is not supported in iptables scripts "
                                  "(only iptables/ip6tables commands, NAME=value, lists and for "
                                  "loops; host-setup commands such as modprobe are left out)",
                                  ir.Loc(filename, lineno, first.col), whole)
            family = IPTABLES_COMMANDS[base]
            args = words[1:]
            table = "filter"
            rest = []
            k = 0
            while k < len(args):
                a = args[k]
                if a.text in ("-t", "--table"):
                    if k + 1 >= len(args):
                        raise FwcSyntaxError("-t needs a table name", ir.Loc(filename, lineno, a.col), whole)
                    table = args[k + 1].text
                    if table not in ir.TABLE_CHAINS:
                        raise FwcSyntaxError(f"unknown table {table!r}",
                                             ir.Loc(filename, lineno, args[k + 1].col), whole)
                    k += 2
                    continue
                if a.text.startswith("-t") and len(a.text) > 2 and a.text[2:] in ir.TABLE_CHAINS:
                    table = a.text[2:]
                    k += 1
                    continue
                if a.text in ("-4", "--ipv4", "-6", "--ipv6"):
                    if (a.text in ("-4", "--ipv4")) != (family == "ip"):
                        raise FwcSyntaxError(f"{a.text} with {base}: iptables takes -4 only, "
                                             "ip6tables -6 only", ir.Loc(filename, lineno, a.col),
                                             whole)
                    k += 1  # no effect with the command of its own family
                    continue
                if len(a.text) > 2 and _LIST_BUNDLE.fullmatch(a.text):
                    # `iptables -nvL`: getopt reads bundled flags one by one
                    args[k:k + 1] = [Word("-" + ch, a.col + j + 1, a.quoted)
                                     for j, ch in enumerate(a.text[1:])]
                    continue
                if a.text in ("-w", "--wait", "-n", "--numeric", "-v", "--verbose", "-W",
                              "--wait-interval"):
                    k += 1
                    if a.text in ("-w", "--wait", "-W", "--wait-interval") and k < len(args) \
                            and args[k].text.isdigit():
                        k += 1
                    continue
                rest.append(a)
                k += 1
            cmd_idx = next((j for j, w in enumerate(rest) if w.text in _CMDS), None)
            if cmd_idx is None:
                raise FwcSyntaxError("no command (-A, -I, -N, -P, -F, ...) in this iptables call",
                                     ir.Loc(filename, lineno, first.col), whole)
            # iptables accepts options before the command word: move the command to the front
            ordered = _command_first(rest, cmd_idx)
            if rest[cmd_idx].text in ("-P", "--policy", "-N", "--new-chain", "-X", "--delete-chain",
                                      "-F", "--flush", "-Z", "--zero", "-E", "--rename-chain") and cmd_idx:
                raise FwcSyntaxError("options before this command are not supported",
                                     ir.Loc(filename, lineno, rest[0].col), whole)
            saw_command = True
            if runs is None:
                raise unknown_status
            try:
                _apply_command(interp, family, table, ordered, loc, whole, False)
                status = True
            except CommandFailed as e:
                # (deleting, flushing or zeroing what is not there; not a chain in use)
                removal = rest[cmd_idx].text in _REMOVALS and e.absent
                if after is None and not removal:
                    raise  # nothing tests it: the rule meant to be there is missing
                if after is None and warnings is not None:
                    # deleting what is not there changes nothing: the ruleset is what running
                    # the script builds (`iptables -D ... 2>/dev/null`, the idempotent idiom)
                    warnings.append(FwcError(f"{e.message}: this command fails and changes "
                                             "nothing, as when the script runs", e.loc, whole))
                status = False
        except FwcError as e:
            interp.errors.append(e)
            if len(interp.errors) >= 50:
                raise _Stop
    def run(items: list) -> None:
        k = 0
        while k < len(items):
            item = items[k]
            word = _first_word(item[1])
            if word in _COMPOUND:  # refused once, with all of it up to its end
                end = _compound_end(items, k, word)
                if end is None:  # (sh: a syntax error)
                    closing = {"if": "fi", "case": "esac"}.get(word, "done")
                    interp.errors.append(FwcSyntaxError(
                        f"'{word}' without its '{closing}'",
                        ir.Loc(filename, item[0], len(item[1]) - len(item[1].lstrip()) + 1),
                        item[2]))
                    raise _Stop
                step(*item)
                k = end + 1
                continue
            if word in _CLOSERS:  # a `fi`, `done`, `then` ... with nothing open: sh refuses it
                interp.errors.append(FwcSyntaxError(
                    f"'{word}' without the construct it belongs to (a shell syntax error)",
                    ir.Loc(filename, item[0], len(item[1]) - len(item[1].lstrip()) + 1),
                    item[2]))
                k += 1
                continue
            if item[1].lstrip().startswith("("):  # a subshell: refused once, up to its `)`
                end = _subshell_end(items, k)
                at = ir.Loc(filename, item[0], len(item[1]) - len(item[1].lstrip()) + 1)
                if end is None:
                    interp.errors.append(FwcSyntaxError(
                        "'(' without its ')' (a shell syntax error)", at, item[2]))
                    raise _Stop
                interp.errors.append(Unsupported("a subshell ( ... ) is not supported in "
                                                 "iptables scripts", at, item[2]))
                k = end + 1
                continue
            if item[1].split(None, 1)[:1] == ["for"]:
                try:
                    end, name, values_at, body = _for_loop(items, k, filename)
                except FwcError as e:  # where the loop ends is not known: stop here
                    interp.errors.append(e)
                    raise _Stop from None
                k = end + 1
                try:
                    values = _loop_values(values_at, variables, filename, item[2], unknown)
                except FwcError as e:
                    interp.errors.append(e)
                    continue
                for value in values:
                    variables[name] = value
                    run(body)
                continue
            step(*item)
            k += 1

    try:
        run(list(_script_commands(text, filename)))
    except _Stop:
        pass
    if not saw_command and not interp.errors:
        interp.errors.append(FwcSyntaxError("no iptables commands found", ir.Loc(filename, 1, 1)))
    if interp.errors:
        # a loop body's error comes once per iteration: report it once
        once = {(e.loc, e.message): e for e in interp.errors}
        raise ErrorGroup(list(once.values()))
    return interp.freeze()


# `sudo iptables ...`: sudo's options that take no argument may come between
_SUDO_FLAGS = frozenset({"-E", "-H", "-n", "-S", "-k", "-P", "-b"})


def _without_sudo(words: list) -> list:
    """The command a plain `sudo [flags] COMMAND ...` runs (sudo changes no rule)."""
    if len(words) < 2 or words[0].text != "sudo" or words[0].quoted is not False:
        return words
    k = 1
    while k < len(words) - 1 and words[k].text in _SUDO_FLAGS:
        k += 1
    # (any other command too, so that an error names it: `sudo apt ...` is apt's line)
    return words if words[k].text.startswith("-") else words[k:]


# words that start shell commands, never lines of an iptables-save file
_SCRIPT_WORDS = frozenset(("for", "while", "until", "if", "case", "function", ".", "source",
                           "set", "export", "readonly", "local", "unset", "exit", "cd", "test",
                           "iptables-restore", "ip6tables-restore", "[[", "true", "false"))


def looks_like_script(text: str) -> bool:
    if text.startswith("#!") and "sh" in text.split("\n", 1)[0]:
        return True  # #!/bin/sh, #!/usr/bin/env bash: a script whatever its first command
    for line in text.split("\n"):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        first = parts[1] if parts[0] == "sudo" and len(parts) > 1 else parts[0]
        if os.path.basename(first) in IPTABLES_COMMANDS or _ASSIGN.match(s) or \
                first in _SCRIPT_WORDS or first in _HOST_COMMANDS or first.endswith("()"):
            return True
        if s[0] in "(!{" or (s[0] == "[" and not _COUNTERS(s)) or s == ":" or s[:2] == ": ":
            return True  # (a subshell, `! cmd`, `[ test ]`, the no-op `:`: not a save file)
        if s.startswith(("*", ":", "-A", "-I", "-N", "-P", "COMMIT", "[")):
            return False
    return False


# matches and targets the kernel allows only in some hooks (their xt `.hooks`); checked for
# every chain a base chain reaches, as the kernel validates the whole table when loading it
_HOOK_LIMITS = (
    ((ir.SkUid, ir.SkGid, ir.SocketExists), "the owner match", ("output", "postrouting")),
    ((ir.SetPriority,), "CLASSIFY", ("forward", "output", "postrouting")),
    ((ir.Reject,), "REJECT", ("input", "forward", "output")),
)
_HOOK_LIMITED = tuple(k for kinds, _, _ in _HOOK_LIMITS for k in kinds)


def _hook_errors(t: ir.Table) -> list:
    hooks = ir.reaching_bases(t, "hook", vmaps=True)
    errors = []
    for c in t.chains:
        for r in c.rules:
            if not any(isinstance(x, _HOOK_LIMITED) for x in (*r.matches, *r.statements,
                                                               r.verdict)):
                continue
            for kinds, what, allowed in _HOOK_LIMITS:
                if not any(isinstance(x, kinds) for x in (*r.matches, *r.statements, r.verdict)):
                    continue
                bad = sorted(hooks.get(c.name, set()) - set(allowed))
                if bad:
                    via = "" if c.base is not None else f" (chain {c.name} is reached from it)"
                    errors.append(FwcSyntaxError(
                        f"{what} is not valid in {bad[0].upper()}{via}; the kernel allows it "
                        f"only in {', '.join(h.upper() for h in allowed)}", r.loc))
                    break
    return sorted(errors, key=lambda e: (e.loc.line, e.loc.col))
