#!/bin/sh
# An IPv6 host firewall as a shell script of ip6tables commands: neighbour discovery kept
# (hop limit 255), type 0 routing headers and trailing fragments dropped, a connection limit
# per /64 on SMTP, LAN-only services. `fwc translate examples/ipv6-host.sh`
IPT6=/sbin/ip6tables
LAN6="2001:db8:10::/64"
$IPT6 -F
$IPT6 -X
$IPT6 -P INPUT DROP
$IPT6 -P FORWARD DROP
$IPT6 -P OUTPUT ACCEPT
$IPT6 -A INPUT -i lo -j ACCEPT
$IPT6 -A INPUT -m rt --rt-type 0 -j DROP
$IPT6 -A INPUT -m conntrack --ctstate INVALID -j DROP
$IPT6 -A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
$IPT6 -A INPUT -p ipv6-icmp --icmpv6-type 133 -m hl --hl-eq 255 -j ACCEPT
$IPT6 -A INPUT -p ipv6-icmp --icmpv6-type 134 -m hl --hl-eq 255 -j ACCEPT
$IPT6 -A INPUT -p ipv6-icmp --icmpv6-type 135 -m hl --hl-eq 255 -j ACCEPT
$IPT6 -A INPUT -p ipv6-icmp --icmpv6-type 136 -m hl --hl-eq 255 -j ACCEPT
$IPT6 -A INPUT -p ipv6-icmp --icmpv6-type echo-request -m limit --limit 10/s -j ACCEPT
$IPT6 -A INPUT -p ipv6-icmp -j ACCEPT
$IPT6 -A INPUT -s fe80::/10 -p udp --sport 547 --dport 546 -j ACCEPT
$IPT6 -A INPUT -s "$LAN6" -p tcp -m multiport --dports 22,80,443 -m conntrack --ctstate NEW -j ACCEPT
$IPT6 -A INPUT -p tcp --dport 25 -m connlimit --connlimit-above 5 --connlimit-mask 64 -j REJECT --reject-with tcp-reset
$IPT6 -A INPUT -p tcp --dport 25 -j ACCEPT
$IPT6 -A INPUT -d ff02::fb/128 -p udp --dport 5353 -j ACCEPT
$IPT6 -A INPUT -m frag --fragmore -j DROP
$IPT6 -A INPUT -p udp -j REJECT --reject-with icmp6-port-unreachable
$IPT6 -A INPUT -p tcp -j REJECT --reject-with tcp-reset
$IPT6 -A INPUT -j LOG --log-prefix "v6 drop: " --log-level 4
$IPT6 -A OUTPUT -p tcp --dport 25 ! -d "$LAN6" -j REJECT --reject-with adm-prohibited
