#!/bin/sh
# The host firewall from the Q&A: SSH, HTTP and HTTPS in, everything else dropped,
# replies to the host's own connections (DNS, updates) accepted by the established-first rule.
IPT=iptables
$IPT -P INPUT DROP
$IPT -P FORWARD DROP
$IPT -P OUTPUT ACCEPT
$IPT -A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
$IPT -A INPUT -i lo -j ACCEPT
$IPT -A INPUT -m conntrack --ctstate INVALID -j DROP
$IPT -A INPUT -p tcp -m multiport --dports 22,80,443 -j ACCEPT
$IPT -A INPUT -p icmp --icmp-type echo-request -j ACCEPT
