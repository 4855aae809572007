"""The upstream iptables-translate vectors (../shared/corpus/iptables-txlate) as test cases."""

from __future__ import annotations

import shlex
from pathlib import Path

import attrs

from fwc import ir
from fwc.frontends.iptables import parse_iptables_script
from fwc.frontends.iptables_ext import TARGETS
from tests.corpus import TXLATE

TOOLS = {"iptables-translate": "iptables", "ip6tables-translate": "ip6tables"}


@attrs.frozen
class TxCase:
    file: str
    line: int
    tool: str  # iptables | ip6tables
    args: tuple[str, ...]
    expected: tuple[str, ...]  # nft commands, without the leading 'nft'

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def family(self) -> str:
        return "ip6" if self.tool == "ip6tables" else "ip"


def load_cases(root: Path = TXLATE) -> list[TxCase]:
    cases: list[TxCase] = []
    for path in sorted(root.glob("*.txlate")):
        lines = path.read_text().splitlines()
        i = 0
        while i < len(lines):
            words = lines[i].split(None, 1)
            if words and words[0] in TOOLS:
                expected = []
                j = i + 1
                while j < len(lines) and lines[j].startswith("nft"):
                    expected.append(" ".join(shlex.split(lines[j])[1:]))
                    j += 1
                args = tuple(shlex.split(words[1])) if len(words) > 1 else ()
                cases.append(TxCase(path.name, i + 1, TOOLS[words[0]], args, tuple(expected)))
                i = j
            else:
                i += 1
    return cases


def case_ruleset(case: TxCase) -> ir.Ruleset:
    """Parse the case as a one-command iptables script, creating the chains it jumps to."""
    pre = []
    table = _table(case.args)
    for flag, value in zip(case.args, case.args[1:]):
        if flag in ("-A", "-I", "--append", "--insert") and value not in ir.TABLE_CHAINS[table]:
            pre.append(f"{case.tool} -t {table} -N {shlex.quote(value)}")
    for flag, value in zip(case.args, case.args[1:]):
        if flag in ("-j", "-g", "--jump", "--goto") and value not in TARGETS and \
                value not in ("ACCEPT", "DROP", "RETURN", "QUEUE"):
            pre.append(f"{case.tool} -t {table} -N {shlex.quote(value)}")
    script = "\n".join(pre + [case.tool + " " + " ".join(shlex.quote(a) for a in case.args)]) + "\n"
    return parse_iptables_script(script, case.id)


def _table(args) -> str:
    for flag, value in zip(args, args[1:]):
        if flag in ("-t", "--table"):
            return value
    return "filter"
