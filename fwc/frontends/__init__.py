"""Front ends: text -> IR.  `load_ruleset` reads a file (or '-') in any supported format."""

from __future__ import annotations

import re
import sys
from typing import Optional

from fwc import ir
from fwc.errors import FwcSyntaxError

FORMATS = ("auto", "iptables", "iptables-script", "nft", "nft-json", "policy")
_NFT_START = re.compile(r"^\s*(table|add|insert|create|delete|destroy|flush|define|redefine|"
                        r"undefine|include|list|chain|replace|reset)\b")


# far beyond any ruleset (a 10,000-rule dump is ~1 MiB); stops an endless stream such as
# /dev/urandom or `yes |` from filling memory
MAX_INPUT_BYTES = 256 * 1024 * 1024


def read_source(path: str) -> tuple[str, str]:
    """(text, display name) of a file or '-' for stdin; unreadable/undecodable -> located error."""
    name = "<stdin>" if path == "-" else path
    try:
        data = read_limited(path)
    except OSError as e:
        raise FwcSyntaxError(f"cannot read input: {e.strerror}", ir.Loc(path)) from None
    return decode_source(data, name), name


def read_limited(path: str) -> bytes:
    """The bytes of `path` ('-': stdin); OSError when unreadable or over MAX_INPUT_BYTES."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    else:
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise OSError(0, f"larger than {MAX_INPUT_BYTES >> 20} MiB (an endless stream?)")
    return data


def decode_source(data: bytes, name: str) -> str:
    """decode_text, or a syntax error located at the first byte that is not UTF-8."""
    try:
        return decode_text(data)
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        col = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
        raise FwcSyntaxError(f"input is not UTF-8 text (byte 0x{data[e.start]:02x}: binary data, "
                             "or another encoding such as Latin-1?)",
                             ir.Loc(name, line, col)) from None


def decode_text(data: bytes) -> str:
    """UTF-8 text without a leading byte-order mark: editors on Windows write one, and it is
    no part of the ruleset (left in, it hid an nft file's first keyword from detect_format).
    A line that is a `# comment` may hold other bytes (a Latin-1 author's name): it means
    nothing, in every format fwc reads, and is read with such bytes as `\\xNN`; a byte that
    is not UTF-8 anywhere else raises UnicodeDecodeError."""
    try:
        return data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        out, at = [], 0
        for line in data.split(b"\n"):
            try:
                out.append(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                if not line.lstrip().startswith(b"#"):
                    raise UnicodeDecodeError(e.encoding, data, at + e.start, at + e.end,
                                             e.reason) from None
                out.append(line.decode("utf-8", errors="backslashreplace"))
            at += len(line) + 1
        return "\n".join(out).removeprefix("\ufeff")


_SURROGATE = re.compile("[\ud800-\udfff]")


def check_text(text: str, name: str) -> None:
    """A lone surrogate (a str from bytes decoded with errors="surrogateescape") is no
    character of any file: a syntax error located at it, not a UnicodeEncodeError later."""
    m = _SURROGATE.search(text)
    if m:
        i = m.start()
        raise FwcSyntaxError(f"a lone surrogate (U+{ord(m.group()):04X}) is not text",
                             ir.Loc(name, text.count("\n", 0, i) + 1,
                                    i - (text.rfind("\n", 0, i) + 1) + 1))


def detect_format(text: str, name: str = "") -> str:
    from fwc.frontends.iptables import looks_like_script

    if name.endswith(".policy"):
        return "policy"
    stripped = text.lstrip()
    if stripped.startswith("{") and '"nftables"' in stripped[:200]:
        return "nft-json"
    for line in text.split("\n"):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if _NFT_START.match(s) and not s.startswith("-"):
            return "nft"
        break
    if looks_like_script(text):
        return "iptables-script"
    return "iptables"


def parse_text(text: str, name: str = "<input>", fmt: str = "auto",
               family: Optional[str] = None, keep_refused: bool = False,
               warnings: Optional[list] = None) -> ir.Ruleset:
    """Parse `text` in format `fmt` (see FORMATS); `family` forces ip|ip6 for iptables-save input.
    keep_refused (iptables input): a rule fwc refuses is kept as a rule whose one match is
    ir.Refused, so that `--drop-unsupported` can leave it out with a comment.
    warnings: a list that gets one located FwcError per line left out on purpose (an iptables
    script's modprobe, sysctl, echo ... lines)."""
    if family not in (None, "ip", "ip6"):
        raise FwcSyntaxError(f"family {family!r}: expected ip or ip6", ir.Loc(name))
    check_text(text, name)
    try:
        return _parse_text(text, name, fmt, family, keep_refused, warnings)
    except RecursionError:  # thousands of nested braces or brackets: no ruleset is like that
        raise too_deep(name) from None


def too_deep(name: str) -> FwcSyntaxError:
    return FwcSyntaxError("input is nested too deeply to read (braces, brackets or "
                          "parentheses)", ir.Loc(name, 1, 1))


def _parse_text(text, name, fmt, family, keep_refused, warnings) -> ir.Ruleset:
    if fmt == "auto":
        fmt = detect_format(text, name)
    if fmt == "iptables":
        from fwc.frontends.iptables import parse_iptables_save
        return parse_iptables_save(text, name, family, keep_refused)
    if fmt == "iptables-script":
        from fwc.frontends.iptables import parse_iptables_script
        return parse_iptables_script(text, name, keep_refused, warnings)
    if fmt == "nft":
        from fwc.frontends.nft import parse_nft
        return parse_nft(text, name)
    if fmt == "nft-json":
        from fwc.frontends.nft_json import parse_nft_json
        return parse_nft_json(text, name)
    if fmt == "policy":
        from fwc.frontends.policy import compile_policy
        return compile_policy(text, name)
    raise FwcSyntaxError(f"unknown input format {fmt!r} (one of {', '.join(FORMATS)})", ir.Loc(name))


def load_ruleset(path: str, fmt: str = "auto", family: Optional[str] = None,
                 keep_refused: bool = False, warnings: Optional[list] = None) -> ir.Ruleset:
    """Read and parse a ruleset file ('-' = stdin).  keep_refused, warnings: see parse_text."""
    text, name = read_source(path)
    return parse_text(text, name, fmt, family, keep_refused, warnings)
