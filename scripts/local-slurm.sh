#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for marginflow's tests and for trying `sweep submit`.
#
#   scripts/local-slurm.sh start    install slurm-wlm and munge if missing (apt-get; needs root),
#                                   write /etc/slurm/slurm.conf from scripts/slurm/, start munged,
#                                   slurmctld and slurmd, wait until the node is idle
#   scripts/local-slurm.sh status   the daemons, sinfo and squeue
#   scripts/local-slurm.sh stop     stop the daemons this script started
#
# Idempotent: `start` on a running cluster leaves it running. Works without systemd or cgroups
# (a container): the daemons are started directly, process tracking is by /proc.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
STATE="${MARGINFLOW_SLURM_STATE:-/var/lib/marginflow-slurm}"
CONF=/etc/slurm/slurm.conf

log() { echo "local-slurm: $*" >&2; }

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install() {
    local missing=()
    command -v slurmctld >/dev/null 2>&1 || missing+=(slurm-wlm)
    command -v munged >/dev/null 2>&1 || missing+=(munge)
    if [ ${#missing[@]} -gt 0 ]; then
        [ "$(id -u)" = 0 ] || { log "need root to install ${missing[*]}"; exit 2; }
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

configure() {
    mkdir -p "$STATE/slurmctld" "$STATE/slurmd" /etc/slurm
    local cpus mem host
    cpus="$(nproc)"
    # Leave headroom: a node reporting less memory than configured is drained.
    mem="$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
    host="$(hostname -s)"
    local new
    new="$(sed -e "s|@HOST@|$host|g" -e "s|@STATE@|$STATE|g" -e "s|@CPUS@|$cpus|g" -e "s|@MEM@|$mem|g" \
        "$here/slurm/slurm.conf.in")"
    if [ -f "$CONF" ] && [ "$(cat "$CONF")" = "$new" ]; then
        return
    fi
    if [ -f "$CONF" ] && ! grep -q "scripts/local-slurm.sh" "$CONF"; then
        cp "$CONF" "$CONF.before-marginflow"
        log "kept the previous $CONF as $CONF.before-marginflow"
    fi
    printf '%s\n' "$new" >"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key 2>/dev/null || true
    chmod 0400 /etc/munge/munge.key
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- /usr/sbin/munged
    else
        /usr/sbin/munged --force
    fi
    for _ in $(seq 50); do
        munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && return
        sleep 0.1
    done
    log "munged did not start"
    exit 1
}

start() {
    install
    configure
    start_munge
    if ! pid_alive "$STATE/slurmctld.pid"; then
        log "starting slurmctld"
        /usr/sbin/slurmctld
    fi
    if ! pid_alive "$STATE/slurmd.pid"; then
        log "starting slurmd"
        /usr/sbin/slurmd -N localhost
    fi
    for _ in $(seq 60); do
        local st
        st="$(sinfo -h -N -n localhost -o '%t' 2>/dev/null || true)"
        case "$st" in
        idle* | mix* | alloc*) log "node localhost is $st"; return ;;
        drain* | down*)
            scontrol update nodename=localhost state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 1
    done
    log "the node did not become idle; see $STATE/slurmctld.log and $STATE/slurmd.log"
    sinfo -N -l >&2 || true
    exit 1
}

stop() {
    for d in slurmd slurmctld; do
        if pid_alive "$STATE/$d.pid"; then
            log "stopping $d"
            kill "$(cat "$STATE/$d.pid")"
        fi
    done
}

status() {
    for d in slurmctld slurmd; do
        if pid_alive "$STATE/$d.pid"; then echo "$d: running (pid $(cat "$STATE/$d.pid"))"; else echo "$d: stopped"; fi
    done
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then echo "munged: running"; else echo "munged: stopped"; fi
    sinfo 2>/dev/null || true
    squeue 2>/dev/null || true
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
