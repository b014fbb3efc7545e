#!/usr/bin/env bash
# Stop the cluster start.sh started: cancel every job, then the daemons by their pid files.
set -uo pipefail
if command -v squeue >/dev/null && squeue -h >/dev/null 2>&1; then
  jobs=$(squeue -h -o %A | sort -u)
  if [ -n "$jobs" ]; then
    scancel $jobs
    for _ in $(seq 100); do [ -z "$(squeue -h -t R,CG 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
stop() { # stop PIDFILE COMM
  local pid; [ -s "$1" ] || return 0; pid=$(cat "$1")
  if kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ]; then
    kill -TERM "$pid"
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$1"
}
stop /run/slurm/slurmd.pid slurmd
stop /run/slurm/slurmctld.pid slurmctld
stop /run/munge/munged.pid munged
exit 0
