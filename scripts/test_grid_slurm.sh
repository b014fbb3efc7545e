#!/usr/bin/env bash
# End to end against a real Slurm on localhost (scripts/slurm/start.sh): a tiny grid as an
# array job; one running task cancelled, then the array resubmitted (that task resumes, the
# finished ones are skipped); one task warned with SIGUSR1 as before a time limit (it stops
# after its batch and requeues itself, then resumes); the collect job's table is complete.
#   scripts/test_grid_slurm.sh [PRIXFIXE_BINARY]
# Needs a running cluster: without one it says so and counts the test as skipped, not passed.
# Every wait has a deadline.
set -uo pipefail
bin="${1:-target/release/prixfixe}"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
if ! command -v sbatch >/dev/null || ! sinfo -h -n localhost -o '%T' 2>/dev/null | grep -qE 'idle|mixed|alloc'; then
  echo "SKIPPED: no Slurm cluster on localhost (scripts/slurm/start.sh could not start one)"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
work=$(mktemp -d /tmp/prixfixe_slurm.XXXX); pass=0; fail=0
ok()  { echo "ok   - $*"; pass=$((pass+1)); }
bad() { echo "FAIL - $*"; fail=$((fail+1)); }
gone() { # gone JOBSPEC SECONDS: until no task of JOBSPEC is pending or running
  local end=$(( $(date +%s) + $2 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    [ -z "$(squeue -h -j "$1" 2>/dev/null)" ] && return 0; sleep 0.5; done; return 1; }
epochs() { # committed epochs of cell directory $1
  local n; n=$(grep -o '"epochs_done": *[0-9]*' "$1/state.json" 2>/dev/null | grep -o '[0-9]*$'); echo "${n:-0}"; }
running_with_epochs() { # running_with_epochs JOB TASK CELL N SECONDS
  local end=$(( $(date +%s) + $5 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    if squeue -h -t R -j "$1_$2" 2>/dev/null | grep -q . && [ "$(epochs "$3")" -ge "$4" ]; then return 0; fi
    sleep 0.3; done; return 1; }
t0=$(date +%s)

"$bin" simulate --out "$work/sim" --small --train 300 >/dev/null 2>&1 || { echo "FAIL - simulate"; exit 1; }
grid="$work/grid"
"$bin" grid plan --out "$grid" --train "$work/sim/train.txt" --cells ABAA,AUBB,ABUA \
  --size tiny --epochs 12 --batch-size 16 >/dev/null || { echo "FAIL - grid plan"; exit 1; }
cell0="$grid/cells/000-ABAA"; cell1="$grid/cells/001-AUBB"

# 1. the array and its collect job
out=$("$bin" grid slurm "$grid" --submit --parallel 2 --cpus 1) || bad "grid slurm --submit: $out"
job=$(echo "$out" | sed -n 's/.*array job \([0-9]*\).*/\1/p')
collect=$(echo "$out" | sed -n 's/.*collect job \([0-9]*\).*/\1/p')
[ -n "$job" ] && [ -n "$collect" ] && ok "array job $job and collect job $collect submitted" || bad "submission: $out"

# 2. cancel task 0 while it runs, after it has committed an epoch
if running_with_epochs "$job" 0 "$cell0" 1 120; then
  scancel "${job}_0"; gone "${job}_0" 30
  e=$(epochs "$cell0")
  [ "$e" -ge 1 ] && [ "$e" -lt 12 ] && ok "task 0 cancelled with $e epochs committed" || bad "task 0 after scancel: $e epochs"
else bad "task 0 never ran with a committed epoch"; fi

# 3. warn task 1 as Slurm does before a time limit: it stops after its batch and requeues
if running_with_epochs "$job" 1 "$cell1" 1 120; then
  scancel --batch --signal=USR1 "${job}_1"
  end=$(( $(date +%s) + 60 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    squeue -h -j "${job}_1" -o '%T' 2>/dev/null | grep -q PENDING && break; sleep 0.3; done
  if squeue -h -j "${job}_1" -o '%T' 2>/dev/null | grep -q PENDING; then
    ok "task 1 stopped on SIGUSR1 and was requeued"
    # Shorten the 120 s requeue delay, but not to nothing: a task restarted within the second
    # it was requeued is refused by slurmd ("Job credential revoked", seen here once).
    scontrol update JobId="${job}_1" StartTime=now+3 >/dev/null 2>&1
  else bad "task 1 was not requeued after SIGUSR1"; fi
else bad "task 1 never ran with a committed epoch"; fi

# 4. the rest of the array finishes; the collect job never runs (task 0 was cancelled)
gone "$job" 300 && ok "the array drained" || bad "the array did not drain in 300 s"
grep -q "resumed after epoch" "$grid"/logs/"${job}"_1.out && ok "requeued task 1 resumed from its committed epochs" \
  || bad "task 1 log: $(tail -3 "$grid"/logs/"${job}"_1.out 2>/dev/null)"
scancel "$collect" 2>/dev/null; gone "$collect" 30

# 5. resubmit the whole array: finished cells are skipped, task 0 resumes; collect runs
out=$("$bin" grid slurm "$grid" --submit --parallel 2 --cpus 1) || bad "resubmission: $out"
job2=$(echo "$out" | sed -n 's/.*array job \([0-9]*\).*/\1/p')
collect2=$(echo "$out" | sed -n 's/.*collect job \([0-9]*\).*/\1/p')
gone "$job2,$collect2" 300 || bad "the resubmitted array and collect did not finish in 300 s"
grep -q "resumed after epoch" "$grid"/logs/"${job2}"_0.out && ok "resubmitted task 0 resumed" \
  || bad "task 0 log: $(tail -3 "$grid"/logs/"${job2}"_0.out 2>/dev/null)"
grep -q "already finished" "$grid"/logs/"${job2}"_2.out && ok "finished task 2 was skipped" \
  || bad "task 2 log: $(tail -3 "$grid"/logs/"${job2}"_2.out 2>/dev/null)"
rows=$(grep -c ',finished,' "$grid/results.csv" 2>/dev/null || echo 0)
[ "$rows" = 3 ] && grep -q "results in" "$grid"/logs/collect_"${collect2}".out \
  && ok "collect job wrote results.csv with all 3 cells finished" || bad "results.csv: $(cat "$grid/results.csv" 2>/dev/null)"

echo "slurm grid test took $(( $(date +%s) - t0 )) s"
[ "$fail" = 0 ] && rm -rf "$work" || echo "kept $work for a look"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
