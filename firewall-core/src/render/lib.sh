# The shell library of firewall-core: restore a backup directory, roll back,
# confirm, take over a pending failsafe, and the failsafe watchdog. The
# generated script embeds it and apply() writes it to DIR/rollback.sh and runs
# it, so the two cannot disagree about how the previous rules come back.
# The constants it uses (fw_state_dir, ...) come first, from
# firewall-core/src/render/shell.rs, which apply() reads too.
# shellcheck shell=bash
# fw_log DIR MESSAGE: note what happened in DIR/log and in syslog (when logger
# exists; bounded: a hung syslog must not stall a rollback or a watchdog).
fw_log() {
  printf '%s firewall: %s\n' "$(date '+%F %T')" "$2" >>"$1/log" 2>/dev/null || true
  if command -v logger >/dev/null 2>&1; then
    timeout 5 logger -t firewall -- "$2" </dev/null >/dev/null 2>&1 || true
  fi
}

# fw_now_us: microseconds since the epoch (EPOCHREALTIME needs bash 5; its
# decimal separator follows the locale, so keep the digits only).
fw_now_us() {
  local t=${EPOCHREALTIME:-}
  if [ -n "$t" ]; then
    printf '%s\n' "${t//[!0-9]/}"
  else
    date '+%s%6N'
  fi
}

# fw_alive PID: whether process PID runs (a zombie counts as gone).
fw_alive() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) }
  case ${stat%% *} in
  Z | X) return 1 ;;
  esac
  return 0
}

# fw_state_prefix: the per-network-namespace state of the appliers,
# /run/firewall/net-INODE (INODE of /proc/self/ns/net); the temp dir when
# /run is not writable. PREFIX.lock is the applier lock, PREFIX.pending names
# the backup directory of the pending watchdog, PREFIX.last what the last
# watchdog or take-over did ("reverted DIR", "revert-failed DIR",
# "superseded DIR").
fw_state_prefix() {
  local ns dir=$fw_state_dir
  ns=$(readlink /proc/self/ns/net) || return 1
  ns=${ns//[!0-9]/}
  if ! { { mkdir -m 0700 "$dir" 2>/dev/null || [ -d "$dir" ]; } && [ -w "$dir" ]; }; then
    dir=${TMPDIR:-/tmp}/$fw_state_fallback
    mkdir -m 0700 "$dir" 2>/dev/null || [ -d "$dir" ] || return 1
  fi
  printf '%s/net-%s\n' "$dir" "$ns"
}

# fw_lock PREFIX SECONDS: take the applier lock (flock(2) on PREFIX.lock),
# waiting at most SECONDS; writes this process's pid into it. The descriptor
# is fw_lock_fd; the lock is held until it (and every copy a child inherited)
# is closed, also when this process dies. Returns 1 on timeout, 2 if the
# lock file cannot be opened.
fw_lock() {
  { exec {fw_lock_fd}>>"$1.lock"; } 2>/dev/null || return 2
  if flock -w "$2" "$fw_lock_fd"; then
    printf '%s\n' "$$" >"$1.lock" 2>/dev/null || true
    return 0
  fi
  exec {fw_lock_fd}>&-
  return 1
}

# fw_unlock: release the lock fw_lock took.
fw_unlock() {
  exec {fw_lock_fd}>&-
}

# fw_pending_set PREFIX DIR: DIR is the backup of the watchdog now pending.
fw_pending_set() {
  printf '%s\n' "$2" >"$1.pending.tmp" && mv -f -- "$1.pending.tmp" "$1.pending"
}

# fw_pending_clear PREFIX DIR: forget DIR as the pending one (if it still is).
fw_pending_clear() {
  if [ "$(cat "$1.pending" 2>/dev/null)" = "$2" ]; then
    rm -f -- "$1.pending"
  fi
  return 0
}

# fw_tool FAMILY VERB BACKEND: the save/restore tool of an iptables backend
# (iptables-nft or iptables-legacy). The backend-specific name
# (iptables-nft-restore) is preferred so that save, load and rollback cannot
# end up on different backends; plain names are the fallback.
fw_tool() {
  local base=iptables variant=${3#iptables-}
  if [ "$1" = 6 ]; then
    base=ip6tables
  fi
  if command -v "$base-$variant-$2" >/dev/null 2>&1; then
    printf '%s\n' "$base-$variant-$2"
  else
    printf '%s\n' "$base-$2"
  fi
}

# fw_nft_save: the firewall's own nftables tables (fw_nft_tables), as
# `nft list table` prints them, those that exist, in fw_nft_tables order;
# nothing when none does. One `nft list ruleset` (one process: cheaper than
# `nft list tables` and then a `list table` each), of which only the own
# tables are kept (a table block starts at `table FAMILY NAME {` and ends at
# the first line that is `}`); apply() saves the same way (nftables.rs). If
# the listing fails, `nft list tables` and `nft list table` of each.
# Nothing else of the host's nftables ruleset is saved or written.
fw_nft_save() {
  local tables t
  local -a own
  IFS=, read -r -a own <<<"$fw_nft_tables"
  if tables=$(timeout "$fw_tool_timeout" nft list ruleset); then
    for t in "${own[@]}"; do
      printf '%s\n' "$tables" | awk -v start="table $t {" '
        $0 == start { keep = 1 }
        keep { print }
        keep && $0 == "}" { exit }'
    done
    return 0
  fi
  tables=$(timeout "$fw_tool_timeout" nft list tables) || return 1
  for t in "${own[@]}"; do
    if printf '%s\n' "$tables" | grep -qxF "table $t"; then
      # shellcheck disable=SC2086 # "inet firewall": family and name
      timeout "$fw_tool_timeout" nft list table $t || return 1
    fi
  done
}

# fw_nft_restore FILE: replace the firewall's own tables by the ones saved in
# FILE (fw_nft_save output; empty: none existed), in one nft transaction:
# each table is created if missing and deleted, then FILE declares it anew.
fw_nft_restore() {
  local t
  local -a own
  IFS=, read -r -a own <<<"$fw_nft_tables"
  {
    for t in "${own[@]}"; do
      printf 'add table %s\ndelete table %s\n' "$t" "$t"
    done
    cat -- "$1"
  } | timeout "$fw_tool_timeout" nft -f -
}

# fw_drop_table FAMILY TABLE BACKEND SAVE RESTORE: remove a table the change
# created. Restoring a backup does not delete tables missing from it, so
# without this a rollback would leave e.g. an empty nat table behind.
fw_drop_table() {
  local family=ip
  if [ "$1" = 6 ]; then
    family=ip6
  fi
  if [ "$3" = iptables-nft ] && command -v nft >/dev/null 2>&1; then
    if timeout "$fw_tool_timeout" nft delete table "$family" "$2"; then
      return 0
    fi
  fi
  # Legacy tables cannot be deleted: leave the table empty, built-in chains ACCEPT.
  {
    printf '*%s\n' "$2"
    timeout "$fw_tool_timeout" "$4" -t "$2" | sed -n 's/^:\([A-Z]*\) \(ACCEPT\|DROP\) .*/:\1 ACCEPT [0:0]/p'
    printf 'COMMIT\n'
  } | timeout "$fw_tool_timeout" "$5" -w "$fw_xtables_wait"
}

# fw_ipt_own: of iptables-save text on stdin, what the firewall owns, the
# part a backup keeps (apply() has the same rule: apply/iptables.rs `own`):
# per table the built-in chains' policies, the own chains (name prefix
# $fw_chain_prefix) and their rules, and the hooks (a rule exactly
# `-A BUILTIN -j fw-CHAIN`); counters dropped. A table other than filter
# appears only when it holds an own chain or hook. Nothing of other tools.
fw_ipt_own() {
  awk -v p="$fw_chain_prefix" '
    function emit(unused) {
      if (t != "" && (t == "filter" || own)) printf "*%s\n%s%s%sCOMMIT\n", t, b, d, r
    }
    /^\*/ { t = substr($0, 2); b = ""; d = ""; r = ""; own = 0; next }
    /^COMMIT$/ { emit(0); t = ""; next }
    t == "" { next }
    /^:/ {
      name = substr($1, 2)
      if (index(name, p) == 1) { d = d ":" name " - [0:0]\n"; own = 1 }
      else if ($2 != "-") b = b ":" name " " $2 " [0:0]\n"
      next
    }
    {
      line = $0
      sub(/^\[[0-9]+:[0-9]+\] /, "", line)
      if (line !~ /^-A /) next
      n = split(line, w, " ")
      if (index(w[2], p) == 1 || (n == 4 && w[3] == "-j" && index(w[4], p) == 1)) {
        r = r line "\n"; own = 1
      }
    }
  '
}

# fw_ipt_prepare MODE FILE: the text to load for FILE (a policy's or a
# backup's iptables-save text), given the live ruleset (iptables-save) on
# stdin; apply() has the same rule (apply/iptables.rs `prepare`). Line N of
# FILE stays line N, so "line N" errors still name the policy statement.
#   own (loaded with --noflush): a hook line of FILE that the live table
#     already has becomes a comment (never a second hook); then, per live
#     table, the own chains FILE does not declare are deleted: their hooks
#     (-D), then -F and -X.
#   exclusive (loaded without --noflush, which empties every table FILE
#     names): each live table FILE does not name is added empty, its
#     built-in chains ACCEPT.
fw_ipt_prepare() {
  awk -v p="$fw_chain_prefix" -v mode="$1" '
    function hook(line, w, n) {
      n = split(line, w, " ")
      return n == 4 && w[1] == "-A" && index(w[2], p) != 1 && w[3] == "-j" && index(w[4], p) == 1
    }
    pass == 1 {
      if ($0 ~ /^\*/) {
        lt = substr($0, 2)
        if (!(lt in seen)) { seen[lt] = 1; tabs[++nt] = lt }
        next
      }
      if ($0 == "COMMIT") { lt = ""; next }
      if (lt == "") next
      if ($0 ~ /^:/) {
        name = substr($1, 2)
        if (index(name, p) == 1) owned[lt] = owned[lt] " " name
        else if ($2 != "-") builtin[lt] = builtin[lt] " " name
        next
      }
      line = $0
      sub(/^\[[0-9]+:[0-9]+\] /, "", line)
      if (hook(line)) { have[lt, line] = 1; hooks[lt, ++nh[lt]] = line }
      next
    }
    {
      if ($0 ~ /^\*/) { ft = substr($0, 2); named[ft] = 1 }
      else if ($0 == "COMMIT") ft = ""
      else if (ft != "" && $0 ~ /^:/) declared[ft, substr($1, 2)] = 1
      else if (mode == "own" && ft != "" && hook($0) && ((ft, $0) in have)) {
        print "# hook present: " $0
        next
      }
      print
    }
    END {
      for (i = 1; i <= nt; i++) {
        t = tabs[i]
        if (mode == "exclusive") {
          if (t in named) continue
          printf "*%s\n", t
          n = split(builtin[t], c, " ")
          for (j = 1; j <= n; j++) printf ":%s ACCEPT [0:0]\n", c[j]
          print "COMMIT"
          continue
        }
        n = split(owned[t], c, " ")
        ns = 0
        for (j = 1; j <= n; j++) if (!((t, c[j]) in declared)) stale[++ns] = c[j]
        if (ns == 0) continue
        printf "*%s\n", t
        for (k = 1; k <= nh[t]; k++) {
          split(hooks[t, k], w, " ")
          for (j = 1; j <= ns; j++) if (w[4] == stale[j]) { line = hooks[t, k]; sub(/^-A /, "-D ", line); print line }
        }
        for (j = 1; j <= ns; j++) printf "-F %s\n", stale[j]
        for (j = 1; j <= ns; j++) printf "-X %s\n", stale[j]
        print "COMMIT"
      }
    }
  ' pass=1 - pass=2 "$2"
}

# fw_restore DIR: put back everything saved in DIR (rules of both families,
# counters included, and ip_forward). Tries every step even if one fails. A
# family whose restore failed but whose rules already equal the backup
# (compared without counters: e.g. the failed change never reached it) is
# unchanged, not a failure. Every tool is bounded (timeout, -w).
# DIR/prev, when present, is the backup of a pending failsafe this apply took
# over (the last confirmed rules): it is restored instead.
fw_restore() {
  local dir=$1 src=$1 backend fam save restore now table want have failed=0 famfail strip
  strip='/^#/d; s/^\[[0-9]*:[0-9]*\] //; s/ \[[0-9]*:[0-9]*\]$/ [0:0]/'
  if [ -d "$dir/prev" ]; then
    src=$dir/prev
  fi
  backend=$(cat "$dir/backend") || return 1
  if [ "$backend" = nftables ] && [ -e "$src/nft.rules" ] && [ -e "$src/exclusive" ]; then
    # `exclusive;` replaced the whole ruleset: all of it comes back, unless
    # it is still as saved (the failed transaction changed nothing: reloading
    # a listing with other tools' iptables-nft rules could change them).
    if now=$(timeout "$fw_tool_timeout" nft list ruleset) && [ "$now" = "$(cat -- "$src/nft.rules")" ]; then
      :
    else
      { printf 'flush ruleset\n'; cat -- "$src/nft.rules"; } | timeout "$fw_tool_timeout" nft -f - || failed=1
    fi
  elif [ "$backend" = nftables ] && [ -e "$src/nft.rules" ]; then
    # Tables that equal the backup already (a load that failed changed
    # nothing: one transaction) stay as they are: recreating them would move
    # them behind other tables' chains of the same hook and priority.
    if now=$(fw_nft_save) && [ "$now" = "$(cat "$src/nft.rules")" ]; then
      :
    elif ! fw_nft_restore "$src/nft.rules"; then
      if now=$(fw_nft_save) && [ "$now" = "$(cat "$src/nft.rules")" ]; then
        fw_log "$dir" "nftables: the restore failed, but the tables equal the backup: unchanged"
        printf 'firewall: nftables: the restore failed, but the tables already equal the saved ones: unchanged.\n' >&2
      else
        failed=1
      fi
    fi
  fi
  for fam in 4 6; do
    if [ "$backend" = nftables ]; then
      break
    fi
    if [ ! -e "$src/v$fam.rules" ]; then
      continue
    fi
    famfail=0
    save=$(fw_tool "$fam" save "$backend")
    restore=$(fw_tool "$fam" restore "$backend")
    if [ ! -e "$src/exclusive" ]; then
      # Only what the firewall owned (fw_ipt_own): other tools' rules, also
      # those added since the backup (a fail2ban ban), stay as they are. A
      # family whose own part equals the backup is not reloaded.
      if now=$(timeout "$fw_tool_timeout" "$save"); then
        if [ "$(printf '%s\n' "$now" | fw_ipt_own)" != "$(cat -- "$src/v$fam.rules")" ]; then
          printf '%s\n' "$now" | fw_ipt_prepare own "$src/v$fam.rules" |
            timeout "$fw_tool_timeout" "$restore" -w "$fw_xtables_wait" --noflush || famfail=1
        fi
      else
        famfail=1
      fi
      # A table the change created (not in v$fam.tables) that holds nothing
      # now (no rule, no user chain: nobody else started using it meanwhile)
      # goes again, as before the change.
      if [ -e "$src/v$fam.tables" ] && now=$(timeout "$fw_tool_timeout" "$save"); then
        for table in $(printf '%s\n' "$now" | sed -n 's/^\*//p'); do
          if ! grep -qxF "$table" "$src/v$fam.tables" &&
            ! printf '%s\n' "$now" | awk -v t="$table" '/^\*/ { on = ($0 == "*" t) } on && (/^-A / || /^:[^ ]+ - /) { used = 1 } END { exit !used }'; then
            fw_drop_table "$fam" "$table" "$backend" "$save" "$restore" || famfail=1
          fi
        done
      fi
      if [ "$famfail" = 1 ]; then
        if now=$(timeout "$fw_tool_timeout" "$save") &&
          [ "$(printf '%s\n' "$now" | fw_ipt_own)" = "$(cat -- "$src/v$fam.rules")" ]; then
          fw_log "$dir" "IPv$fam: a restore step failed, but the firewall's rules equal the backup: unchanged"
          printf 'firewall: IPv%s: a restore step failed, but the rules already equal the saved ones: unchanged.\n' "$fam" >&2
        else
          failed=1
        fi
      fi
      continue
    fi
    if now=$(timeout "$fw_tool_timeout" "$save"); then
      for table in $(printf '%s\n' "$now" | sed -n 's/^\*//p'); do
        if ! grep -qxF "*$table" "$src/v$fam.rules"; then
          fw_drop_table "$fam" "$table" "$backend" "$save" "$restore" || famfail=1
        fi
      done
    else
      famfail=1
    fi
    timeout "$fw_tool_timeout" "$restore" -w "$fw_xtables_wait" -c <"$src/v$fam.rules" || famfail=1
    if [ "$famfail" = 1 ]; then
      if now=$(timeout "$fw_tool_timeout" "$save") &&
        [ "$(printf '%s\n' "$now" | sed -e "$strip")" = "$(sed -e "$strip" "$src/v$fam.rules")" ]; then
        fw_log "$dir" "IPv$fam: a restore step failed, but the rules equal the backup: unchanged"
        printf 'firewall: IPv%s: a restore step failed, but the rules already equal the saved ones: unchanged.\n' "$fam" >&2
      else
        failed=1
      fi
    fi
  done
  if [ -e "$src/ip_forward" ]; then
    want=$(cat "$src/ip_forward")
    have=$(cat /proc/sys/net/ipv4/ip_forward)
    if [ "$want" != "$have" ]; then
      printf '%s\n' "$want" >/proc/sys/net/ipv4/ip_forward || failed=1
    fi
  fi
  return "$failed"
}

# fw_rollback DIR: undo a change that failed or was refused (the caller holds
# the lock). Claims the backup first (renames `armed`); a backup that is no
# longer pending (confirmed, or taken over by a later apply) is left alone.
fw_rollback() {
  if ! mv "$1/armed" "$1/reverting" 2>/dev/null; then
    printf 'firewall: the backup in %s is no longer pending (confirmed, or taken over by a later apply): nothing restored\n' "$1" >&2
    return 0
  fi
  if fw_restore "$1"; then
    fw_log "$1" "previous rules restored"
  else
    fw_log "$1" "restoring the previous rules FAILED; the backup is in $1"
    return 1
  fi
}

# fw_confirm DIR: keep the new rules; the watchdog sees it and exits. The
# backup is no longer needed: it is removed.
fw_confirm() {
  if mv "$1/armed" "$1/confirmed" 2>/dev/null; then
    fw_log "$1" "new rules confirmed"
    rm -rf -- "$1"
    printf 'firewall: confirmed, the new rules stay.\n'
  else
    printf 'firewall: too late: this failsafe is no longer pending (its deadline passed and the previous rules were restored, or a later apply took it over).\n' >&2
    return 1
  fi
}

# fw_takeover DIR: the caller holds the lock and has saved the current rules
# into DIR. If another apply's failsafe is still pending (PREFIX.pending names
# a backup whose `armed` exists and whose watchdog runs), claim it: its backup (the last rules someone
# confirmed) becomes DIR/prev, which any rollback or revert of DIR restores,
# and its watchdog exits without reverting; DIR becomes the pending one.
# Prints "took over OLD" when it did (apply() decides from DIR/prev instead:
# it runs this with the lock file as stdout).
# Returns 3 if the pending failsafe uses another backend.
fw_takeover() {
  local dir=$1 prefix old src f
  prefix=$(cat "$dir/state") || return 1
  old=$(cat "$prefix.pending" 2>/dev/null) || return 0
  if [ -z "$old" ] || [ "$old" = "$dir" ] || [ ! -e "$old/armed" ]; then
    return 0
  fi
  # A watchdog that was killed (how an administrator cancels a failsafe) left
  # nothing pending: its rules stay, and the rules saved now are the base.
  if [ -e "$old/watchdog.pid" ] && ! fw_alive "$(cat "$old/watchdog.pid" 2>/dev/null)"; then
    return 0
  fi
  if [ "$(cat "$old/backend" 2>/dev/null)" != "$(cat "$dir/backend")" ]; then
    printf 'firewall: a failsafe of another backend is pending (%s); confirm it or let it expire first\n' "$old" >&2
    return 3
  fi
  src=$old
  if [ -d "$old/prev" ]; then
    src=$old/prev
  fi
  rm -rf -- "$dir/prev.tmp"
  mkdir -m 0700 "$dir/prev.tmp" || return 1
  for f in v4.rules v6.rules v4.tables v6.tables nft.rules ip_forward exclusive; do
    if [ -e "$src/$f" ] && ! cp -- "$src/$f" "$dir/prev.tmp/$f"; then
      rm -rf -- "$dir/prev.tmp"
      return 1
    fi
  done
  # DIR/prev appears complete or not at all; from here a revert of DIR
  # restores the old backup, which is what the old watchdog would restore too.
  mv -T -- "$dir/prev.tmp" "$dir/prev" || return 1
  if ! mv -- "$old/armed" "$old/superseded" 2>/dev/null; then
    # Confirmed a moment ago: the rules just saved are the confirmed ones.
    mv -T -- "$dir/prev" "$dir/prev.discard" && rm -rf -- "$dir/prev.discard"
    return 0
  fi
  printf 'superseded %s\n' "$old" >"$prefix.last" 2>/dev/null || true
  # DIR is the pending one now, before the lock is released: an apply that
  # comes next (e.g. after the caller died right here) takes DIR over in turn
  # instead of being undone by DIR's watchdog.
  fw_pending_set "$prefix" "$dir" || true
  fw_log "$dir" "took over the pending failsafe of $old (its backup, the last confirmed rules, is restored if this apply is not kept)"
  printf 'took over %s\n' "$old"
}

# fw_watchdog_done DIR: the watchdog's end when it did not revert: a backup
# that was confirmed or taken over is no longer needed; one being rolled back
# belongs to whoever rolls back.
fw_watchdog_done() {
  if [ -e "$1/confirmed" ] || [ -e "$1/superseded" ]; then
    rm -rf -- "$1"
  else
    rm -f -- "$1/watchdog.pid" 2>/dev/null
  fi
  return 0
}

# fw_watchdog DIR SECONDS [PID]: reverts DIR unless disarmed. Runs detached
# (setsid), so it outlives the applying process PID, its terminal and a
# SIGKILL of either. It reverts at once when PID dies while DIR/loading exists
# (an interrupted load: the old rules, never a mixture), and at the deadline
# when SECONDS > 0 (the failsafe). SECONDS = 0: no failsafe; the applier
# disarms it once the new rules are verified. Before reverting it takes the
# applier lock (a dead applier's lock is released by the kernel once its last
# child exits); an apply holding the lock may take this backup over instead.
fw_watchdog() {
  local dir=$1 secs=$2 pid=${3:-0} deadline prefix why='' ok=0
  trap '' HUP INT
  printf '%s\n' "$$" >"$dir/watchdog.pid" 2>/dev/null
  prefix=$(cat "$dir/state" 2>/dev/null) || prefix=
  deadline=$(($(fw_now_us) + secs * 1000000))
  while [ -e "$dir/armed" ]; do
    if [ "$pid" != 0 ] && ! fw_alive "$pid"; then
      # Dead, so `loading` can no longer change: it tells whether the load finished.
      if [ -e "$dir/loading" ]; then
        why="the applying process $pid died before the new rules were verified"
        break
      fi
      if [ "$secs" = 0 ]; then
        # Loaded and verified, no failsafe: the applier died before disarming.
        # (A stale PREFIX.pending is harmless: it is live only while `armed` exists.)
        mv "$dir/armed" "$dir/confirmed" 2>/dev/null || true
        break
      fi
      pid=0
    fi
    if [ "$secs" != 0 ] && [ ! -e "$dir/loading" ] && [ "$(fw_now_us)" -ge "$deadline" ]; then
      why="not confirmed within $secs s"
      break
    fi
    sleep 0.1
  done
  if [ -z "$why" ]; then
    fw_watchdog_done "$dir"
    return 0
  fi
  if [ -n "$prefix" ]; then
    # Wait as long as it takes: the holder is an apply (which may take this
    # backup over) or the last child of a dead one, both bounded.
    while true; do
      fw_lock "$prefix" 1
      case $? in
      0) break ;;
      2)
        prefix=
        break
        ;;
      esac
      if [ ! -e "$dir/armed" ]; then
        fw_watchdog_done "$dir"
        return 0
      fi
    done
  fi
  if mv "$dir/armed" "$dir/reverting" 2>/dev/null; then
    if fw_restore "$dir"; then
      fw_log "$dir" "$why: previous rules restored"
      ok=1
    else
      fw_log "$dir" "$why: restoring the previous rules FAILED; the backup is in $dir"
    fi
    if [ "$ok" = 1 ]; then
      why=reverted
    else
      why=revert-failed
      # Kept for a manual `rollback.sh restore DIR`; the marker says why.
      : >"$dir/revert-failed"
      rm -f -- "$dir/watchdog.pid"
    fi
    if [ -n "$prefix" ]; then
      fw_pending_clear "$prefix" "$dir"
      printf '%s %s\n' "$why" "$dir" >"$prefix.last" 2>/dev/null || true
    fi
    if [ "$ok" = 1 ]; then
      rm -rf -- "$dir"
    fi
  else
    fw_watchdog_done "$dir"
  fi
  if [ -n "$prefix" ]; then
    fw_unlock
  fi
}

# fw_rules_summary TABLES: of iptables-save text on stdin, for the tables
# named in TABLES (space-separated), one line per chain (its policy) and per
# rule (its chain, position and comment, which names the policy statement).
# Two rulesets with equal summaries have the same chains, policies and rules
# in the same order (the comparison apply() makes).
fw_rules_summary() {
  local line table='' chain rest comment
  local -A count=()
  while IFS= read -r line; do
    case $line in
    \**)
      table=${line#\*}
      case " $1 " in
      *" $table "*) ;;
      *) table= ;;
      esac
      ;;
    :*)
      if [ -n "$table" ]; then
        rest=${line#:}
        chain=${rest%% *}
        rest=${rest#* }
        printf '%s %s policy %s\n' "$table" "$chain" "${rest%% *}"
      fi
      ;;
    '-A '* | '['*'] -A '*)
      if [ -n "$table" ]; then
        rest=${line#*-A }
        chain=${rest%% *}
        comment=
        case $line in
        *'--comment '*)
          comment=${line#*--comment }
          if [ "${comment:0:1}" = '"' ]; then
            comment=${comment#\"}
            comment=${comment%%\"*}
          else
            comment=${comment%% *}
          fi
          ;;
        esac
        count[$table/$chain]=$((${count[$table/$chain]:-0} + 1))
        printf '%s %s rule %06d %s\n' "$table" "$chain" "${count[$table/$chain]}" "$comment"
      fi
      ;;
    esac
  done
}

# fw_verify SAVE FILE: whether what the firewall owns (fw_ipt_own) of the
# rules SAVE (iptables-save or ip6tables-save) reads back matches the policy
# FILE: the same tables, own chains, policies, rules and exactly one hook
# each. Other tools' chains and rules are not looked at.
fw_verify() {
  local tables want have
  tables=$({ sed -n 's/^\*//p' "$2"; timeout "$fw_tool_timeout" "$1" | fw_ipt_own | sed -n 's/^\*//p'; } | LC_ALL=C sort -u | tr '\n' ' ')
  want=$(fw_rules_summary "$tables" <"$2" | LC_ALL=C sort)
  have=$(timeout "$fw_tool_timeout" "$1" | fw_ipt_own | fw_rules_summary "$tables" | LC_ALL=C sort) || return 1
  if [ "$want" != "$have" ]; then
    printf 'firewall: the rules read back with %s differ from the ones loaded:\n' "$1" >&2
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$have") | head -n 6 >&2 || true
    return 1
  fi
}

# fw_nft_summary: of nftables text on stdin (the file `nft -f` loads, or
# `nft list table` output: the printer's layout, one statement a line), one
# line per table, per chain, per base chain policy and per rule (its table,
# chain, position and comment, which names the policy statement). Sets and
# their elements are skipped; `table X {}` and `delete table X` (the file's
# replace idiom) declare nothing. Two texts with equal summaries have the same
# tables, chains, policies and rules in the same order.
fw_nft_summary() {
  local line table='' chain='' block='' n=0
  while read -r line; do
    case $line in
    '' | '#'*) ;;
    '}')
      if [ -n "$block" ]; then
        block=
      elif [ -n "$chain" ]; then
        chain=
      else
        table=
      fi
      ;;
    *)
      if [ -n "$block" ]; then
        continue
      elif [ -z "$table" ]; then
        if [[ $line =~ ^table\ ([a-z0-9]+\ [^ ]+)\ \{$ ]]; then
          table=${BASH_REMATCH[1]}
          printf '%s table\n' "$table"
        fi
      elif [ -z "$chain" ]; then
        if [[ $line =~ ^chain\ ([^ ]+)\ \{$ ]]; then
          chain=${BASH_REMATCH[1]}
          n=0
          printf '%s %s chain\n' "$table" "$chain"
        elif [[ $line == *'{' ]]; then
          block=$line
        fi
      elif [[ $line =~ ^type\ .*\ policy\ ([a-z]+)\;$ ]]; then
        printf '%s %s policy %s\n' "$table" "$chain" "${BASH_REMATCH[1]}"
      else
        n=$((n + 1))
        if [[ $line =~ \ comment\ \"([^\"]*)\"$ ]]; then
          printf '%s %s rule %06d %s\n' "$table" "$chain" "$n" "${BASH_REMATCH[1]}"
        else
          printf '%s %s rule %06d\n' "$table" "$chain" "$n"
        fi
      fi
      ;;
    esac
  done
}

# fw_nft_verify FILE: whether the firewall's own tables, read back with
# `nft list table`, hold the tables, chains, policies and rules (by their
# comments) of FILE, the nftables file just loaded.
fw_nft_verify() {
  local want have
  want=$(fw_nft_summary <"$1")
  have=$(fw_nft_save | fw_nft_summary) || return 1
  if [ "$want" != "$have" ]; then
    printf 'firewall: the nftables tables read back differ from the ones loaded:\n' >&2
    diff <(printf '%s\n' "$want") <(printf '%s\n' "$have") | head -n 6 >&2 || true
    return 1
  fi
}

# fw_held SAVE: the first line of SAVE's output (an iptables-save of one
# backend) that means "this backend holds rules": a rule, or a built-in chain
# whose policy is DROP. Nothing when it holds none or SAVE cannot run.
fw_held() {
  timeout "$fw_tool_timeout" "$1" 2>/dev/null | grep -E -m1 '^-A |^:[^ ]+ DROP' || true
}

# fw_detect_backend: the backend to apply with, when none is chosen; the one
# decision apply() (Options::backend None) and the script share. What the
# host already uses wins:
#   1. the firewall's own nftables tables exist: nftables (applied with it before);
#   2. the iptables backend of `iptables -V` (iptables-nft or iptables-legacy),
#      if it holds rules; but if the OTHER iptables backend holds rules, no
#      choice is made: they would stay in force unseen by `iptables` (mismatch);
#   3. other nftables tables than iptables-nft's own (ip/ip6 filter, nat,
#      mangle, raw, security), e.g. a distribution's /etc/nftables.conf: nftables;
#   4. nothing yet: the backend of `iptables -V` (what an administrator's
#      `iptables -L` shows), or nftables where only nft is installed.
# Prints one line, tab-separated, and returns:
#   0  NAME                                   the backend
#   3  mismatch SELECTED OTHER TOOL LINE      the other iptables backend holds rules
#   4  unknown VERSION                        `iptables -V` names no backend
#   5  missing TOOL                           neither iptables nor nft is installed
fw_detect_backend() {
  local tables='' t fam name version ipt='' other line f native=0
  local -a own
  if command -v nft >/dev/null 2>&1; then
    tables=$(timeout "$fw_tool_timeout" nft list tables 2>/dev/null) || tables=
    IFS=, read -r -a own <<<"$fw_nft_tables"
    for t in "${own[@]}"; do
      if printf '%s\n' "$tables" | grep -qxF "table $t"; then
        printf 'nftables\n'
        return 0
      fi
    done
    while read -r t fam name; do
      if [ "$t" != table ]; then
        continue
      fi
      case "$fam $name" in
      'ip filter' | 'ip nat' | 'ip mangle' | 'ip raw' | 'ip security') ;;
      'ip6 filter' | 'ip6 nat' | 'ip6 mangle' | 'ip6 raw' | 'ip6 security') ;;
      *) native=1 ;;
      esac
    done <<<"$tables"
  fi
  if command -v iptables >/dev/null 2>&1; then
    version=$(timeout 10 iptables -V 2>&1) || version=
    case $version in
    *nf_tables*) ipt=iptables-nft ;;
    *legacy*) ipt=iptables-legacy ;;
    *)
      printf 'unknown\t%s\n' "$version"
      return 4
      ;;
    esac
    other=iptables-legacy
    if [ "$ipt" = iptables-legacy ]; then
      other=iptables-nft
    fi
    for f in iptables ip6tables; do
      if command -v "$f-${other#iptables-}-save" >/dev/null 2>&1; then
        line=$(fw_held "$f-${other#iptables-}-save")
        if [ -n "$line" ]; then
          printf 'mismatch\t%s\t%s\t%s\t%s\n' "$ipt" "$other" "$f-${other#iptables-}-save" "$line"
          return 3
        fi
      fi
    done
    for fam in 4 6; do
      if [ -n "$(fw_held "$(fw_tool "$fam" save "$ipt")")" ]; then
        printf '%s\n' "$ipt"
        return 0
      fi
    done
  fi
  if [ "$native" = 1 ]; then
    printf 'nftables\n'
  elif [ -n "$ipt" ]; then
    printf '%s\n' "$ipt"
  elif [ -n "$tables" ] || command -v nft >/dev/null 2>&1; then
    printf 'nftables\n'
  else
    printf 'missing\tiptables\n'
    return 5
  fi
}

# fw_remove BACKEND: take out everything the firewall owns, nothing else
# (the caller holds the lock): nftables: its own tables, in one transaction;
# iptables: per family, its hooks and own chains (fw_ipt_prepare against a
# policy of no own chain), its built-in policies back to ACCEPT (filter). Then
# checks that nothing of it is left.
fw_remove() {
  local fam save restore t none failed=0
  local -a own
  if [ "$1" = nftables ]; then
    IFS=, read -r -a own <<<"$fw_nft_tables"
    for t in "${own[@]}"; do
      printf 'add table %s\ndelete table %s\n' "$t" "$t"
    done | timeout "$fw_tool_timeout" nft -f - || return 1
    [ -z "$(fw_nft_save)" ] || return 1
    return 0
  fi
  none=$(mktemp) || return 1
  printf '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' >"$none"
  for fam in 4 6; do
    save=$(fw_tool "$fam" save "$1")
    restore=$(fw_tool "$fam" restore "$1")
    timeout "$fw_tool_timeout" "$save" | fw_ipt_prepare own "$none" |
      timeout "$fw_tool_timeout" "$restore" -w "$fw_xtables_wait" --noflush || failed=1
    if [ "$(timeout "$fw_tool_timeout" "$save" | fw_ipt_own)" != "$(cat -- "$none")" ]; then
      failed=1
    fi
  done
  rm -f -- "$none"
  return "$failed"
}

# fw_pending_dir PREFIX: the backup directory of a failsafe still pending
# (armed, its watchdog alive); nothing when none is.
fw_pending_dir() {
  local old
  old=$(cat "$1.pending" 2>/dev/null) || return 0
  if [ -n "$old" ] && [ -e "$old/armed" ]; then
    if [ -e "$old/watchdog.pid" ] && ! fw_alive "$(cat "$old/watchdog.pid" 2>/dev/null)"; then
      return 0
    fi
    printf '%s\n' "$old"
  fi
}

# fw_main COMMAND DIR [SECONDS [PID]]
fw_main() {
  case "${1:-}" in
  detect) fw_detect_backend ;;
  remove) fw_remove "$2" ;;
  pending) fw_pending_dir "$2" ;;
  restore) fw_restore "$2" ;;
  rollback)
    # apply()'s rollback: the backup is no longer needed once restored (also
    # when apply() itself died meanwhile).
    fw_rollback "$2" && rm -rf -- "$2"
    ;;
  confirm) fw_confirm "$2" ;;
  takeover) fw_takeover "$2" ;;
  watchdog) fw_watchdog "$2" "$3" "${4:-0}" ;;
  *)
    printf 'usage: rollback.sh detect | remove BACKEND | pending PREFIX | restore|rollback|confirm|takeover|watchdog DIR [SECONDS [PID]]\n' >&2
    return 2
    ;;
  esac
}
