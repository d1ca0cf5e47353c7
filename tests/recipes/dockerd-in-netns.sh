#!/bin/sh
# From the project's shared recipes (/work/shared/recipes/dockerd-in-netns.sh),
# copied here so that CI has it. Changed: the optional 5th argument
# CGROUP_PARENT (default /fw-test-docker), so that daemons of tests running in
# parallel never share (or remove) each other's cgroups.
# Starts a real dockerd confined to network namespace NS, with all of its state
# under DIR, so that its iptables rules, bridge and sockets never touch the
# root namespace or the host's /run and /etc/docker.
#
#   dockerd-in-netns.sh NS DIR [BRIDGE_CIDR] [V6_CIDR] [CGROUP_PARENT]    (runs in the foreground;
#   start it with & and stop it by the PID it writes to DIR/ns-sh.pid)
#
# Then: docker -H unix://DIR/docker.sock ...   (no registry is reachable: build an
# image with `docker import` from a tarball holding /bin/busybox and its links).
# After stopping it, remove the cgroups its containers used:
#   rmdir /sys/fs/cgroup/*/CGROUP_PARENT/* /sys/fs/cgroup/*/CGROUP_PARENT 2>/dev/null
# Needs the Debian packages docker.io (dockerd, containerd, runc) and, for the
# image, busybox-static. Verified on Debian 12 with docker.io 20.10 and cgroup v1
# controllers visible in the root namespace.
set -eu
ns=${1:?NS}; dir=${2:?DIR}; bip=${3:-203.0.113.1/25}; v6=${4:-2001:db8:d0c::/64}
cgroup=${5:-/fw-test-docker}
mkdir -p "$dir/data" "$dir/exec"
exec ip netns exec "$ns" unshare -m --propagation private sh -eu -c '
  dir=$1 bip=$2 v6=$3 cgroup=$4
  mount -t tmpfs -o mode=755 fw-run /run
  mkdir -p /etc/docker; mount -t tmpfs -o mode=755 fw-etc-docker /etc/docker
  # ip netns exec remounts /sys: bring the cgroup hierarchies back for runc.
  mount -t tmpfs -o mode=755 fw-cgroup /sys/fs/cgroup
  for c in cpu cpuacct cpuset memory devices freezer blkio pids; do
    mkdir -p /sys/fs/cgroup/$c; mount -t cgroup -o $c cgroup /sys/fs/cgroup/$c 2>/dev/null || true
  done
  mkdir -p /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
  mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd 2>/dev/null || true
  mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified 2>/dev/null || true
  echo $$ >"$dir/ns-sh.pid"
  exec dockerd --data-root "$dir/data" --exec-root "$dir/exec" \
    --pidfile "$dir/docker.pid" -H "unix://$dir/docker.sock" \
    --bip "$bip" --iptables=true --ip-masq=true --ip-forward=true \
    --experimental --ipv6 --fixed-cidr-v6 "$v6" --ip6tables=true \
    --storage-driver vfs --cgroup-parent "$cgroup" >"$dir/dockerd.log" 2>&1
' sh "$dir" "$bip" "$v6" "$cgroup"
