#!/usr/bin/env bash
# A one-node slurm cluster on 127.0.0.1 for the cluster tests (Debian packages, run as root).
#
#   .ci/local_slurm.sh install        apt-get slurmctld slurmd slurm-client munge slurmdbd mariadb-server if missing
#   .ci/local_slurm.sh start DIR      write a config under DIR, start munged, mariadbd, slurmdbd, slurmctld, slurmd;
#                                     wait for the node
#   .ci/local_slurm.sh stop DIR       cancel the cluster's jobs, stop the daemons whose PIDs DIR/pids holds
#
# Accounting (slurmdbd over a private MariaDB) makes `sacct` work: submitit, behind the Hydra sweeps, asks sacct
# for the state of jobs that ended without a result and would otherwise wait forever.
# Clients then need SLURM_CONF=DIR/slurm.conf. Nothing outside DIR is touched except the packages.
set -euo pipefail

say() { echo "[local_slurm] $*" >&2; }
fail() { say "error: $*"; exit 1; }

install_packages() {
  local wanted=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server) missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  # keep the packages' install scripts from starting the system's own munge/slurm services
  local blocked=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; blocked=1; fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  [ "$blocked" = 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

# running NAME BINARY: the PID recorded for NAME is alive and runs BINARY (symlinks resolved)
running() {
  local file=$DIR/pids/$1.pid
  [ -s "$file" ] || return 1
  [ "$(readlink "/proc/$(cat "$file")/exe" 2>/dev/null)" = "$(readlink -f "$2")" ]
}

# daemon NAME BINARY ARGS...: start detached (own session, stdio to a file) and record its PID
daemon() {
  local name=$1 binary=$2
  shift
  running "$name" "$binary" && return 0
  setsid "$@" >>"$DIR/log/$name.out" 2>&1 </dev/null &
  echo $! >"$DIR/pids/$name.pid"
  sleep 0.3
  running "$name" "$binary" || fail "$name did not start; see $DIR/log/$name.out"
}

# within SECONDS COMMAND...: retry COMMAND until it succeeds
within() {
  local deadline=$((SECONDS + $1))
  shift
  until timeout 10 "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "gave up waiting for: $*"
    sleep 0.2
  done
}

start() {
  [ "$(id -u)" = 0 ] || fail "must run as root (SlurmUser=root)"
  mkdir -p "$DIR"/{state,spool,log,pids,munge}
  chmod 755 "$DIR" "$DIR/munge"
  # munged refuses keys that are not root-owned and private
  [ -s "$DIR/munge/munge.key" ] || mungekey --create --keyfile="$DIR/munge/munge.key"
  chmod 600 "$DIR/munge/munge.key"
  local node hardware memory socket=$DIR/munge/munge.socket port=${SLURM_LOCAL_PORT:-6817}
  local database_port=${SLURM_LOCAL_DB_PORT:-13306}
  node=$(hostname -s)
  hardware=$(slurmd -C | head -1)
  memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hardware")
  cat >"$DIR/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
# cred_expire is also how long a requeued job waits before it may start again (default 120 s)
AuthInfo=socket=$socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/slurmd-%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd-%n.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$((port + 2))
# slurmctld and clients reach slurmdbd through this munge socket (else they try the system's /run/munge)
AccountingStoragePass=$socket
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MailProg=/bin/true
InactiveLimit=0
KillWait=5
MinJobAge=300
Waittime=0
NodeName=$node NodeAddr=127.0.0.1 $(grep -o 'CPUs=[0-9]* Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$hardware") RealMemory=$((memory * 95 / 100))
PartitionName=debug Nodes=$node Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO DefMemPerCPU=1024
EOF
  export SLURM_CONF=$DIR/slurm.conf
  daemon munged /usr/sbin/munged --foreground --socket="$socket" --key-file="$DIR/munge/munge.key" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  within 10 bash -c "munge -n -S '$socket' | unmunge -S '$socket'"
  start_accounting
  daemon slurmctld /usr/sbin/slurmctld -D -i
  within 30 scontrol ping
  # slurmctld registers its cluster with slurmdbd; make sure sacct finds it
  sacctmgr -n -P list cluster format=cluster | grep -qx local || sacctmgr -i add cluster local >/dev/null || true
  mkdir -p "$DIR/spool/slurmd-$node"
  daemon slurmd /usr/sbin/slurmd -D
  within 30 bash -c "sinfo -h -n '$node' -o %T | grep -Eq '^(idle|mixed|allocated)'"
  say "up: $(sinfo -h -o '%P %D %T %N'); export SLURM_CONF=$DIR/slurm.conf"
}

# MariaDB on 127.0.0.1:$database_port with its data in DIR/mysql, and slurmdbd on it (called from start)
start_accounting() {
  local mysql=(mariadb --no-defaults -S "$DIR/mysql.sock" -u root)
  if [ ! -d "$DIR/mysql/mysql" ]; then
    mariadb-install-db --no-defaults --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
      >"$DIR/log/mariadb-install.log" 2>&1 || fail "mariadb-install-db failed; see $DIR/log/mariadb-install.log"
  fi
  daemon mariadbd /usr/sbin/mariadbd --no-defaults --user=root --datadir="$DIR/mysql" --socket="$DIR/mysql.sock" \
    --bind-address=127.0.0.1 --port="$database_port" --pid-file="$DIR/mariadbd.pid" \
    --log-error="$DIR/log/mariadbd.err" --innodb-buffer-pool-size=64M --skip-name-resolve
  within 30 "${mysql[@]}" -e "select 1"
  "${mysql[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$socket
DbdHost=localhost
DbdPort=$((port + 2))
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$database_port
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
EOF
  chmod 600 "$DIR/slurmdbd.conf" # slurmdbd refuses a config others can read
  daemon slurmdbd /usr/sbin/slurmdbd -D # reads slurmdbd.conf beside $SLURM_CONF
  within 60 sacctmgr -n list cluster
}

stop() {
  export SLURM_CONF=$DIR/slurm.conf
  if running slurmctld /usr/sbin/slurmctld; then
    local jobs
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u | tr '\n' ' ')
    if [ -n "${jobs// /}" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
    fi
  fi
  local name binary
  for name in slurmd slurmctld slurmdbd mariadbd munged; do
    binary=/usr/sbin/$name
    running "$name" "$binary" || continue
    kill -TERM "$(cat "$DIR/pids/$name.pid")"
    for _ in $(seq 50); do running "$name" "$binary" || break; sleep 0.2; done
    running "$name" "$binary" && kill -KILL "$(cat "$DIR/pids/$name.pid")"
    rm -f "$DIR/pids/$name.pid"
  done
  say "stopped"
}

case "${1:-}" in
  install) install_packages ;;
  start) DIR=${2:?usage: $0 start DIR}; start ;;
  stop) DIR=${2:?usage: $0 stop DIR}; stop ;;
  *) fail "usage: $0 install | start DIR | stop DIR" ;;
esac
