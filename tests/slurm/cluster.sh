#!/usr/bin/env bash
# A real single-node SLURM cluster on this machine, for tests/test_slurm.py.
#
#   tests/slurm/cluster.sh install        apt-get install slurm-wlm + munge when missing (root)
#   tests/slurm/cluster.sh start DIR      write DIR/slurm.conf, start munged, slurmctld, slurmd
#   tests/slurm/cluster.sh stop DIR       stop exactly the daemons `start` recorded in DIR/*.pid
#   eval "$(tests/slurm/cluster.sh env DIR)"   point sbatch/squeue/scontrol at this cluster
#
# Everything lives in DIR (config, munge key and socket, state, logs, PID files); the one
# thing outside it is a link /etc/slurm/slurm.conf -> DIR/slurm.conf, made only where no
# slurm.conf exists (a site's SLURM is never touched) and removed by `stop`. The node is localhost
# (`hostname -s`) with one partition, `test`. There is no slurmdbd: accounting is off
# (AccountingStorageType=accounting_storage/none), so `sacct` has nothing to say; the
# scheduler's own record of every finished job is the job-completion log DIR/jobcomp.log
# (JobCompType=jobcomp/filetxt), and `scontrol show job` keeps finished jobs for MinJobAge.
# The Snakemake executor plugin is told to poll with `squeue` (status_command: squeue),
# which it accepts because MinJobAge is far above its 3 x 40 s threshold.
set -euo pipefail

die() { echo "cluster.sh: $*" >&2; exit 1; }
ETC_CONF=/etc/slurm/slurm.conf  # Debian's compiled-in default (SLURM_CONF overrides it)

install_slurm() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
     && command -v munged >/dev/null && command -v sbatch >/dev/null; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "SLURM is not installed and installing it needs root (apt-get)"
  command -v apt-get >/dev/null || die "SLURM is not installed and there is no apt-get here"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed: cannot reach the Debian registry"
  apt-get install -y -qq --no-install-recommends slurm-wlm munge \
    || die "apt-get install slurm-wlm munge failed"
  # Debian's packages enable systemd units; in a container nothing starts them, and `start`
  # below runs its own daemons from DIR either way.
}

write_conf() {
  local dir=$1 host cpus mem
  host=$(hostname -s)
  cpus=${SLURM_TEST_CPUS:-16}
  mem=${SLURM_TEST_MEM_MB:-262144}
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat >"$dir/slurm.conf" <<CONF
# Single-node test cluster written by tests/slurm/cluster.sh
ClusterName=defocustest
SlurmctldHost=$host
SlurmctldPort=${SLURM_TEST_CTLD_PORT:-6817}
SlurmdPort=${SLURM_TEST_SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.daemon.pid
SlurmdPidFile=$dir/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# no cgroups in a container: track processes through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
# no slurmdbd: the completion log is the scheduler's record of every job
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/jobcomp.log
# memory enforcement without cgroups: the accounting poller kills a step over its --mem
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
# finished jobs stay visible to squeue/scontrol for an hour (the plugin polls with squeue)
MinJobAge=3600
# The node advertises the configured CPUs and memory, not the machine's: the rules ask for
# their paper-scale resources (e.g. 8 CPUs, 32 GB for training) and the test must accept
# them on a 2-core CI machine. Jobs of the tiny config use a fraction of that.
SlurmdParameters=config_overrides
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=$host Default=NO MaxTime=INFINITE State=UP
CONF
}

wait_for() {  # wait_for SECONDS CMD... : retry CMD until it succeeds
  local t=$1; shift
  for _ in $(seq "$((t * 4))"); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  return 1
}

start() {
  local dir=$1
  install_slurm
  [ "$(id -u)" = 0 ] || die "starting slurmd needs root"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  for d in munged slurmctld slurmd; do
    if [ -s "$dir/$d.pid" ] && kill -0 "$(cat "$dir/$d.pid")" 2>/dev/null; then
      die "$d of $dir is already running (PID $(cat "$dir/$d.pid")); run: $0 stop $dir"
    fi
  done
  write_conf "$dir"
  export SLURM_CONF=$dir/slurm.conf
  # The plugin's job step (snakemake-executor-plugin-slurm-jobstep) clears SLURM_* variables,
  # SLURM_CONF included, before its nested `srun`: the config must be at SLURM's compiled-in
  # path. Link it there, unless a site's own config is already there.
  if [ -e "$ETC_CONF" ] || [ -L "$ETC_CONF" ]; then
    if [ "$(readlink "$ETC_CONF" || true)" != "$SLURM_CONF" ]; then
      die "$ETC_CONF already exists (a site's SLURM?); this test cluster will not replace it"
    fi
  else
    mkdir -p "$(dirname "$ETC_CONF")"
    ln -s "$SLURM_CONF" "$ETC_CONF"
  fi
  # munge: our own key and socket, so a system munged is not touched
  if [ ! -s "$dir/munge.key" ]; then
    (umask 077; dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none)
  fi
  munged --force --foreground --key-file="$dir/munge.key" --socket="$dir/munge.socket" \
    --pid-file="$dir/munged.daemon.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/munged.seed" >"$dir/log/munged.out" 2>&1 &
  echo $! >"$dir/munged.pid"
  wait_for 10 munge --socket="$dir/munge.socket" -n \
    || { stop "$dir"; die "munged did not start; see $dir/log/munged.log"; }
  slurmctld -D -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
  echo $! >"$dir/slurmctld.pid"
  wait_for 30 scontrol ping \
    || { stop "$dir"; die "slurmctld did not start; see $dir/log/slurmctld.log"; }
  slurmd -D -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
  echo $! >"$dir/slurmd.pid"
  node_idle() { sinfo -h -N -o %t | grep -qx 'idle'; }
  wait_for 60 node_idle || {
    sinfo -N -l >&2 || true
    stop "$dir"
    die "the node did not come up idle; see $dir/log/slurmd.log and slurmctld.log"
  }
  echo "cluster.sh: SLURM up in $dir (partition test, node $(hostname -s))" >&2
}

stop() {
  local dir=$1 pid
  # reverse order; only PIDs this script recorded, never a name match
  for d in slurmd slurmctld munged; do
    [ -s "$dir/$d.pid" ] || continue
    pid=$(cat "$dir/$d.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$dir/$d.pid"
  done
  # the link `start` made, and only that link
  if [ -L "$ETC_CONF" ] && [ "$(readlink "$ETC_CONF")" = "$(cd "$dir" && pwd)/slurm.conf" ]; then
    rm -f "$ETC_CONF"
  fi
}

case "${1:-}" in
  install) install_slurm ;;
  start) [ $# -eq 2 ] || die "usage: $0 start DIR"; start "$2" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  env) [ $# -eq 2 ] || die "usage: $0 env DIR"; echo "export SLURM_CONF=$(cd "$2" && pwd)/slurm.conf" ;;
  *) die "usage: $0 install | start DIR | stop DIR | env DIR" ;;
esac
