#!/usr/bin/env bash
# supervise.sh PARENT_PID CLEANUP_DIR -- command args...
# Runs the command and ends it when PARENT_PID is gone, so that a test run or local-up that is killed
# outright (kill -9, a crashed runner) still leaves no etcd/apiserver/redis behind. CLEANUP_DIR ("-" for
# none) is removed once the command has exited because its parent died.
parent="$1"; cleanup="$2"; shift 2; [ "${1:-}" = "--" ] && shift
"$@" &
child=$!
on_term() { kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0; }
trap on_term TERM INT
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5 & wait $!; done
if kill -0 "$child" 2>/dev/null; then
  kill -TERM "$child" 2>/dev/null
  # Up to 15 s: most programs end at once; the node guard needs a few seconds to remove its cgroups.
  for _ in $(seq 1 50); do kill -0 "$child" 2>/dev/null || break; sleep 0.3; done
  kill -KILL "$child" 2>/dev/null
  wait "$child" 2>/dev/null
  [ "$cleanup" != "-" ] && rm -rf -- "$cleanup"
fi
wait "$child" 2>/dev/null
