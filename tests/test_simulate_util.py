"""Small builders for hand-made IR in the simulator tests."""

from __future__ import annotations

import ipaddress

from fwc import ir
from fwc.backends.simulate import SimOptions, Simulator
from fwc.packet import Case, packet_from_dict

R = ir.Rule


def net(text: str):
    return ipaddress.ip_network(text, strict=False)


def tcp_dports(*ports: int) -> tuple:
    return (ir.Proto(frozenset({6})),
            ir.Port("tcp", "dport", tuple(ir.Range(p, p) for p in ports)))


def udp_dport(port: int) -> tuple:
    return (ir.Proto(frozenset({17})), ir.Port("udp", "dport", (ir.Range(port, port),)))


def state(*states: str, negate: bool = False) -> ir.CtState:
    return ir.CtState(frozenset(states), negate)


def chain(table: str, name: str, *rules, policy: str = "accept") -> ir.Chain:
    """An iptables built-in chain of `table`."""
    return ir.Chain(name, tuple(rules), ir.iptables_base_hook(table, name, policy))


def user(name: str, *rules) -> ir.Chain:
    return ir.Chain(name, tuple(rules))


def table(name: str, *chains, family: str = "ip") -> ir.Table:
    return ir.Table(family, name, tuple(chains))


def ruleset(*tables) -> ir.Ruleset:
    return ir.Ruleset(tuple(tables))


def filter_rs(input_rules=(), input_policy="accept", output_rules=(), output_policy="accept",
              forward_rules=(), forward_policy="accept", family="ip") -> ir.Ruleset:
    return ruleset(table("filter",
                         chain("filter", "INPUT", *input_rules, policy=input_policy),
                         chain("filter", "FORWARD", *forward_rules, policy=forward_policy),
                         chain("filter", "OUTPUT", *output_rules, policy=output_policy),
                         family=family))


def pkt(index: int = 0, **fields):
    return packet_from_dict(fields, index, index - 1)


def case(probe: dict, *setup: dict, name: str = "c") -> Case:
    s = tuple(pkt(i, **p) for i, p in enumerate(setup))
    return Case(name, s, pkt(len(s), **probe))


def run(rs: ir.Ruleset, probe: dict, *setup: dict, **opts):
    sim = Simulator(rs, SimOptions(**opts))
    return sim.run_case(case(probe, *setup))


def run_sim(rs: ir.Ruleset, probe: dict, *setup: dict, **opts):
    sim = Simulator(rs, SimOptions(**opts))
    return sim, sim.run_case(case(probe, *setup))
