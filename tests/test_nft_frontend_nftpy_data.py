"""Reader of the nftables `tests/py` *.t vectors (../shared/corpus/nft-py) for the nft front end tests."""

from __future__ import annotations

import re
from pathlib import Path

import attrs

from fwc import ir

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "nft-py"
FAMILIES = ("ip", "ip6", "inet")
L2_FAMILIES = ("bridge", "netdev", "arp")


@attrs.frozen
class Vector:
    file: str
    line: int
    family: str
    table: str
    chain: str
    rule: str
    listing: str | None
    prelude: str  # nft commands creating the table, chains and sets the rule needs


def read_vectors(path: Path, families=FAMILIES) -> list[Vector]:
    chains: dict[str, str] = {}
    tables: list[tuple[str, str, list[str]]] = []
    sets: list[str] = []
    out: list[Vector] = []
    for lineno, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", "-")):
            continue
        if line.startswith(":"):
            name, _, spec = line[1:].partition(";")
            chains[name] = spec
        elif line.startswith("*"):
            fam, tab, chs = line[1:].split(";")
            tables.append((fam, tab, chs.split(",")))
        elif line.startswith("!"):
            body, _, res = line[1:].rpartition(";")
            if res == "ok":
                name, _, spec = body.partition(" ")
                kind = "map" if " : " in spec else "set"
                sets.append(f"add {kind} {{fam}} {{tab}} {name} {{{{ {spec} ; }}}}")
        elif line.startswith("?"):
            body, _, res = line[1:].rpartition(";")
            if res == "ok":
                name, _, elems = body.partition(" ")
                sets.append(f"add element {{fam}} {{tab}} {name} {{{{ {elems} }}}}")
        elif line.startswith("%"):
            body, _, res = line[1:].rpartition(";")
            name, _, spec = body.partition(" type ct helper ")
            if res == "ok" and spec:
                body = spec.replace("{", "{{").replace("}", "}}")
                sets.append(f"add ct helper {{fam}} {{tab}} {name} {body}")
            elif res == "ok" and body.endswith(" type counter"):
                sets.append(f"add counter {{fam}} {{tab}} {body.split()[0]}")
            elif res == "ok" and " type limit " in body:
                name, _, spec = body.partition(" type limit ")
                sets.append(f"add limit {{fam}} {{tab}} {name} {{{{ {spec} }}}}")
            # (other stateful objects are refused by the front end)
        else:
            parts = line.split(";")
            if len(parts) < 2 or parts[1] != "ok":
                continue
            rule = parts[0]
            listing = ";".join(parts[2:]) or None
            for fam, tab, chs in tables:
                if fam not in families:
                    continue
                ch = chs[0]
                targets = set(re.findall(r"\b(?:jump|goto)\s+([A-Za-z0-9_\-]+)", rule + " " + (listing or "")))
                prelude = [f"add table {fam} {tab}",
                           f"add chain {fam} {tab} {ch} {{ {chains.get(ch, '')}; }}"]
                prelude += [f"add chain {fam} {tab} {t}" for t in sorted(targets) if t != ch]
                prelude += [s.format(fam=fam, tab=tab) for s in sets]
                out.append(Vector(str(path.relative_to(CORPUS)), lineno, fam, tab, ch, rule,
                                  listing, "\n".join(prelude)))
    return out


def all_vectors(families=FAMILIES) -> list[Vector]:
    vecs: list[Vector] = []
    for fam in families:
        for p in sorted((CORPUS / fam).glob("*.t")):
            vecs.extend(read_vectors(p, families))
    return vecs


def strip_implied_protocols(rule: ir.Rule) -> ir.Rule:
    """nft lists `ip protocol tcp tcp dport 22` as `tcp dport 22`: the protocol match is implied by
    the port match (the IR's protocol-dependent matches require their protocol), so drop it."""
    need = set()
    for m in rule.matches:
        if isinstance(m, ir.Port):
            need.add(ir.L4_PROTOS[m.proto])
        elif isinstance(m, ir.TcpFlags):
            need.add(6)
        elif isinstance(m, ir.Icmp):
            need.add(1 if m.family == "ip" else 58)
    ms = tuple(m for m in rule.matches
               if not (isinstance(m, ir.Proto) and not m.negate and len(m.protos) == 1
                       and next(iter(m.protos)) in need))
    return ir.Rule(ms, rule.statements, rule.verdict, rule.comment)


def without_implied_protocols(rs: ir.Ruleset) -> ir.Ruleset:
    return ir.Ruleset(tuple(attrs.evolve(t, chains=tuple(attrs.evolve(c, rules=tuple(
        strip_implied_protocols(r) for r in c.rules)) for c in t.chains)) for t in rs.tables))
