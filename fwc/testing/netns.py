"""Throw-away network namespaces for the kernel harness.

Sockets belong to the namespace they were created in, so one process can hold sockets in
several namespaces: `entered(name)` switches the calling thread in (setns) and back.
That avoids a helper process per namespace and a pipe round trip per packet.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from contextlib import contextmanager
from typing import Iterator, Optional

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NetnsError(RuntimeError):
    """A namespace could not be created, entered or configured."""


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise NetnsError(f"setns failed: {os.strerror(err)}")


@contextmanager
def entered(name: str) -> Iterator[None]:
    """Run the body with the calling thread inside namespace `name`; always switch back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(os.path.join(NETNS_DIR, name), os.O_RDONLY)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(home)


def run(argv: list[str], input: Optional[str] = None, check: bool = True,
        ns: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a command (inside namespace `ns` via `ip netns exec` when given)."""
    if ns is not None:
        argv = ["ip", "netns", "exec", ns, *argv]
    proc = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise NetnsError(f"{' '.join(argv)} failed ({proc.returncode}): "
                         f"{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def ip_netns_usable() -> tuple[bool, str]:
    if shutil.which("ip") is None:
        return False, "the `ip` command (iproute2) is not installed"
    proc = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if proc.returncode != 0:
        return False, f"`ip netns list` failed: {proc.stderr.strip()}"
    return True, ""


def create(name: str) -> None:
    run(["ip", "netns", "add", name])


def delete(name: str) -> None:
    """Delete a namespace if it exists (never raises: used on every exit path)."""
    if os.path.exists(os.path.join(NETNS_DIR, name)):
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(NETNS_DIR, name))


def write_sysctl(path: str, value: str) -> None:
    """Write /proc/sys/<path> for the namespace the calling thread is in (use inside `entered`).
    `path` is dotted (net.ipv4.ip_forward) or, when a name holds dots (bond0.208), slashed."""
    with open("/proc/sys/" + (path if "/" in path else path.replace(".", "/")), "w") as f:
        f.write(value)


def read_sysctl(path: str) -> str:
    with open("/proc/sys/" + path.replace(".", "/")) as f:
        return f.read().strip()
