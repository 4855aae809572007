"""Validate nft text with libnftables (python3-nftables) without changing the ruleset.

The check runs in dry-run mode: nft parses the text and the kernel validates the batch, which
is then aborted.  It needs CAP_NET_ADMIN (root) for the kernel part."""

from __future__ import annotations

import faulthandler
import json
import os
import signal

from fwc.errors import FwcError

INSTALL_HINT = ("python3-nftables is not installed (Debian package python3-nftables; "
                "use a venv with --system-site-packages)")


def _nftables():
    try:
        import nftables  # type: ignore[import-not-found]
    except ImportError:
        raise FwcError(INSTALL_HINT) from None
    return nftables


def _dry_run(text: str) -> list[str]:
    nft = _nftables().Nftables()
    nft.set_dry_run(True)
    rc, _out, err = nft.cmd(text)
    if rc == 0:
        return []
    msgs = [line for line in err.splitlines() if line.strip()]
    return msgs or [f"nft failed with status {rc}"]


def check_nft(text: str) -> list[str]:
    """Error messages nft reports for `text` (empty when it would load).  The binding runs in
    a child process: libnftables 1.0.6 aborts the whole process on some inputs (an assertion
    in netlink_gen_raw_data, met with nft's own test vectors), which must not take fwc down."""
    _nftables()  # (a missing binding is reported here, in this process)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: check, send the result, leave without cleanups
        try:
            os.close(r)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)  # (an assertion's message is nft's, not fwc's)
            faulthandler.disable()  # (nor a dump of this child's stack, under pytest)
            os.write(w, json.dumps(_dry_run(text)).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status) or not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
        what = signal.Signals(sig).name if sig else f"status {os.waitstatus_to_exitcode(status)}"
        return [f"libnftables failed checking the output ({what}): nft itself cannot read it"]
    return json.loads(data)
