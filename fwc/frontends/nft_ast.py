"""The small syntax tree shared by the nft text and JSON front ends; `nft_lower` turns it into IR.

Leaf values stay as written (`Val.text`), because their meaning depends on the field they are
compared with (`80` is a port for `tcp dport`, a type mismatch for `ip saddr`)."""

from __future__ import annotations

from typing import Any, Optional, Union

import attrs

from fwc.ir import Loc


@attrs.frozen
class Val:
    text: str
    loc: Loc
    quoted: bool = False


@attrs.frozen
class RangeV:
    lo: "Expr"
    hi: "Expr"
    loc: Loc


@attrs.frozen
class PrefixV:
    """`value/len` from JSON ({"prefix": ...}); text prefixes stay inside a Val."""

    base: "Expr"
    length: int
    loc: Loc


@attrs.frozen
class Concat:
    parts: tuple["Expr", ...]
    loc: Loc


@attrs.frozen
class FlagList:
    """`a,b,c` (comma) or `a|b|c` (bar): a bitwise OR of flag values.  After `!=` (not `!`)
    on a bitmask nft compares the whole value with the OR (cmp neq): `exact`."""

    items: tuple["Expr", ...]
    loc: Loc
    exact: bool = False
    comma: bool = attrs.field(default=False, eq=False)  # written `a,b` (a bitmask's list)


@attrs.frozen
class MapElem:
    key: "Expr"
    data: Any  # an Expr, or a VerdictS for verdict maps
    loc: Loc


@attrs.frozen
class Counted:
    """A set element with its own counter (`1.1.1.1 counter packets 0 bytes 0`); wraps the key."""
    value: "Expr"
    packets: int
    bytes: int
    loc: Loc


@attrs.frozen
class SetLit:
    elems: tuple[Any, ...]  # Expr or MapElem
    loc: Loc
    # empty, or per element its (timeout, expires) texts, None where not given
    timeouts: tuple = ()


@attrs.frozen
class SetRef:
    name: str
    loc: Loc


@attrs.frozen
class Sel:
    """A field (selector) in canonical nft text, e.g. "tcp dport", "meta mark", "ct original saddr"."""

    text: str
    loc: Loc
    # `ct original ip saddr`: the family written in it (the text leaves it out)
    family: Optional[str] = attrs.field(default=None, eq=False)


@attrs.frozen
class Binop:
    left: "Expr"
    op: str  # & | ^ << >>
    right: "Expr"
    loc: Loc


@attrs.frozen
class MapLookup:
    """`KEY map { ... }` or `KEY map @name` used as a value (e.g. in `dnat to ip saddr map {...}`)."""

    key: "Expr"
    map: Union[SetLit, SetRef]
    loc: Loc


Expr = Union[Val, RangeV, PrefixV, Concat, FlagList, SetLit, SetRef, Sel, Binop, MapLookup]


@attrs.frozen
class Rel:
    """A match: `lhs [op] rhs`; op "" is nft's implicit operator."""

    lhs: Expr
    op: str
    rhs: Expr
    loc: Loc


@attrs.frozen
class VerdictS:
    kind: str  # accept drop continue return jump goto queue...
    loc: Loc
    target: Optional[str] = None
    # `jump { RULE; ... }`: an anonymous chain's rules, each (statements, comment, loc)
    body: Optional[tuple] = None


@attrs.frozen
class VmapS:
    key: Expr
    map: Union[SetLit, SetRef]
    loc: Loc


@attrs.frozen
class Stmt:
    """Any other statement: kind is the nft keyword ("counter", "log", "snat", "set" ...) and args
    its options as parsed (values are Exprs)."""

    kind: str
    args: dict
    loc: Loc
