"""Built-in names of the policy language: services, ICMP types, states, reject types, helpers."""

from __future__ import annotations

from fwc import ir
from fwc.ir import L4_PROTOS

# service name -> the text of its definition (parsed like a user `service` line)
BUILTIN_SERVICES = {
    "ssh": "tcp/22", "http": "tcp/80", "https": "tcp/443", "web": "tcp/80, tcp/443",
    "dns": "udp/53, tcp/53", "ntp": "udp/123", "smtp": "tcp/25", "submission": "tcp/587",
    "smtps": "tcp/465", "imaps": "tcp/993", "pop3s": "tcp/995", "ftp": "tcp/21",
    "ldap": "tcp/389", "ldaps": "tcp/636", "syslog": "udp/514", "snmp": "udp/161",
    "dhcp": "udp/67-68", "dhcpv6": "udp/546-547", "mysql": "tcp/3306",
    "postgresql": "tcp/5432", "rsync": "tcp/873", "wireguard": "udp/51820",
    "openvpn": "udp/1194", "bgp": "tcp/179", "zabbix": "tcp/10050-10051",
    "prometheus": "tcp/9100", "ping": "icmp/echo-request, icmpv6/echo-request",
    # IPv6 needs neighbour discovery; a policy dropping all ICMPv6 breaks it
    "ndp": "icmpv6/nd-neighbor-solicit, icmpv6/nd-neighbor-advert, "
           "icmpv6/nd-router-solicit, icmpv6/nd-router-advert",
}

PORT_PROTOS = {"tcp": 6, "udp": 17, "sctp": 132, "dccp": 33, "udplite": 136}
PROTOCOLS = {k: v for k, v in L4_PROTOS.items()}

ICMP_TYPES = {
    "echo-reply": 0, "destination-unreachable": 3, "source-quench": 4, "redirect": 5,
    "echo-request": 8, "router-advertisement": 9, "router-solicitation": 10,
    "time-exceeded": 11, "parameter-problem": 12, "timestamp-request": 13,
    "timestamp-reply": 14, "info-request": 15, "info-reply": 16, "address-mask-request": 17,
    "address-mask-reply": 18,
}
ICMPV6_TYPES = {
    "destination-unreachable": 1, "packet-too-big": 2, "time-exceeded": 3,
    "parameter-problem": 4, "echo-request": 128, "echo-reply": 129, "mld-listener-query": 130,
    "mld-listener-report": 131, "mld-listener-done": 132, "nd-router-solicit": 133,
    "nd-router-advert": 134, "nd-neighbor-solicit": 135, "nd-neighbor-advert": 136,
    "nd-redirect": 137, "router-renumbering": 138, "ind-neighbor-solicit": 141,
    "ind-neighbor-advert": 142, "mld2-listener-report": 143,
}

CT_STATE_NAMES = ("new", "established", "related", "invalid", "untracked")
CT_STATUS_NAMES = ("dnat", "snat")
# reject types both families can express (nft icmpx; iptables icmp-*/icmp6-*)
REJECT_TYPES = ("tcp-reset", "port-unreachable", "admin-prohibited", "no-route")
RATE_UNITS = {"second": "second", "sec": "second", "s": "second", "minute": "minute",
              "min": "minute", "hour": "hour", "h": "hour", "day": "day", "d": "day"}
LOG_LEVELS = {"emerg": 0, "alert": 1, "crit": 2, "err": 3, "warn": 4, "warning": 4,
              "notice": 5, "info": 6, "debug": 7}
# conntrack helpers and the protocol their service must use
HELPERS = {"ftp": ("tcp",), "tftp": ("udp",), "sip": ("udp", "tcp"), "irc": ("tcp",),
           "snmp": ("udp",), "amanda": ("udp",), "sane": ("tcp",), "netbios-ns": ("udp",)}
# the kernel registers these for IPv4 only (nf_conntrack_irc, _snmp, _netbios_ns): their rules
# get `meta nfproto ipv4` (ip6tables refuses them; nft's inet helper object skips IPv6)
IPV4_HELPERS = frozenset(n for n in HELPERS if ir.KERNEL_HELPERS[n][1] == ("ip",))
CHAIN_OPTIONS = ("stateless",)
