#!/bin/sh
# slurm-cluster.sh start|stop|status DIR
#
# A private single-node Slurm cluster under DIR, for the slurm driver's tests and for trying
# the driver by hand: its own munged (own key and socket, so the machine's munge is neither
# needed nor disturbed), slurmctld and slurmd, with every file under DIR. Needs root and the
# Debian packages slurm-wlm and munge; works without systemd.
#
#   start   writes DIR/slurm.conf, starts the three daemons, waits (bounded) until the
#           controller answers and the node is idle, then prints `export SLURM_CONF=...`.
#   stop    cancels the cluster's jobs, stops the daemons by their pid files, kills any job
#           process left over, and leaves nothing running. Safe to repeat.
#   status  says what runs; exit status 0 only when the cluster is up.
#
# Environment: SL_SLURMCTLD_PORT (default 16817) and SL_SLURMD_PORT (default 16818), so that
# concurrent clusters do not clash; SL_SLURM_WAIT, seconds to wait for the node (default 60).
set -eu

usage() { echo "usage: $0 start|stop|status DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
dir=$2
CTLD_PORT=${SL_SLURMCTLD_PORT:-16817}
SLURMD_PORT=${SL_SLURMD_PORT:-16818}
WAIT=${SL_SLURM_WAIT:-60}

die() { echo "slurm-cluster: $*" >&2; exit 1; }
log() { echo "slurm-cluster: $*" >&2; }

# pid_alive FILE: the pid in FILE is a live process.
pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pids FILE...: SIGTERM to each live pid at once, up to 10 s for all, then SIGKILL.
stop_pids() {
    pids=""
    for f in "$@"; do
        if pid_alive "$f"; then pids="$pids $(cat "$f")"; kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
    done
    i=0
    for pid in $pids; do
        while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid ignored SIGTERM for 10 s, sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    rm -f "$@"
}

start_munge() {
    m=$dir/munge
    mkdir -p "$m"
    # munged insists: the socket's directory readable by all, the key private to munge.
    chmod 755 "$dir" "$m"
    [ -f "$m/munge.key" ] || dd if=/dev/urandom bs=1 count=1024 of="$m/munge.key" 2>/dev/null
    chown -R munge:munge "$m"
    chmod 400 "$m/munge.key"
    pid_alive "$m/munged.pid" && return 0
    su -s /bin/sh munge -c "/usr/sbin/munged --socket=$m/munge.socket --key-file=$m/munge.key \
        --pid-file=$m/munged.pid --log-file=$m/munged.log --seed-file=$m/munged.seed" \
        || die "munged did not start, see $m/munged.log"
    i=0
    until munge -S "$m/munge.socket" -n 2>/dev/null | unmunge -S "$m/munge.socket" >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -lt 50 ] || die "munged does not answer on $m/munge.socket, see $m/munged.log"
        sleep 0.1
    done
}

write_conf() {
    host=$(hostname -s)
    cpus=$(nproc)
    # 80% of the memory available now: a RealMemory above what slurmd finds drains the node.
    mem=$(free -m | awk '/^Mem:/ { print int($7 * 0.8) }')
    mkdir -p "$dir/state" "$dir/spool"
    cat > "$dir/slurm.conf" <<EOF
# Private single-node cluster written by scripts/slurm-cluster.sh.
ClusterName=sluice
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=main Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# Bounded wait until the controller answers and the node is idle.
wait_ready() {
    deadline=$(($(date +%s) + WAIT))
    while [ "$(date +%s)" -lt "$deadline" ]; do
        if scontrol ping 2>/dev/null | grep -q "is UP" &&
            [ "$(sinfo -h -o %t 2>/dev/null)" = "idle" ]; then
            return 0
        fi
        sleep 0.3
    done
    log "the node did not become idle within $WAIT s; last lines of the logs:"
    tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 2>/dev/null || true
    sinfo -h -o "%t %E" >&2 2>/dev/null || true
    exit 1
}

do_start() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (slurmd starts jobs as their users)"
    for c in munged munge unmunge slurmctld slurmd sinfo scontrol squeue scancel; do
        command -v "$c" >/dev/null || die "$c not found: install the Debian packages slurm-wlm and munge"
    done
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if pid_alive "$dir/slurmctld.pid" || pid_alive "$dir/slurmd.pid"; then
        die "a cluster already runs in $dir (stop it first)"
    fi
    # Whatever fails from here on, nothing half-started stays behind.
    trap do_stop EXIT
    start_munge
    write_conf
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -f "$SLURM_CONF" || die "slurmctld did not start, see $dir/slurmctld.log"
    slurmd -f "$SLURM_CONF" || { do_stop; die "slurmd did not start, see $dir/slurmd.log"; }
    wait_ready
    trap - EXIT
    echo "export SLURM_CONF=$SLURM_CONF"
}

# Job processes and step daemons left behind (slurmd killed before its jobs ended): they carry
# this cluster's SLURM_CONF in their environment. Never the caller itself: only processes
# that are a slurmstepd or run inside a job (SLURM_JOB_ID).
kill_leftovers() {
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        env=$(tr '\0' '\n' 2>/dev/null < "$p/environ") || continue
        echo "$env" | grep -qx "SLURM_CONF=$dir/slurm.conf" || continue
        comm=$(cat "$p/comm" 2>/dev/null || true)
        if [ "$comm" = slurmstepd ] || echo "$env" | grep -q '^SLURM_JOB_ID='; then
            log "killing leftover $comm (pid $pid)"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

do_stop() {
    [ -d "$dir" ] || return 0
    dir=$(cd "$dir" && pwd)
    export SLURM_CONF="$dir/slurm.conf"
    if pid_alive "$dir/slurmctld.pid"; then
        # Cancel first and wait (bounded) so slurmd itself ends the jobs' processes.
        jobs=$(timeout 10 squeue -h -o %i 2>/dev/null || true)
        if [ -n "$jobs" ]; then
            # shellcheck disable=SC2086
            timeout 10 scancel $jobs 2>/dev/null || true
            i=0
            while [ -n "$(timeout 10 squeue -h -o %i 2>/dev/null || true)" ] && [ $i -lt 50 ]; do
                sleep 0.2; i=$((i + 1))
            done
        fi
    fi
    stop_pids "$dir/slurmd.pid" "$dir/slurmctld.pid"
    kill_leftovers
    stop_pids "$dir/munge/munged.pid"
}

do_status() {
    dir=$(cd "$dir" 2>/dev/null && pwd) || { echo "no cluster in $dir"; exit 1; }
    export SLURM_CONF="$dir/slurm.conf"
    up=0
    for d in munge/munged slurmctld slurmd; do
        if pid_alive "$dir/$d.pid"; then echo "${d#munge/}: running (pid $(cat "$dir/$d.pid"))"
        else echo "${d#munge/}: not running"; up=1; fi
    done
    if [ $up -eq 0 ]; then
        timeout 10 scontrol ping || up=1
        timeout 10 sinfo || up=1
    fi
    echo "export SLURM_CONF=$SLURM_CONF"
    exit $up
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
*) usage ;;
esac
