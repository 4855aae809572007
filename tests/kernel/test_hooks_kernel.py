"""Matches and targets the kernel allows only in some hooks (owner: OUTPUT/POSTROUTING,
CLASSIFY: FORWARD/OUTPUT/POSTROUTING, REJECT: INPUT/FORWARD/OUTPUT), also in a user chain a
base chain of another hook reaches: iptables-restore loads nothing then, and fwc must refuse
exactly those files, located at the rule."""

from __future__ import annotations

import pytest

from fwc.errors import ErrorGroup
from fwc.frontends.iptables import parse_iptables_save
from fwc.testing import netns

pytestmark = pytest.mark.kernel

TABLES = {"filter": ("INPUT", "FORWARD", "OUTPUT"), "raw": ("PREROUTING", "OUTPUT"),
          "mangle": ("PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"),
          "security": ("INPUT", "FORWARD", "OUTPUT")}
RULES = ["-m owner --uid-owner 0 -j DROP", "-m owner --socket-exists -j ACCEPT",
         "-j CLASSIFY --set-class 1:10", "-p tcp -j REJECT --reject-with tcp-reset"]


def _text(table: str, chain: str, rule: str, via_user: bool) -> str:
    heads = [f":{c} ACCEPT [0:0]" for c in TABLES[table]]
    if via_user:
        return "\n".join([f"*{table}", *heads, ":U - [0:0]", f"-A {chain} -j U", f"-A U {rule}",
                          "COMMIT", ""])
    return "\n".join([f"*{table}", *heads, f"-A {chain} {rule}", "COMMIT", ""])


def test_fwc_refuses_what_the_kernel_refuses_in_the_wrong_hook(kernel_ok):
    ns = "fwc-hooks"
    netns.delete(ns)
    netns.create(ns)
    seen = set()
    try:
        for table, chains in TABLES.items():
            for chain in chains:
                for rule in RULES:
                    for via_user in (False, True):
                        text = _text(table, chain, rule, via_user)
                        loaded = netns.run(["iptables-restore"], input=text, check=False,
                                           ns=ns).returncode == 0
                        try:
                            parse_iptables_save(text, "h.rules", "ip")
                            ours = True
                        except ErrorGroup as e:
                            ours = False
                            line = len(TABLES[table]) + (4 if via_user else 2)
                            assert e.errors[0].loc.line == line, e.format()
                        assert ours == loaded, (table, chain, rule, via_user, loaded)
                        seen.add(loaded)
    finally:
        netns.delete(ns)
    assert seen == {True, False}
