#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the workflow's cluster test
# (tests/test_slurm.py): Debian's slurm-wlm and munge, reachable on
# the loopback address only, their state, logs, munge key and socket in a
# private folder. The one file written outside it is /etc/slurm/slurm.conf,
# where Slurm's commands look (the Snakemake plugin's job steps drop
# SLURM_CONF, so a private path would not reach them): it is written only
# where there is none, marked as ours, and removed by `stop`; someone
# else's is never replaced.
#
#   cluster/slurm_local.sh start [STATE]   install if needed, start, wait until the node is idle
#   cluster/slurm_local.sh stop  [STATE]   stop the daemons this script started, remove its config
#
# STATE defaults to ${TMPDIR:-/tmp}/reid-slurm. Installing needs root and
# apt-get (as CI has); the daemons run as the calling user.
set -euo pipefail

CMD="${1:-}"
STATE="${2:-${TMPDIR:-/tmp}/reid-slurm}"
mkdir -p "$STATE"
STATE="$(cd "$STATE" && pwd)"
MARK="$STATE/.reid-slurm"
ETC_CONF=/etc/slurm/slurm.conf
HEADER="# made by cluster/slurm_local.sh: a one-node test cluster on 127.0.0.1"
# Ports away from Slurm's defaults (6817/6818), so a real installation on
# the same machine is not disturbed.
CTLD_PORT="${REID_SLURMCTLD_PORT:-16817}"
SLURMD_PORT="${REID_SLURMD_PORT:-16818}"
say() { echo "[slurm] $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

install() {
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null \
    && return
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    || die "slurm-wlm and munge are not installed (as root: apt-get install slurm-wlm munge)"
  say "installing slurm-wlm and munge"
  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends slurm-wlm munge \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         apt-get install -y -qq --no-install-recommends slurm-wlm munge; }; } >&2 \
    || die "apt-get could not install slurm-wlm munge"
}

# The folder is ours if it is empty or carries our mark: never reuse or
# clear someone else's.
claim() {
  if [ -n "$(ls -A "$STATE")" ] && [ ! -f "$MARK" ]; then
    die "$STATE holds files this script did not make; give another folder"
  fi
  touch "$MARK"
}

ours() { [ -f "$ETC_CONF" ] && [ "$(head -1 "$ETC_CONF")" = "$HEADER" ]; }
# the state folder of the cluster our config is for
conf_state() { sed -n 's/^# state: //p' "$ETC_CONF" | head -1; }

conf() {
  if [ -e "$ETC_CONF" ] && ! ours; then
    die "$ETC_CONF exists and is not this script's: a Slurm is configured here already"
  fi
  local other
  other=$(ours && conf_state || true)
  if [ -n "$other" ] && [ "$other" != "$STATE" ] && running "$other/slurmctld.pid"; then
    die "the test cluster of $other is running: cluster/slurm_local.sh stop $other first"
  fi
  local cpus mem user tmp
  cpus=$(nproc)
  # leave a quarter of the memory to the machine itself
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 3 / 4}' /proc/meminfo)
  user=$(id -un)
  mkdir -p "$STATE/ctld" "$STATE/slurmd" "$STATE/munge" "$(dirname "$ETC_CONF")"
  tmp="$ETC_CONF.tmp-$$"
  cat > "$tmp" <<EOF
$HEADER
# state: $STATE
ClusterName=reid-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
SlurmUser=$user
SlurmdUser=$user
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# squeue is how the Snakemake plugin follows jobs here (no slurmdbd): keep
# finished jobs visible long enough
MinJobAge=3600
ReturnToService=2
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=reid Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  mv "$tmp" "$ETC_CONF"
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  install
  claim
  conf
  if [ ! -f "$STATE/munge/munge.key" ]; then
    dd if=/dev/urandom of="$STATE/munge/munge.key" bs=1024 count=1 status=none
    chmod 600 "$STATE/munge/munge.key"
  fi
  chmod 700 "$STATE/munge"
  if ! running "$STATE/munge/munged.pid"; then
    munged --force --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
      --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
      --seed-file="$STATE/munge/munged.seed" \
      || die "munged did not start (see $STATE/munge/munged.log)"
  fi
  running "$STATE/slurmctld.pid" || slurmctld -i \
    || die "slurmctld did not start (see $STATE/slurmctld.log)"
  running "$STATE/slurmd.pid" || slurmd -N localhost \
    || die "slurmd did not start (see $STATE/slurmd.log)"
  local state=""
  for _ in $(seq 60); do
    state=$(sinfo -h -n localhost -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    case "$state" in
      down*) scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 1
  done
  [ "$state" = idle ] || die "the Slurm node is not idle after 60 s (state '$state'; see $STATE/slurmd.log)"
  say "one-node cluster up: $(sinfo -h -o '%P %D %c CPUs %m MB')"
}

stop() {
  [ -f "$MARK" ] || die "$STATE is not a cluster this script started"
  local pid f
  for f in slurmd.pid slurmctld.pid munge/munged.pid; do
    if running "$STATE/$f"; then
      pid=$(cat "$STATE/$f")
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
  done
  if ours && [ "$(conf_state)" = "$STATE" ]; then rm -f "$ETC_CONF"; fi
  say "stopped ($STATE)"
}

case "$CMD" in
  start) start ;;
  stop) stop ;;
  *) die "usage: cluster/slurm_local.sh start|stop [STATE]" ;;
esac
