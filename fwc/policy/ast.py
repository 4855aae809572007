"""Syntax tree of a policy file: what the parser saw, with locations, before names are resolved."""

from __future__ import annotations

from typing import Optional

import attrs

from fwc.ir import Loc


@attrs.frozen
class Tok:
    """One value as written: kind is addr | svc | name | number | string | word."""

    kind: str
    text: str
    loc: Loc


@attrs.frozen
class Clause:
    """One part of a rule: `from a, b`, `tcp/22`, `log "x"`, ...; kind is the keyword
    (services use kind 'svc')."""

    kind: str
    values: tuple[Tok, ...]
    loc: Loc


@attrs.frozen
class Definition:
    kind: str  # host network set service zone define
    name: Tok
    values: tuple[Tok, ...]
    loc: Loc


@attrs.frozen
class Include:
    path: Tok
    loc: Loc


@attrs.frozen
class HelperDecl:
    """`helper ftp on tcp/21`: connections matching the service get the conntrack helper."""

    name: Tok
    services: tuple[Tok, ...]
    loc: Loc


@attrs.frozen
class RuleStmt:
    action: Tok  # allow accept drop reject masquerade snat dnat redirect
    clauses: tuple[Clause, ...]
    target: Optional[Tok]  # the `-> ...` of snat/dnat/redirect
    loc: Loc
    source_line: str = ""


@attrs.frozen
class ChainDecl:
    """`input policy drop [stateless] { rules }` (block optional); `nat { rules }`."""

    direction: Tok  # input output forward nat
    policy: Optional[Tok]
    options: tuple[Tok, ...]
    rules: tuple[RuleStmt, ...]
    loc: Loc
