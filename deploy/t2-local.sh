#!/usr/bin/env bash
# t2-local.sh - run a whole T2 deployment on this machine: the router, the dispatcher, every
# worker group of the configuration (one `mpirun -np RANKS t2-worker` each) and, when the file
# has a gateway section, t2-gateway (the OpenAI-compatible HTTP server).
#
#   deploy/t2-local.sh start  [-c CFG] [--bin DIR] [--run DIR]   start what is not running
#   deploy/t2-local.sh stop   [-c CFG] [--run DIR]                SIGTERM, wait, then SIGKILL
#   deploy/t2-local.sh status [-c CFG] [--run DIR]                what runs (exit 1 if not all)
#
# CFG defaults to deploy/t2.cfg, DIR (binaries) to build/bin, the run folder (pid files, logs)
# to ./t2-run. `start` returns once every process has registered with the router (or fails
# after T2_START_TIMEOUT seconds, 60, naming the log to read). `stop` stops the gateway, the
# dispatcher and the groups first (their jobs go back to the router's queues), the router last.
# Logs are appended to, never emptied (a line "== t2-local.sh start ..." marks each start); a
# `start` that fails stops what it started itself and leaves running what was already running.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
cfg="$here/t2.cfg"
bin="$here/../build/bin"
run="${T2_RUN_DIR:-./t2-run}"
cmd="${1:-}"
[ $# -gt 0 ] && shift
while [ $# -gt 0 ]; do
    case "$1" in
    -c | --config) cfg="$2"; shift 2 ;;
    --bin) bin="$2"; shift 2 ;;
    --run) run="$2"; shift 2 ;;
    *) echo "t2-local.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done
case "$cmd" in start | stop | status) ;; *)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
for b in t2-router t2-worker t2-dispatcher t2-config; do
    [ -x "$bin/$b" ] || { echo "t2-local.sh: $bin/$b not found (build first, or --bin DIR)" >&2; exit 1; }
done
"$bin/t2-config" check "$cfg" > /dev/null || exit 1
mkdir -p "$run"
run="$(cd "$run" && pwd)"
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2> /dev/null; }
gateway=$("$bin/t2-config" get "$cfg" gateway.enabled)
if [ "$gateway" = 1 ] && [ ! -x "$bin/t2-gateway" ]; then
    echo "t2-local.sh: $bin/t2-gateway not found (the file has a gateway section)" >&2
    exit 1
fi
groups() { "$bin/t2-config" groups "$cfg"; }

# wait until READY (a pid file the process writes once it is up) exists, or the process of
# PIDFILE died, or the timeout; LOG is named in messages
wait_ready() {
    local log="$1" ready="$2" pidfile="$3" t=0 limit=$((${T2_START_TIMEOUT:-60} * 10))
    while [ $t -lt $limit ]; do
        [ -s "$ready" ] && return 0
        alive "$pidfile" || { echo "t2-local.sh: it died: see $log" >&2; tail -5 "$log" >&2; return 1; }
        sleep 0.1
        t=$((t + 1))
    done
    echo "t2-local.sh: not ready after ${T2_START_TIMEOUT:-60} s: see $log" >&2
    return 1
}

# a line in LOG that marks where this start's output begins
mark() { echo "== t2-local.sh start $(date '+%Y-%m-%d %H:%M:%S') ==" >> "$1"; }

start() {
    local ok=0
    started=()
    if alive "$run/router.pid"; then
        echo "router: running (pid $(cat "$run/router.pid"))"
    else
        mark "$run/router.log"
        # shellcheck disable=SC2046
        "$bin/t2-router" $("$bin/t2-config" router-args "$cfg") < /dev/null >> "$run/router.log" 2>&1 &
        echo $! > "$run/router.pid"
        sleep 0.2
        alive "$run/router.pid" || { echo "t2-local.sh: the router died: see $run/router.log" >&2; tail -3 "$run/router.log" >&2; return 1; }
        started+=(router)
        echo "router: started (pid $!, log $run/router.log)"
    fi
    while read -r name ranks host; do
        if alive "$run/$name.mpirun.pid"; then
            echo "group $name: running"
            continue
        fi
        [ "$host" = - ] || echo "group $name: host $host ignored here (see deploy/hosts.example)"
        mark "$run/$name.log"
        rm -f "$run/$name.head.pid"
        # Open MPI's own traffic is unauthenticated: keep it on this machine's loopback
        mpirun --oversubscribe --bind-to none --mca btl_tcp_if_include "${T2_MPI_IF:-lo}" \
            --mca oob_tcp_if_include "${T2_MPI_IF:-lo}" -np "$ranks" "$bin/t2-worker" -c "$cfg" \
            --group "$name" --pid-file "$run/$name.head.pid" < /dev/null >> "$run/$name.log" 2>&1 &
        echo $! > "$run/$name.mpirun.pid"
        started+=("group $name")
        if wait_ready "$run/$name.log" "$run/$name.head.pid" "$run/$name.mpirun.pid"; then
            echo "group $name: started, $ranks rank(s) (log $run/$name.log)"
        else
            ok=1
            break
        fi
    done < <(groups)
    [ $ok = 0 ] || { undo_start; return 1; }
    if alive "$run/dispatcher.pid"; then
        echo "dispatcher: running"
    else
        mark "$run/dispatcher.log"
        rm -f "$run/dispatcher.ready"
        "$bin/t2-dispatcher" -c "$cfg" --pid-file "$run/dispatcher.ready" < /dev/null >> "$run/dispatcher.log" 2>&1 &
        echo $! > "$run/dispatcher.pid"
        started+=(dispatcher)
        if wait_ready "$run/dispatcher.log" "$run/dispatcher.ready" "$run/dispatcher.pid"; then
            echo "dispatcher: started (log $run/dispatcher.log)"
        else
            undo_start
            return 1
        fi
    fi
    [ "$gateway" = 1 ] || return 0
    if alive "$run/gateway.pid"; then
        echo "gateway: running"
    else
        mark "$run/gateway.log"
        rm -f "$run/gateway.ready"
        "$bin/t2-gateway" -c "$cfg" --pid-file "$run/gateway.ready" < /dev/null >> "$run/gateway.log" 2>&1 &
        echo $! > "$run/gateway.pid"
        started+=(gateway)
        if wait_ready "$run/gateway.log" "$run/gateway.ready" "$run/gateway.pid"; then
            echo "gateway: started on http://$("$bin/t2-config" get "$cfg" gateway.bind):$("$bin/t2-config" get "$cfg" gateway.port) (log $run/gateway.log)"
        else
            undo_start
            return 1
        fi
    fi
    return 0
}

# stop, in reverse order, what this `start` started (nothing that was already running)
undo_start() {
    local i what
    echo "t2-local.sh: start failed: stopping what it started" >&2
    for ((i = ${#started[@]} - 1; i >= 0; i--)); do
        what=${started[$i]}
        case "$what" in
        router) stop_one router "$run/router.pid" "$run/router.pid" ;;
        dispatcher) stop_one dispatcher "$run/dispatcher.pid" "$run/dispatcher.pid" ;;
        gateway) stop_one gateway "$run/gateway.pid" "$run/gateway.pid" ;;
        "group "*) stop_one "$what" "$run/${what#group }.head.pid" "$run/${what#group }.mpirun.pid" ;;
        esac
    done >&2
}

# SIGTERM the process in PIDFILE (or SIGPID), wait for WAITPIDFILE's process to exit
stop_one() {
    local what="$1" sigpid="$2" waitpid="$3" t=0
    alive "$waitpid" || { rm -f "$sigpid" "$waitpid"; return 0; }
    if alive "$sigpid"; then kill -TERM "$(cat "$sigpid")"; else kill -TERM "$(cat "$waitpid")"; fi
    while alive "$waitpid" && [ $t -lt 150 ]; do sleep 0.1; t=$((t + 1)); done
    if alive "$waitpid"; then
        echo "$what: still running after 15 s: SIGKILL" >&2
        kill -KILL "$(cat "$waitpid")" 2> /dev/null
    else
        echo "$what: stopped"
    fi
    rm -f "$sigpid" "$waitpid"
}

stop() {
    stop_one gateway "$run/gateway.pid" "$run/gateway.pid"
    stop_one dispatcher "$run/dispatcher.pid" "$run/dispatcher.pid"
    while read -r name _ _; do
        stop_one "group $name" "$run/$name.head.pid" "$run/$name.mpirun.pid"
    done < <(groups)
    stop_one router "$run/router.pid" "$run/router.pid"
}

status() {
    local ok=0
    local procs="router dispatcher"
    [ "$gateway" = 1 ] && procs="$procs gateway"
    for p in $procs; do
        if alive "$run/$p.pid"; then echo "$p: running (pid $(cat "$run/$p.pid"))"; else echo "$p: stopped"; ok=1; fi
    done
    while read -r name ranks _; do
        if alive "$run/$name.mpirun.pid"; then echo "group $name: running, $ranks rank(s)"
        else echo "group $name: stopped"; ok=1; fi
    done < <(groups)
    return $ok
}

"$cmd"
