"""iptables-translate vectors whose expected nft differs from fwc's output, with the reason.

kind "equivalent": a test or the kernel shows both mean the same (or the vector is wrong and fwc
is right); kind "gap": fwc refuses the construct (a located 'unsupported' error) - listed in README.
Entries below cover the long-tail modules (helper tx); cases in the lead's / nft backend's
modules still to be classified are not listed yet.
"""

_E, _G = "equivalent", "gap"

_AHLEN = "vector wrong: ip6t_ah compares --ahlen with the header length in bytes ((hdrlen+2)*4)"
_AHRES = "vector wrong: --ahres matches a zero reserved field (ip6t_ah: !(hdrres && reserved))"
_OPTLEN = ("vector wrong: --rt-len/--hbh-len are the header length in bytes ((hdrlength+1)*8); "
           "22 is no possible length, so fwc emits a relation no packet satisfies")
_FULLSPI = ("vector inexact: the xt module also requires a non-fragment with a readable header, "
            "which fwc keeps as 'spi 0-4294967295'; upstream's form is not loadable or drops that")
_TPROXY = ("vector wrong: xt TPROXY drops when no transparent socket is found, nft tproxy lets the "
           "packet go on; fwc adds the drop rule")
_TIME = ("exact form: xt_time compares whole UTC seconds; fwc emits 'meta time >= start' and "
         "'< stop+1s' (TZ independent), upstream a range that misses the last fraction of a second")
_MH = "fwc keeps -p mh (meta l4proto mobility-header) as written; same packets as mh type"
_CLUSTER = ("cluster: xt_cluster hashes the master conntrack, mangles pkt_type of multicast "
            "frames on every evaluation and tests node bit hash, not 'eq node'")

KNOWN: dict[str, tuple[str, str]] = {
    "libip6t_ah.txlate:7": (_E, _AHLEN),
    "libip6t_ah.txlate:10": (_E, _AHRES),
    "libip6t_ah.txlate:13": (_E, _AHLEN),
    "libip6t_ah.txlate:16": (_E, _AHLEN + "; " + _AHRES),
    "libip6t_ah.txlate:19": (_E, _FULLSPI + " (nft 1.0.6 has no 'exthdr ah')"),
    "libipt_ah.txlate:10": (_E, _FULLSPI + " (meta l4proto ah also matches fragments)"),
    "libxt_esp.txlate:13": (_E, _FULLSPI + " (meta l4proto esp also matches fragments)"),
    "libxt_esp.txlate:19": (_E, _FULLSPI + " (nft 1.0.6 has no 'exthdr esp')"),
    "libip6t_frag.txlate:4": (_E, "vector wrong: --fragres matches zero reserved bits "
                                  "(reserved and reserved2 both 0)"),
    "libip6t_hbh.txlate:1": (_E, _OPTLEN),
    "libip6t_hbh.txlate:4": (_E, _OPTLEN),
    "libip6t_rt.txlate:4": (_E, _OPTLEN),
    "libip6t_rt.txlate:10": (_E, _OPTLEN),
    "libip6t_rt.txlate:13": (_E, _OPTLEN),
    "libip6t_rt.txlate:22": (_E, "vector not loadable (seg-left is 8 bits); fwc clamps to 0-255, "
                                 "which no packet with the header satisfies either"),
    "libip6t_mh.txlate:1": (_E, _MH), "libip6t_mh.txlate:4": (_E, _MH),
    "libip6t_mh.txlate:7": (_E, _MH + "; full type range kept"),
    "libip6t_mh.txlate:10": (_E, "full type range kept (requires a readable, non-fragment MH)"),
    "libip6t_mh.txlate:13": (_E, _MH),
    "libxt_devgroup.txlate:16": (_E, "vector wrong: only --src-group is negated"),
    "libxt_ecn.txlate:25": (_E, "vector wrong: '! --ecn-tcp-ece' is 'ECE bit clear' "
                                "(tcp flags & ecn == 0), not 'flags byte != 0x40'"),
    "libxt_ecn.txlate:28": (_E, "same flag test written as tcp flags & cwr == cwr"),
    "libxt_quota.txlate:1": (_E, "xt_quota matches while the total is <= N, nft quota while it "
                                 "is < its limit: xt N is nft N+1"),
    "libxt_quota.txlate:4": (_E, "as above, negated: quota over N+1"),
    "libxt_TEE.txlate:10": (_E, "both forms need interface eth0 to exist in the test namespace"),
    "libxt_time.txlate:10": (_E, _TIME), "libxt_time.txlate:13": (_E, _TIME),
    "libxt_time.txlate:16": (_E, _TIME), "libxt_time.txlate:19": (_E, _TIME),
    "libxt_limit.txlate:7": (_E, "vector wrong: the kernel rejects --limit-burst 0 (-ERANGE); fwc "
                                 "reports it"),
    **{f"libxt_TPROXY.txlate:{n}": (_E, _TPROXY) for n in (1, 4, 7, 10, 13, 16, 19)},
    **{f"libxt_cluster.txlate:{n}": (_G, _CLUSTER) for n in (1, 4, 7, 10, 13, 16, 19, 22, 25)},
    "libxt_cgroup.txlate:1": (_G, "xt_cgroup tests skb->sk only when it is a full socket; nft "
                                  "meta cgroup maps request sockets to their listener"),
    "libxt_cgroup.txlate:4": (_G, "as above"),
    "libxt_connlabel.txlate:4": (_G, "--set sets the label as a side effect and matches "
                                     "untracked packets when negated"),
    "libxt_tcpmss.txlate:4": (_G, "'! --mss' also matches packets without an MSS option"),
    "libxt_tcpmss.txlate:10": (_G, "'! --mss' also matches packets without an MSS option"),
    "libxt_time.txlate:1": (_G, "meta day uses the kernel time zone, xt_time UTC"),
    "libxt_time.txlate:22": (_G, "meta day uses the kernel time zone, xt_time UTC"),
    "libxt_time.txlate:25": (_G, "meta day uses the kernel time zone, xt_time UTC"),
    "libxt_CONNMARK.txlate:22": (_G, "no IR for shifted marks (--right-shift-mark)"),
    "libxt_SYNPROXY.txlate:1": (_G, "SYNPROXY not translated yet"),
    "libxt_hashlimit.txlate:1": (_G, "byte-based hashlimit (kb/s, burst 1mb) not supported"),
    **{f"libxt_rpfilter.txlate:{n}": (_G, "fib also accepts reverse routes of non-unicast type; "
                                          "rpfilter does not") for n in (1, 4, 7)},
    **{f"libxt_socket.txlate:{n}": (_G, "nft socket wildcard/mark break on time-wait and request "
                                        "sockets, which xt_socket matches") for n in (2, 5, 10, 13, 16)},
}
