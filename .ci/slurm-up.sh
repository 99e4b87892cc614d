#!/usr/bin/env bash
# Starts a one-node Slurm cluster on this machine for the Slurm executor's tests.
#
# Installs Debian's Slurm (slurmctld, slurmd, slurm-client) and munge if missing, creates
# a munge key if there is none, writes /etc/slurm/slurm.conf for this one node (partition
# `debug`), starts munged, slurmctld and slurmd as plain daemons (no systemd needed), and
# waits until the node takes jobs and a canary job has run to COMPLETED. Then it prints
# `slurm ready`. Needs root and Debian's apt. Stop the cluster with slurm-down.sh.
#
# Idempotent: when the cluster is already up it only runs the canary again. When the
# generated config differs from the one in place (another SLURM_CPUS, say), it restarts
# the daemons through slurm-down.sh. slurmctld starts with -c: no old jobs survive a start.
# State, spool, logs and pid files live under /var/spool/slurm-ci/.
#
# Knobs (environment):
#   SLURM_CPUS=8         CPUs the node advertises, whatever the machine has, so that many
#                        tiny test jobs run at once (a job gets 1 CPU and 256 MB by
#                        default). 0 uses the machine's own layout from `slurmd -C`.
#   SLURM_UP_TIMEOUT=60  seconds allowed for the daemons and the canary (not counting the
#                        install); past it the script fails and prints the log tails.
#
# CI use: bash .ci/slurm-up.sh && trap 'bash .ci/slurm-down.sh' EXIT
set -euo pipefail

SLURM_CPUS=${SLURM_CPUS:-8}
SLURM_UP_TIMEOUT=${SLURM_UP_TIMEOUT:-60}

readonly STATE_DIR=/var/spool/slurm-ci
readonly RUN_DIR=$STATE_DIR/run
readonly LOG_DIR=$STATE_DIR/log
readonly CONF=/etc/slurm/slurm.conf
readonly MUNGE_KEY=/etc/munge/munge.key
readonly MUNGE_LOG=/var/log/munge/munged.log
readonly PACKAGES=(slurmctld slurmd slurm-client munge)
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly HERE
START_NS=$(date +%s%N)
readonly START_NS
NODE=$(hostname -s)
readonly NODE
DEADLINE=0
ADDED_POLICY=""

say() { echo "slurm-up: $*"; }

elapsed() { awk -v a="$START_NS" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }

show_logs() {
    local f
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" "$MUNGE_LOG"; do
        [[ -s $f ]] || continue
        echo "----- last lines of $f" >&2
        tail -n 15 "$f" >&2
    done
}

die() {
    echo "slurm-up: ERROR: $*" >&2
    show_logs
    exit 1
}

cleanup() {
    if [[ -n $ADDED_POLICY ]]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

# shellcheck source=slurm-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-lib.sh"

# wait_for WHAT CHECK [DAEMON]: polls CHECK until it succeeds. Fails at the deadline, or
# at once when DAEMON, started by us, has written its pid file and died.
wait_for() {
    local what=$1 check=$2 daemon=${3:-}
    until $check; do
        if [[ -n $daemon && -s $RUN_DIR/$daemon.pid ]] && ! ours "$daemon" >/dev/null; then
            die "$daemon died while waiting for $what"
        fi
        ((SECONDS <= DEADLINE)) || die "timed out after ${SLURM_UP_TIMEOUT}s waiting for $what"
        sleep 0.1
    done
}

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

install_packages() {
    local pkg missing=() log
    for pkg in "${PACKAGES[@]}"; do installed "$pkg" || missing+=("$pkg"); done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        # Without it, the packages' init scripts would start the daemons with their own config.
        ADDED_POLICY=1
        printf '#!/bin/sh\n# Temporary, from slurm-up.sh: start no services while installing.\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
    fi
    log=$(mktemp)
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } \
        >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "apt-get could not install ${missing[*]}"
    fi
    rm -f "$log"
    cleanup
    ADDED_POLICY=""
}

ensure_munge_key() {
    [[ -s $MUNGE_KEY ]] && return 0
    say "creating $MUNGE_KEY"
    [[ -d /etc/munge ]] || install -d -o munge -g munge -m 0700 /etc/munge
    (umask 077 && dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none)
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

make_dirs() {
    install -d -m 0755 "$STATE_DIR" "$STATE_DIR/slurmd"
    install -d -o slurm -g slurm -m 0755 "$STATE_DIR/slurmctld" "$LOG_DIR" "$RUN_DIR"
    install -d -o munge -g munge -m 0755 /run/munge
}

# The node's line: the machine's layout from `slurmd -C`, or SLURM_CPUS single-thread cores.
node_line() {
    local hw mem
    hw=$(slurmd -C 2>/dev/null | head -n 1)
    [[ $hw == NodeName=* ]] || die "unexpected output from slurmd -C: $hw"
    mem=$(grep -o 'RealMemory=[0-9]*' <<<"$hw") || die "no RealMemory in: $hw"
    if ((SLURM_CPUS > 0)); then
        echo "NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$SLURM_CPUS Boards=1 SocketsPerBoard=1" \
            "CoresPerSocket=$SLURM_CPUS ThreadsPerCore=1 $mem State=UNKNOWN"
    else
        echo "NodeName=$NODE NodeAddr=127.0.0.1 ${hw#NodeName=* } State=UNKNOWN"
    fi
}

generate_conf() {
    cat <<EOF
# Written by .ci/slurm-up.sh on every run: a one-node cluster for tests. Do not edit.
ClusterName=pipewright-ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# No cgroups here: track job processes by parentage, bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
# Without DefMemPerCPU, CR_Core_Memory gives each job the whole node's memory.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
# Schedule every second instead of every 3 s (and backfill every 1 s instead of 30 s).
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1
ReturnToService=2
# Keep finished jobs visible to squeue/scontrol for an hour.
MinJobAge=3600
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
EOF
    if ((SLURM_CPUS > 0)); then echo "SlurmdParameters=config_overrides"; fi
    node_line
    echo "PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP"
}

any_daemon_ours() { ours munged >/dev/null || ours slurmctld >/dev/null || ours slurmd >/dev/null; }

write_conf() {
    local new
    new=$(generate_conf)
    if [[ -f $CONF ]] && [[ $(cat "$CONF") == "$new" ]]; then return 0; fi
    if any_daemon_ours; then
        say "the config changed: restarting the daemons"
        bash "$HERE/slurm-down.sh"
    fi
    install -d -m 0755 "$(dirname "$CONF")"
    printf '%s\n' "$new" >"$CONF.tmp"
    chmod 0644 "$CONF.tmp"
    mv "$CONF.tmp" "$CONF"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munged() {
    ours munged >/dev/null && return 0
    rm -f "$RUN_DIR/munged.pid"
    if munge_works; then
        say "using the munged that is already running"
        return 0
    fi
    runuser -u munge -- munged || die "munged did not start"
    wait_for "munged to answer" munge_works
    cp /run/munge/munged.pid "$RUN_DIR/munged.pid"
}

# With a stranger on slurmctld's port, ping would hang for MessageTimeout (10 s).
ctld_up() { timeout 2 scontrol ping 2>/dev/null | grep -q 'is UP'; }

start_slurmctld() {
    ours slurmctld >/dev/null && return 0
    rm -f "$RUN_DIR/slurmctld.pid"
    slurmctld -c -i || die "slurmctld did not start"
    wait_for "slurmctld to answer" ctld_up slurmctld
}

start_slurmd() {
    ours slurmd >/dev/null && return 0
    rm -f "$RUN_DIR/slurmd.pid"
    slurmd || die "slurmd did not start"
}

# Usable: idle, or already running jobs. Not down, drained or unresponsive (`*`).
node_ready() { [[ $(timeout 5 sinfo -h -n "$NODE" -o %t 2>/dev/null) =~ ^(idle|mix|alloc)$ ]]; }

# Submits a trivial job and waits for COMPLETED: the node being idle does not mean that
# slurmctld schedules yet.
run_canary() {
    local id state=""
    id=$(sbatch --parsable -J slurm-up-canary -D / -o /dev/null -e /dev/null --wrap true) ||
        die "sbatch of the canary job failed"
    id=${id%%;*}
    while [[ $state != COMPLETED ]]; do
        case $state in
        "" | PENDING | CONFIGURING | RUNNING | COMPLETING) ;;
        *) die "canary job $id ended $state: $(scontrol -o show job "$id" 2>&1)" ;;
        esac
        ((SECONDS <= DEADLINE)) ||
            die "timed out after ${SLURM_UP_TIMEOUT}s: canary job $id is ${state:-unknown}"
        sleep 0.1
        state=$(timeout 5 squeue -h -t all -j "$id" -o %T 2>/dev/null) || state=""
    done
    CANARY=$id
}

main() {
    [[ $(id -u) == 0 ]] || die "needs root"
    [[ $SLURM_CPUS =~ ^[0-9]+$ ]] || die "SLURM_CPUS must be a number, not '$SLURM_CPUS'"
    [[ $SLURM_UP_TIMEOUT =~ ^[0-9]+$ ]] || die "SLURM_UP_TIMEOUT must be a number of seconds"
    install_packages
    DEADLINE=$((SECONDS + SLURM_UP_TIMEOUT))
    ensure_munge_key
    make_dirs
    write_conf
    start_munged
    start_slurmctld
    start_slurmd
    wait_for "node $NODE to be idle" node_ready slurmd
    run_canary
    say "node $NODE, $(sinfo -h -n "$NODE" -o %c) CPUs, partition debug; canary job $CANARY COMPLETED; $(elapsed) s"
    echo "slurm ready"
}

main "$@"
