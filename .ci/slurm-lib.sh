# Shell functions shared by slurm-up.sh and slurm-down.sh; sourced, with RUN_DIR set.

# alive PID NAME: true when PID is a live process named NAME. PID 1 here reaps orphans
# only every ~2 s, and kill -0 succeeds on a zombie: a zombie (state Z) counts as dead.
alive() {
    local comm stat
    [[ $1 =~ ^[0-9]+$ ]] || return 1
    { read -r comm <"/proc/$1/comm" && read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ $comm == "$2" && ${stat%% *} != Z ]]
}

# ours NAME: prints the pid of our NAME daemon (from its pid file) when it is alive.
ours() {
    local pid
    { read -r pid <"$RUN_DIR/$1.pid"; } 2>/dev/null || return 1
    alive "$pid" "$1" && echo "$pid"
}
