#!/usr/bin/env bash
# Stops the one-node Slurm cluster that slurm-up.sh started.
#
# Cancels the jobs still queued or running, stops slurmd, slurmctld and munged by the pid
# files slurm-up recorded in /var/spool/slurm-ci/run, waits for them to end, and kills
# any slurmstepd of ours left behind (a job can outlive slurmd), with its processes.
# Daemons it did not start are left alone. Does nothing when nothing of ours runs.
# Needs root. No knobs.
set -euo pipefail

readonly STATE_DIR=/var/spool/slurm-ci
readonly RUN_DIR=$STATE_DIR/run
readonly LOG_DIR=$STATE_DIR/log
readonly JOB_WAIT=5 DAEMON_WAIT=15

say() { echo "slurm-down: $*"; }

# shellcheck source=slurm-lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/slurm-lib.sh"

# wait_gone SECONDS NAME PID...: waits until none of the PIDs is a live NAME.
wait_gone() {
    local limit=$(($1 * 10)) name=$2 pid left
    shift 2
    while ((limit-- > 0)); do
        left=0
        for pid in "$@"; do alive "$pid" "$name" && left=1; done
        ((left)) || return 0
        sleep 0.1
    done
    return 1
}

# Cancels every job on our cluster and waits for the running ones to end.
cancel_jobs() {
    local ids i
    ours slurmctld >/dev/null || return 0
    ids=$(squeue -h -o %F 2>/dev/null | sort -u) || return 0
    [[ -n $ids ]] || return 0
    say "cancelling jobs ${ids//$'\n'/ }"
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null || true
    for ((i = 0; i < JOB_WAIT * 10; i++)); do
        [[ -z $(squeue -h -t RUNNING,COMPLETING,CONFIGURING,SUSPENDED -o %A 2>/dev/null) ]] && return 0
        sleep 0.1
    done
    say "jobs still running after ${JOB_WAIT}s: killing their processes"
}

# stop_daemons NAME...: SIGTERM to our live daemons of those names, SIGKILL after DAEMON_WAIT.
stop_daemons() {
    local name pid names=() pids=()
    for name in "$@"; do
        if pid=$(ours "$name"); then
            names+=("$name")
            pids+=("$pid")
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    ((${#pids[@]})) || return 0
    say "stopping ${names[*]}"
    local i
    for i in "${!pids[@]}"; do
        if ! wait_gone "$DAEMON_WAIT" "${names[i]}" "${pids[i]}"; then
            say "${names[i]} (pid ${pids[i]}) ignored SIGTERM: killing it"
            kill -KILL "${pids[i]}" 2>/dev/null || true
            wait_gone 5 "${names[i]}" "${pids[i]}" || say "${names[i]} (pid ${pids[i]}) is still there"
        fi
        rm -f "$RUN_DIR/${names[i]}.pid"
    done
    STOPPED+=("${names[@]}")
}

# descendants PID: prints PID and all its descendants' pids.
descendants() {
    local -A kids=()
    local f stat ppid pid
    for f in /proc/[0-9]*/stat; do
        { read -r stat <"$f"; } 2>/dev/null || continue
        pid=${stat%% *}
        stat=${stat##*) }
        ppid=${stat#* }
        ppid=${ppid%% *}
        kids[$ppid]+="$pid "
    done
    local queue=("$1")
    while ((${#queue[@]})); do
        pid=${queue[0]}
        queue=("${queue[@]:1}")
        echo "$pid"
        # shellcheck disable=SC2206
        queue+=(${kids[$pid]:-})
    done
}

# Our slurmstepd processes: they run in our slurmd's log directory, its working directory.
our_stepds() {
    local f pid comm
    for f in /proc/[0-9]*/comm; do
        { read -r comm <"$f"; } 2>/dev/null || continue
        [[ $comm == slurmstepd ]] || continue
        pid=${f#/proc/}
        pid=${pid%/comm}
        [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$LOG_DIR" ]] || continue
        alive "$pid" slurmstepd && echo "$pid"
    done
}

kill_stray_stepds() {
    local stepds pids pid
    stepds=$(our_stepds)
    [[ -n $stepds ]] || return 0
    say "killing leftover slurmstepd ${stepds//$'\n'/ } with their processes"
    pids=$(for pid in $stepds; do descendants "$pid"; done)
    # shellcheck disable=SC2086
    kill -KILL $pids 2>/dev/null || true
    # shellcheck disable=SC2086
    wait_gone 5 slurmstepd $stepds || say "slurmstepd still there: $(our_stepds | xargs)"
    STOPPED+=(slurmstepd)
}

main() {
    [[ $(id -u) == 0 ]] || { echo "slurm-down: needs root" >&2; exit 1; }
    STOPPED=()
    cancel_jobs
    # A job that ignores SIGTERM holds slurmd's shutdown for KillWait (30 s): kill it first.
    kill_stray_stepds
    # One at a time: a stopping slurmd reports to slurmctld (waiting 10 s if it is gone),
    # and both talk through munge.
    stop_daemons slurmd
    stop_daemons slurmctld
    stop_daemons munged
    # Jobs outlive slurmd: kill whatever is left.
    kill_stray_stepds
    if ((${#STOPPED[@]})); then say "stopped"; else say "nothing of ours is running"; fi
}

main "$@"
