"""libnftables JSON (`nft -j list ruleset`, and JSON command lists) -> IR.

JSON expressions are turned into the same syntax tree the text parser builds (`nft_ast`), so
`nft_lower` gives both front ends one meaning.  Each rule's location is the file, line and column
where its JSON object starts."""

from __future__ import annotations

import functools
import json
import re
from typing import Any, Union

import attrs

from fwc import ir
from fwc.errors import FwcError, FwcSyntaxError, Unsupported
from fwc.frontends import too_deep
from fwc.frontends.nft import SET_TYPES, map_value
from fwc.frontends.nft_ast import (Binop, Concat, Counted, FlagList, MapElem, MapLookup, PrefixV, RangeV, Rel,
                                   Sel, SetLit, SetRef, Stmt, Val, VerdictS, VmapS)
from fwc.frontends.nft_build import Builder, _Table
from fwc.frontends.nft_lower import _decode_tuple, decoder_for, lower_rules, lower_verdict
from fwc.frontends.nft_syntax import PAYLOAD_PROTOS, RT_KEYS

__all__ = ["parse_nft_json"]

VERDICTS = ("accept", "drop", "continue", "return", "jump", "goto")
OPS = {"==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "in": "", "eq": "==",
       "ne": "!=", "lt": "<", "gt": ">", "le": "<=", "ge": ">="}


def parse_nft_json(text_or_obj: Union[str, dict], filename: str = "<input>") -> ir.Ruleset:
    try:
        return _parse(text_or_obj, filename)
    except RecursionError:  # (json.loads and the readers below recurse)
        raise too_deep(filename) from None


def _parse(text_or_obj, filename: str) -> ir.Ruleset:
    if isinstance(text_or_obj, str):
        items = _located_items(text_or_obj, filename)
    else:
        items = [(obj, ir.Loc(filename, 0, 0)) for obj in _items(text_or_obj, ir.Loc(filename))]
    b = Builder()
    for obj, loc in items:
        try:
            _command(b, obj, loc)
        except RecursionError:  # (a RuntimeError, but not a malformed object)
            raise
        except (TypeError, KeyError, AttributeError, IndexError, ValueError, RuntimeError,
                StopIteration) as e:
            # a value of the wrong JSON type or a missing member where nft's schema has one
            detail = f"missing member {e}" if isinstance(e, KeyError) else str(e)
            raise FwcSyntaxError(f"malformed nftables JSON object ({detail})", loc) from None
    return b.ruleset()


def _items(doc: Any, loc: ir.Loc) -> list:
    if not isinstance(doc, dict) or not isinstance(doc.get("nftables"), list):
        raise FwcSyntaxError('expected a JSON object {"nftables": [...]}', loc)
    return doc["nftables"]


def _located_items(text: str, filename: str) -> list:
    """The top-level objects of the "nftables" array with the line/column where each starts."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FwcSyntaxError(f"invalid JSON: {e.msg}", ir.Loc(filename, e.lineno, e.colno))
    items = _items(doc, ir.Loc(filename, 1, 1))
    dec = json.JSONDecoder()
    pos = text.find("[", text.find('"nftables"'))
    out = []
    # (line and last newline kept as the items go by: counting from the start per item was
    # quadratic, and `nft -j` writes the whole listing on one line)
    seen, line, last_nl = 0, 1, -1
    for obj in items:
        pos += 1
        while text[pos] in " \t\r\n,":
            pos += 1
        try:
            _, end = dec.raw_decode(text, pos)
        except (json.JSONDecodeError, IndexError):  # (a repeated key: no positions to give)
            return [(o, ir.Loc(filename, 1, 1)) for o in items]
        line += text.count("\n", seen, pos)
        nl = text.rfind("\n", seen, pos)
        if nl >= 0:
            last_nl = nl
        seen = pos
        out.append((obj, ir.Loc(filename, line, pos - last_nl)))
        pos = end - 1
    return out


def _command(b: Builder, obj: Any, loc: ir.Loc) -> None:
    if not isinstance(obj, dict) or len(obj) != 1:
        raise FwcSyntaxError("each nftables item must be an object with one key", loc)
    (key, body), = obj.items()
    verb = "add"
    if key in ("add", "create", "insert", "delete", "destroy", "flush", "replace"):
        verb = key
        if not isinstance(body, dict) or len(body) != 1:
            raise FwcSyntaxError(f"'{key}' needs one object", loc)
        (key, body), = body.items()
    if key == "metainfo":
        return
    if key == "ruleset" and verb == "flush":
        b.flush_ruleset()
        return
    if not isinstance(body, dict):
        raise FwcSyntaxError(f"'{key}' needs an object", loc)
    fam = _req(body, "family", loc) if key == "rule" else body.get("family", "ip")
    if key == "table":
        name = _text(_req(body, "name", loc), "a name", loc)
        if verb in ("add", "create"):
            b.add_table(fam, name, loc, create=verb == "create")
        elif verb in ("delete", "destroy"):
            b.delete_table(fam, name, loc, destroy=verb == "destroy")
        elif verb == "flush":
            b.flush_table(fam, name, loc)
        return
    if key in ("quota", "ct timeout", "ct expectation", "flowtable",
               "secmark", "synproxy"):
        raise Unsupported(f"nft stateful object '{key}'", loc)
    table = b.table(fam, _text(_req(body, "table", loc), "a table name", loc), loc)
    if key == "limit":  # `limit NAME { rate ... }`: one bucket the rules naming it share
        name = _text(_req(body, "name", loc), "a name", loc)
        if verb in ("delete", "destroy"):
            table.limits.pop(name, None)
            return
        if verb == "reset":
            return
        if "rate" not in body:
            raise FwcSyntaxError(f"limit {name} needs a rate", loc)
        from fwc.frontends.nft_lower import _limit
        st = _stmt({"limit": {k: v for k, v in body.items() if k in (
            "rate", "per", "burst", "inv", "rate_unit", "burst_unit")}}, loc)
        table.limits[name] = _limit(st.args, st, b.ctx(table))
        return
    if key == "ct helper":  # as the text's `ct helper NAME { type "ftp" protocol tcp; }`
        name = _text(_req(body, "name", loc), "a name", loc)
        if verb in ("delete", "destroy"):
            table.helpers.pop(name, None)
            return
        proto = body.get("protocol")
        if "type" not in body or proto not in ("tcp", "udp"):
            raise FwcSyntaxError(f"ct helper {name} needs a type and protocol tcp or udp", loc)
        table.helpers[name] = (_text(body["type"], "a helper type", loc), ir.L4_PROTOS[proto])
        return
    if key == "counter":
        name = _text(_req(body, "name", loc), "a name", loc)
        if verb in ("delete", "destroy"):
            table.counters.pop(name, None)
            return
        counts = [body.get(k, 0) for k in ("packets", "bytes")]
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in counts):
            raise FwcSyntaxError(f"counter {name}: invalid packets/bytes {counts}", loc)
        table.counters[name] = ir.CounterObject(name, *counts)
        return
    if key == "chain":
        name = _text(_req(body, "name", loc), "a chain name", loc)
        if verb in ("delete", "destroy"):
            b.delete_chain(table, name, loc)
            return
        if verb == "flush":
            b.chain(table, name, loc).rules.clear()
            return
        base = None
        if "hook" in body:
            devices = body.get("dev")
            if isinstance(devices, str):
                devices = [devices]
            if devices is not None and not (isinstance(devices, list) and
                                            all(isinstance(d, str) for d in devices)):
                raise FwcSyntaxError("'dev' must be a device name or a list of them", loc)
            if table.family == "netdev" and not devices:
                # nft 1.0.6 lists netdev base chains in JSON without their devices: such a
                # listing does not say what the chain is attached to
                raise Unsupported(f"netdev base chain {name} without 'dev' (nft 1.0.6's JSON "
                                  "listing leaves the devices out; use its text listing)", loc)
            base = b.make_base(table, body.get("type", "filter"), body["hook"],
                               _prio(body.get("prio", 0), loc, b, table, body["hook"]),
                               body.get("policy", "accept"), loc, devices)
        b.add_chain(table, name, loc, base, create=verb == "create")
    elif key == "rule":
        if verb not in ("add", "insert"):
            raise Unsupported(f"'{verb} rule' (rule handles are not part of the IR)", loc)
        chain = b.chain(table, _req(body, "chain", loc), loc)
        exprs = _req(body, "expr", loc)
        if not isinstance(exprs, list):
            raise FwcSyntaxError(f"'expr' must be a list of statements, not {json.dumps(exprs)}", loc)
        stmts = [_stmt(s, loc) for s in exprs]
        rules = b.lower_rules(table, chain.name, stmts,
                              _text(body.get("comment"), "comment", loc, True), loc)
        if verb == "insert":
            chain.rules[0:0] = rules
        else:
            chain.rules.extend(rules)
    elif key in ("set", "map"):
        _set(b, table, key, verb, body, loc)
    elif key == "element":
        s = table.sets.get(_req(body, "name", loc))
        if s is None:
            raise FwcSyntaxError(f"set {body['name']} does not exist", loc)
        raw = body.get("elem", [])
        b.add_elements(table, s.name, _elements(b, table, s, raw, loc), loc,
                       tuple(_elem_timeouts(e, loc) for e in raw))
    else:
        raise FwcSyntaxError(f"unknown nftables object '{key}'", loc)


def _text_statement(text: str, loc):
    from fwc.frontends.nft_lex import tokenize
    from fwc.frontends.nft_pre import Sources
    from fwc.frontends.nft_syntax import Cursor, parse_statement
    sources = Sources()  # (errors inside it are located in the statement's own text)
    name = f"{loc.file} (rule text at {loc.line}:{loc.col})"
    sources.texts[name] = text
    c = Cursor(tokenize(text, name), sources)
    st = parse_statement(c)
    c.skip_nl()
    if c.peek().kind != "EOF":
        raise FwcSyntaxError(f"unexpected text after the statement {text!r}", loc)
    return st


def _req(body: dict, k: str, loc):
    if k not in body:
        raise FwcSyntaxError(f"missing '{k}'", loc)
    return body[k]


def _text(v, what: str, loc, optional: bool = False):
    """A JSON member that must be a non-empty string (names, keys, types, comments)."""
    if v is None and optional:
        return None
    if not isinstance(v, str) or (not v and what != "comment"):
        raise FwcSyntaxError(f"{what} must be a string, not {json.dumps(v)}", loc)
    return v


def _texts(v, what: str, loc) -> tuple:
    items = v if isinstance(v, list) else [v]
    if not items:
        raise FwcSyntaxError(f"{what} must not be empty", loc)
    return tuple(_text(x, what, loc) for x in items)


def _prio(p, loc, b: Builder, table: _Table, hook) -> int:
    if isinstance(p, int) and not isinstance(p, bool) and -2**31 <= p < 2**31:  # nft's int32
        return p
    if isinstance(p, str):
        got = b.priority_name(table, p, hook, loc)
        if got is not None:
            return got
    raise FwcSyntaxError(f"invalid chain priority {p!r}", loc)


def _set(b: Builder, table: _Table, key: str, verb: str, body: dict, loc) -> None:
    name = _text(_req(body, "name", loc), "a set name", loc)
    if verb in ("delete", "destroy"):
        table.sets.pop(name, None)
        return
    name = _text(name, "a set name", loc)
    t = _req(body, "type", loc)
    if any(isinstance(x, dict) for x in (t if isinstance(t, list) else [t])):
        raise Unsupported("typeof sets in JSON", loc)
    types = _texts(t, "a set type", loc)
    data = _text(body.get("map"), "a map's data type", loc) if key == "map" else None
    flags = body.get("flags", [])
    flags = _texts(flags, "a set flag", loc) if flags != [] else ()
    size = body.get("size")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool)
                             or not 0 < size < 2**32):
        raise FwcSyntaxError(f"set {name}: invalid size {size!r}", loc)
    stmts = body.get("stmt", [])
    if not isinstance(stmts, list) or any(not isinstance(x, dict) or list(x) != ["counter"]
                                          for x in stmts):
        raise Unsupported(f"set {name}: statements other than counter in its declaration", loc)
    s = ir.NamedSet(name, types, frozenset([flags] if isinstance(flags, str) else flags), (), data,
                    _seconds(body["timeout"], loc) if "timeout" in body else None,
                    _text(body.get("comment"), "comment", loc, True), counter=bool(stmts),
                    size=size,
                    gc_interval=_seconds(body["gc-interval"], loc) if "gc-interval" in body
                    else None)
    if "elem" in body:
        elems = _elements(b, table, s, body["elem"], loc)
        timed = tuple(_elem_timeouts(e, loc) for e in body["elem"])
        s = attrs.evolve(s, elements=elems, element_timeouts=ir.compact_timeouts(timed))
    b.add_set(table, s, loc)


def _seconds(v, loc) -> str:
    """A JSON timeout (whole seconds, as libnftables writes it) as nft text: 60 -> "60s"."""
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise FwcSyntaxError(f"invalid timeout {v!r} (whole seconds)", loc)
    from fwc.frontends.nft_values import canonical_duration
    return canonical_duration(f"{v}s")


def _elem_timeouts(e, loc) -> tuple:
    """(timeout, expires) nft texts of a JSON set element (a map element's key holds them)."""
    if isinstance(e, list) and len(e) == 2:
        e = e[0]
    if not (isinstance(e, dict) and isinstance(e.get("elem"), dict)):
        return ir.NO_TIMEOUT
    body = e["elem"]
    return tuple(_seconds(body[k], loc) if k in body else None for k in ("timeout", "expires"))


def _uncounted(v, s: ir.NamedSet):
    # the per-element counts of a set declared with `counter`: state, not kept (as in text)
    return v.value if s.counter and isinstance(v, Counted) else v


def _elements(b: Builder, table: _Table, s: ir.NamedSet, elems: list, loc) -> tuple:
    keys = tuple(SET_TYPES.get(t, t) for t in s.types)
    ctx = b.ctx(table)
    out = []
    for e in elems:
        if s.data is not None:
            k, v = e
            key = _decode_tuple(keys, _uncounted(_value(k, loc), s), ctx)
            if s.data == "verdict":
                out.append((key, lower_verdict(_verdict(v, loc), ctx)))
            else:
                out.append((key, map_value(s.data, _value(v, loc), ctx)))
        else:
            out.append(_decode_tuple(keys, _uncounted(_value(e, loc), s), ctx))
    return tuple(out)


# --------------------------------------------------------------------------- expressions


def _value(v: Any, loc) -> Any:
    """A JSON right-hand side as a syntax-tree value."""
    if isinstance(v, bool):  # (a bool is an int in Python)
        raise FwcSyntaxError(f"unexpected JSON value {json.dumps(v)} (a number or a name "
                             "goes here)", loc)
    if isinstance(v, int):
        return Val(str(v), loc)
    if isinstance(v, str):
        if v.startswith("@"):
            return SetRef(v[1:], loc)
        return Val(v, loc, quoted=True) if v == "" or v.endswith("*") or " " in v else _word(v, loc)
    if isinstance(v, list):
        return FlagList(tuple(_value(x, loc) for x in v), loc)
    if isinstance(v, dict) and len(v) == 1:
        (k, body), = v.items()
        if k == "set":
            items = body if isinstance(body, list) else [body]
            return SetLit(tuple(_set_elem(x, loc) for x in items), loc)
        if k == "range":
            if not isinstance(body, list) or len(body) != 2:
                raise FwcSyntaxError(f"a range needs two values, not {json.dumps(body)}", loc)
            return RangeV(_value(body[0], loc), _value(body[1], loc), loc)
        if k == "prefix":
            return PrefixV(_value(body["addr"], loc), _count(body["len"]), loc)
        if k == "concat":
            return Concat(tuple(_expr_or_value(x, loc) for x in body), loc)
        if k == "elem":
            return _elem(body, loc)
        if k == "|" and not any(isinstance(x, dict) and next(iter(x)) in _SELECTORS for x in body):
            items = []
            for x in body:  # `syn | ack` as a value: a flag list
                xv = _value(x, loc)
                items.extend(xv.items if isinstance(xv, FlagList) else [xv])
            return FlagList(tuple(items), loc)
        if k in ("&", "|", "^", "<<", ">>"):
            return Binop(_expr_or_value(body[0], loc), k, _value(body[1], loc), loc)
        if k in ("map",):
            return MapLookup(_expr(body["key"], loc), _value(body["data"], loc), loc)
        return _expr(v, loc)
    raise FwcSyntaxError(f"unexpected JSON value {v!r}", loc)


def _elem(body: dict, loc):
    """`{"elem": {"val": V, "timeout": .., "comment": .., "counter": {..}}}`: timeout, expires and
    comment carry no packet meaning; a counter wraps the value (Counted)."""
    extra = set(body) - {"val", "timeout", "expires", "comment", "counter"}
    if extra:
        raise Unsupported(f"per-element {', '.join(sorted(extra))} in sets and maps", loc)
    val = _value(body["val"], loc)
    c = body.get("counter")
    if c is None:
        return val
    if not isinstance(c, dict):
        raise FwcSyntaxError(f"unexpected per-element counter {c!r}", loc)
    return Counted(val, int(c.get("packets", 0)), int(c.get("bytes", 0)), loc)


def _word(v: str, loc) -> Val:
    # strings of names (interfaces, helpers, prefixes) are quoted in nft text
    return Val(v, loc, quoted=False)


def _set_elem(x, loc):
    if isinstance(x, list) and len(x) == 2:
        data = x[1]
        if isinstance(data, dict) and len(data) == 1 and next(iter(data)) in VERDICTS:
            return MapElem(_value(x[0], loc), _verdict(data, loc), loc)
        return MapElem(_value(x[0], loc), _value(data, loc), loc)
    return _value(x, loc)


def _expr_or_value(x, loc):
    if isinstance(x, dict) and len(x) == 1 and next(iter(x)) in _SELECTORS:
        return _expr(x, loc)
    return _value(x, loc)


def _expr(x: Any, loc) -> Any:
    if not isinstance(x, dict) or len(x) != 1:
        raise FwcSyntaxError(f"expected an nftables expression, got {x!r}", loc)
    (k, body), = x.items()
    if k not in _SELECTORS:
        if k in ("&", "|", "^", "<<", ">>"):
            return Binop(_expr(body[0], loc), k, _value(body[1], loc), loc)
        if k == "concat":
            return Concat(tuple(_expr(p, loc) for p in body), loc)
        raise Unsupported(f"nftables JSON expression '{k}'", loc)
    return _selector(x, loc)


_WORDS = re.compile(r"[\w-]+( [\w-]+)?").fullmatch


def _key(v) -> str:
    """A selector's word (a string of nft words, else a TypeError: the object is malformed)."""
    if not isinstance(v, str) or not _WORDS(v):
        raise TypeError(f"expected a name, got {json.dumps(v)}")
    return v


def _count(v) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise TypeError(f"expected a number, got {json.dumps(v)}")
    return v


def _opt(b, k: str, word: str = "") -> list:
    return [word, str(_count(b[k]))] if word and k in b else [_key(b[k])] if k in b else []


# JSON field names that nft's text spells otherwise
_JSON_FIELDS = {"parameter-problem": "param-problem"}


def _payload(b) -> list:
    if "base" in b:
        return [f"@{_key(b['base'])},{_count(b['offset'])},{_count(b['len'])}"]
    if _key(b["protocol"]) not in PAYLOAD_PROTOS:
        raise TypeError(f"unknown payload protocol {json.dumps(b['protocol'])}")
    return [b["protocol"], _JSON_FIELDS.get(_key(b["field"]), b["field"])]


def _fib(b) -> list:
    flags = b.get("flags", [])
    flags = [flags] if isinstance(flags, str) else flags
    return ["fib", " . ".join(_key(f) for f in flags), _key(b["result"])]


def _rt(b) -> list:
    if _key(b["key"]) not in RT_KEYS:  # (in text `rt` is also the routing header)
        raise TypeError(f"unknown rt key {json.dumps(b['key'])}")
    return ["rt", *_opt(b, "family"), b["key"]]


def _ipsec(b) -> list:
    spnum = ["spnum", str(_count(b["spnum"]))] if b.get("spnum") else []
    return ["ipsec", _key(b["dir"]), *spnum, *_opt(b, "family"), _key(b["key"])]


def _hash(kind: str):
    """`jhash ip saddr . tcp dport mod 2 seed 0x.. offset 0`, `symhash mod 2`."""
    def words(b) -> list:
        out = [kind]
        if kind == "jhash":
            e = b["expr"]
            parts = e["concat"] if isinstance(e, dict) and "concat" in e else [e]
            out.append(" . ".join(_selector_text(p) for p in parts))
        return out + ["mod", str(_count(b["mod"])), *_opt(b, "seed", "seed"),
                      *(_opt(b, "offset", "offset") if b.get("offset") else [])]
    return words


# each JSON expression as the words of its nft text, which the text parser then reads
_SELECTORS = {
    "jhash": _hash("jhash"), "symhash": _hash("symhash"),
    "payload": _payload,
    "meta": lambda b: ["meta", _key(b["key"])],
    "ct": lambda b: ["ct", *_opt(b, "dir"), *_opt(b, "family"), _key(b["key"])],
    "fib": _fib,
    "numgen": lambda b: ["numgen", _key(b["mode"]), "mod", str(_count(b["mod"])),
                         *(_opt(b, "offset", "offset") if b.get("offset") else [])],
    "tcp option": lambda b: ["tcp option", _key(b["name"]), *_opt(b, "field")],
    "exthdr": lambda b: [_key(b["name"]), _key(b["field"])] if "field" in b
    else ["exthdr", _key(b["name"])],
    "socket": lambda b: ["socket", _key(b["key"]), *_opt(b, "level", "level")],
    "rt": _rt,
    "ipsec": _ipsec,
    "sctp chunk": lambda b: ["sctp chunk", _key(b["name"]), *_opt(b, "field")],
}


def _selector_text(x) -> str:
    if not isinstance(x, dict) or len(x) != 1 or next(iter(x)) not in _SELECTORS:
        raise TypeError(f"expected an nftables expression, got {json.dumps(x)}")
    (k, body), = x.items()
    if not isinstance(body, dict):
        raise TypeError(f"'{k}' needs an object, not {json.dumps(body)}")
    return " ".join(_SELECTORS[k](body))


@functools.lru_cache(maxsize=4096)
def _parsed_selector(text: str) -> Sel:
    # the text parser's checks (meta and ct keys, header fields, raw payload widths, ipsec
    # spnum, fib flags, tcp options) are nft's own: one place for both syntaxes
    from fwc.frontends.nft_lex import tokenize
    from fwc.frontends.nft_pre import Sources
    from fwc.frontends.nft_syntax import Cursor, parse_selector
    c = Cursor(tokenize(text, "<json>"), Sources())
    sel = parse_selector(c)
    if c.peek().kind != "EOF":
        raise c.error(f"unexpected '{c.peek().text}' after the expression")
    return sel


def _selector(x, loc) -> Sel:
    text = _selector_text(x)
    try:
        sel = _parsed_selector(text)
    except FwcError as e:
        raise type(e)(f"{e.message} (in {json.dumps(x)})", loc) from None
    return attrs.evolve(sel, loc=loc)


# what nft lists with a JSON boolean (`tcp option maxseg exists` is `"right": true`)
_EXISTS = re.compile(r"(tcp option|sctp chunk|exthdr) \S+|meta (ipsec|secpath)|rt ipsec|fib .*")


def _exists(lhs, v: bool, loc) -> Val:
    if not (isinstance(lhs, Sel) and _EXISTS.fullmatch(lhs.text)):
        raise FwcSyntaxError(f"{json.dumps(v)} is no value of {getattr(lhs, 'text', 'this')} "
                             "(only presence tests take a boolean)", loc)
    return Val("exists" if v else "missing", loc)


def _verdict(v, loc) -> VerdictS:
    (k, body), = v.items()
    if k in ("jump", "goto"):
        return VerdictS(k, loc, _text(body["target"], "a jump target", loc))
    return VerdictS(k, loc)


def _stmt(s: Any, loc) -> Any:
    if isinstance(s, str) and s.startswith(("jump {", "goto {")):
        # nft 1.0.6 has no JSON for an anonymous chain: its listing holds the nft text
        return _text_statement(s, loc)
    if not isinstance(s, dict) or len(s) != 1:
        raise FwcSyntaxError(f"expected a statement object, got {s!r}", loc)
    (k, b), = s.items()
    if k == "match":
        jop = _req(b, "op", loc)
        op = OPS.get(jop) if jop != "!" else "!="
        if op is None:
            raise FwcSyntaxError(f"unknown match operator {jop!r}", loc)
        lhs = _expr(b["left"], loc)
        rhs = _exists(lhs, b["right"], loc) if isinstance(b["right"], bool) else \
            _value(b["right"], loc)
        if jop == "!" and not isinstance(rhs, FlagList):
            rhs = FlagList((rhs,), loc)  # `!` on a bitmask: "none of these bits" (& x == 0)
        elif op == "!=" and jop != "!" and isinstance(rhs, FlagList):
            rhs = FlagList(rhs.items, rhs.loc, exact=True)  # the whole value: cmp neq
        return Rel(lhs, op, rhs, loc)
    if k in VERDICTS:
        return _verdict(s, loc)
    if k == "counter":
        if not isinstance(b, dict) and b is not None:
            return Stmt("counter", {"name": _value(b, loc)}, loc)
        b = b or {}
        return Stmt("counter", {x: Val(str(b[x]), loc) for x in ("packets", "bytes") if x in b}, loc)
    if k == "log":
        b = b or {}
        args: dict = {}
        for x in ("prefix", "level", "group", "snaplen", "queue-threshold"):
            if x in b:
                args[x] = Val(str(b[x]), loc, quoted=x == "prefix")
        if "flags" in b:
            fl = b["flags"] if isinstance(b["flags"], list) else [b["flags"]]
            args["flags"] = [f.replace("tcp sequence", "tcp sequence") for f in fl]
        return Stmt("log", args, loc)
    if k == "limit" and isinstance(b, str):  # `limit name "NAME"`
        return Stmt("limit", {"name": _value(b, loc)}, loc)
    if k == "limit":
        args = {"rate": Val(f"{b['rate']}/{b.get('per', 'second')}", loc), "over": bool(b.get("inv"))}
        if b.get("rate_unit", "packets") != "packets":
            args["unit"] = Val(b["rate_unit"], loc)
        if "burst" in b:
            args["burst"] = Val(str(b["burst"]), loc)
            if b.get("burst_unit", "packets") != "packets":
                args["burst_unit"] = b["burst_unit"]
        return Stmt("limit", args, loc)
    if k == "reject":
        if not b:
            return Stmt("reject", {}, loc)
        typ = b.get("type", "icmp")
        if typ == "tcp reset":
            return Stmt("reject", {"family": "tcp", "type": "tcp-reset"}, loc)
        return Stmt("reject", {"family": typ, "type": str(b.get("expr", "port-unreachable"))}, loc)
    if k == "queue":
        b = b or {}
        args = {"flags": b.get("flags", []) if isinstance(b.get("flags", []), list) else [b["flags"]]}
        if "num" in b:
            args["num"] = _value(b["num"], loc)
        return Stmt("queue", args, loc)
    if k in ("snat", "dnat", "masquerade", "redirect"):
        b = b or {}
        args = {"flags": b.get("flags", []) if isinstance(b.get("flags", []), list) else [b["flags"]]}
        if "family" in b:
            args["family"] = _text(b["family"], "a family", loc)
        if "addr" in b:
            args["to"] = _value(b["addr"], loc)
        if "port" in b:
            args["ports"] = _value(b["port"], loc)
        return Stmt(k, args, loc)
    if k == "notrack":
        return Stmt("notrack", {}, loc)
    if k == "mangle":
        return Stmt("set", {"lhs": _expr(b["key"], loc), "value": _expr_or_value(b["value"], loc)}, loc)
    if k == "ct helper":
        return Stmt("set", {"lhs": Sel("ct helper", loc), "value": _value(b, loc)}, loc)
    if k == "vmap":
        return VmapS(_expr(b["key"], loc), _value(b["data"], loc), loc)
    if k == "set" and isinstance(b, dict) and "op" in b:
        elem, timeout = b["elem"], None
        if isinstance(elem, dict) and set(elem) == {"elem"} and isinstance(elem["elem"], dict):
            body = elem["elem"]  # `add @s { ip saddr timeout 2s }`
            extra = set(body) - {"val", "timeout"}
            if extra:
                raise Unsupported(f"per-element {', '.join(sorted(extra))} in a set statement",
                                  loc)
            elem = body["val"]
            if "timeout" in body:
                timeout = _seconds(body["timeout"], loc)
        return Stmt("setupdate", {"op": _text(b["op"], "a set operation", loc),
                                  "set": _text(b["set"], "a set name", loc).lstrip("@"),
                                  "key": _expr_or_value(elem, loc),
                                  "stmts": [_stmt(x, loc) for x in b.get("stmt", [])],
                                  "timeout": timeout}, loc)
    if k == "tproxy" and isinstance(b, dict):
        addr, port = b.get("addr"), b.get("port")
        if isinstance(addr, dict) or isinstance(port, dict):
            raise Unsupported("tproxy to a computed port or map", loc)
        if addr is None and port is None:
            raise FwcSyntaxError("tproxy needs an address or a port", loc)
        text = "" if addr is None else (f"[{addr}]" if ":" in str(addr) and port is not None
                                        else str(addr))
        if port is not None:
            text += f":{port}"
        args = {"to": Val(text, loc)}
        if "family" in b:
            args["family"] = _text(b["family"], "a family", loc)
        return Stmt("tproxy", args, loc)
    if k == "synproxy" and isinstance(b, dict):
        if "name" in b:
            raise Unsupported("named synproxy objects ('synproxy name')", loc)
        args = {x: Val(str(b[x]), loc) for x in ("mss", "wscale") if x in b}
        flags = b.get("flags", [])
        for f in [flags] if isinstance(flags, str) else flags:
            args[f] = True
        return Stmt("synproxy", args, loc)
    if k == "meter" and isinstance(b, dict) and "name" in b and "key" in b:
        stmts = b.get("stmt", [])
        stmts = stmts if isinstance(stmts, list) else [stmts]
        key, timeout = b["key"], None
        if isinstance(key, dict) and set(key) == {"elem"} and isinstance(key["elem"], dict):
            body = key["elem"]  # `meter m { ip saddr timeout 1m limit ... }`
            extra = set(body) - {"val", "timeout"}
            if extra:
                raise Unsupported(f"per-element {', '.join(sorted(extra))} in a meter", loc)
            key = body["val"]
            if "timeout" in body:
                timeout = _seconds(body["timeout"], loc)
        return Stmt("setupdate", {"op": "update" if timeout else "add",
                                  "set": _text(b["name"], "a meter name", loc),
                                  "key": _expr_or_value(key, loc),
                                  "stmts": [_stmt(x, loc) for x in stmts], "timeout": timeout,
                                  "meter": Val(str(b.get("size", 65535)), loc)}, loc)
    if k == "quota" and isinstance(b, dict) and "val" in b:
        args = {"over": bool(b.get("inv")), "amount": Val(str(b["val"]), loc),
                "unit": b.get("val_unit", "bytes")}
        if b.get("used"):
            args["used"] = Val(str(b["used"]), loc)
            args["used_unit"] = b.get("used_unit", "bytes")
        return Stmt("quota", args, loc)
    if k == "quota":
        return Stmt("quota", {}, loc)
    if k == "ct count" and isinstance(b, dict) and "val" in b:  # {"val": N, "inv": over}
        return Stmt("ct count", {"count": Val(str(b["val"]), loc), "over": bool(b.get("inv"))}, loc)
    raise Unsupported(f"nftables JSON statement '{k}'", loc)
