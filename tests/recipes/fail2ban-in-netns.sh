#!/bin/sh
# From the project's shared recipes (/work/shared/recipes/fail2ban-in-netns.sh),
# copied unchanged here so that CI has it.
# Starts a real fail2ban-server confined to network namespace NS, with its
# configuration, socket, pid file, database and log under DIR, and one jail,
# `sshd`, that bans with the iptables-multiport action (its rules live in NS only).
#
#   fail2ban-in-netns.sh NS DIR [PORT]      (foreground; start it with & and stop
#                                           it by the PID in DIR/fail2ban.pid)
#   fail2ban-client -c DIR/etc -s DIR/fail2ban.sock set sshd banip 198.51.100.2
#   fail2ban-client -c DIR/etc -s DIR/fail2ban.sock get sshd banned
# Needs the Debian package fail2ban. Verified with fail2ban 1.0.2 on Debian 12.
set -eu
ns=${1:?NS}; dir=${2:?DIR}; port=${3:-22}
rm -rf "$dir/etc"; mkdir -p "$dir/etc"
cp -a /etc/fail2ban/. "$dir/etc/"
rm -f "$dir/etc/jail.d/"*
: >"$dir/auth.log"
cat >"$dir/etc/fail2ban.local" <<CONF
[Definition]
logtarget = $dir/fail2ban.log
socket = $dir/fail2ban.sock
pidfile = $dir/fail2ban.pid
dbfile = $dir/fail2ban.sqlite3
CONF
cat >"$dir/etc/jail.local" <<CONF
[DEFAULT]
banaction = iptables-multiport
banaction_allports = iptables-allports
bantime = 1h
[sshd]
enabled = true
backend = polling
logpath = $dir/auth.log
port = $port
CONF
exec ip netns exec "$ns" unshare -m --propagation private sh -eu -c '
  dir=$1
  mount -t tmpfs -o mode=755 fw-run /run
  exec fail2ban-server -f -x -c "$dir/etc" -s "$dir/fail2ban.sock" \
    -p "$dir/fail2ban.pid" --logtarget "$dir/fail2ban.log"
' sh "$dir"
