#!/usr/bin/env bash
# Start a single-node Slurm cluster on localhost (munged, slurmctld, slurmd), installing the
# Debian packages if they are missing. Idempotent; needs root; no systemd. Exits 0 once the
# node is idle, 1 if Slurm could not be installed or started (the reason on stderr).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

alive() { # alive PIDFILE COMM
  local pid; [ -s "$1" ] || return 1; pid=$(cat "$1")
  kill -0 "$pid" 2>/dev/null && [ "$(cat /proc/"$pid"/comm 2>/dev/null)" = "$2" ]
}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
   || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  echo "slurm: installing slurmctld slurmd slurm-client munge" >&2
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null; } \
    || { echo "slurm: the packages could not be installed" >&2; exit 1; }
fi

mkdir -p /etc/slurm
sed "s/CPUs=[0-9]*/CPUs=$(nproc)/" "$here/slurm.conf" > /etc/slurm/slurm.conf.new
mv /etc/slurm/slurm.conf.new /etc/slurm/slurm.conf
chmod 644 /etc/slurm/slurm.conf
mkdir -p /run/munge /run/slurm /var/lib/slurm/slurmctld /var/lib/slurm/slurmd \
  /var/log/slurm /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chown slurm:slurm /run/slurm /var/lib/slurm/slurmctld /var/log/slurm
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key

# No systemd here: the package scripts start nothing, so the daemons are started directly.
alive /run/munge/munged.pid munged || runuser -u munge -- /usr/sbin/munged
for _ in $(seq 50); do munge -n </dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null || { echo "slurm: munge does not work" >&2; exit 1; }
alive /run/slurm/slurmctld.pid slurmctld || /usr/sbin/slurmctld
alive /run/slurm/slurmd.pid slurmd || /usr/sbin/slurmd -N localhost

for _ in $(seq 150); do
  case "$(sinfo -h -n localhost -o '%T' 2>/dev/null || true)" in
    idle*|mixed*|allocated*) echo "slurm: node localhost ready" >&2; exit 0 ;;
    down*|drain*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
echo "slurm: the node did not become ready; see /var/log/slurm/" >&2
exit 1
