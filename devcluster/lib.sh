# Shared helpers for the devcluster scripts. Sourced, not run.
# shellcheck shell=bash

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

cache=${ROLLOUTGATE_CACHE:-$HOME/.cache/rolloutgate}
k8s_bin=$cache/k8s/$K8S_VERSION/bin
# Machine-wide, not per checkout: a cluster started from one clone must be found (and stopped)
# from another, e.g. by CI running in a fresh clone after a session.
state=${ROLLOUTGATE_STATE_DIR:-/var/lib/rolloutgate}
logs=$state/logs
pids=$state/pids

log() { echo "devcluster: $*" >&2; }
die() { echo "devcluster: error: $*" >&2; exit 1; }

# start_time PID: the process's start time in clock ticks since boot (field 22 of its stat).
start_time() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }

# Is the process recorded in pid file $1 alive (and not a zombie)? The pid file also records the
# process's start time: after a reboot or a killed session the pid may belong to another process.
pid_alive() {
    local f=$pids/$1.pid pid started
    [[ -f $f ]] || return 1
    { read -r pid; read -r started; } <"$f" || true
    [[ -n $pid && -d /proc/$pid ]] || return 1
    [[ -z ${started:-} || $(start_time "$pid") == "$started" ]] || return 1
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) != Z ]]
}

# pid_of NAME: the pid recorded for NAME.
pid_of() { head -n1 "$pids/$1.pid"; }

# wait_for NAME SECONDS CMD...: run CMD until it succeeds; on timeout name the component and show
# the end of its log.
wait_for() {
    local name=$1 secs=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if ! pid_alive "$name" && [[ -f $pids/$name.pid ]]; then
            log "$name exited; last lines of $logs/$name.log:"
            tail -n 20 "$logs/$name.log" >&2 || true
            die "$name did not start"
        fi
        if ((SECONDS >= deadline)); then
            log "$name not ready after ${secs}s; last lines of $logs/$name.log:"
            tail -n 20 "$logs/$name.log" >&2 || true
            die "$name did not become ready within ${secs}s"
        fi
        sleep 0.5
    done
}

# start NAME CMD...: start CMD in the background with its own log and pid file, unless running.
start() {
    local name=$1
    shift
    if pid_alive "$name"; then
        log "$name already running (pid $(pid_of "$name"))"
        return 0
    fi
    mkdir -p "$logs" "$pids"
    # setsid: the component must outlive the shell that started it and not get its signals.
    setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
    printf '%s\n%s\n' $! "$(start_time $!)" >"$pids/$name.pid"
    log "started $name (pid $!)"
}

# write_file PATH: write stdin to PATH only when the content differs. kube-proxy exits when its
# config file changes, so a second cluster-up must not touch an unchanged file.
write_file() {
    local path=$1 tmp
    tmp=$(mktemp "$path.XXXXXX")
    cat >"$tmp"
    if cmp -s "$tmp" "$path"; then rm -f "$tmp"; else mv "$tmp" "$path"; fi
}
