#!/bin/sh
# Start the example of deploy/multihost/t2.cfg from the control machine (deploy/README.md,
# "Several machines"): the router and the dispatcher on ctl, group "big" over gpu-a and gpu-b
# (one mpirun on gpu-a with hosts.big; Open MPI starts the ranks on gpu-b itself), group
# "small" on gpu-c. Every name and command comes from the environment, so that the same
# script runs anywhere (tests/netns_cluster.sh runs it on four network namespaces):
#   T2_CFG, T2_BIN_DIR, T2_HOSTFILE  the file, the binaries, the hostfile of "big"
#   T2_CTL, T2_GPU_A, T2_GPU_C       the machines that start things (gpu-b is in the hostfile)
#   T2_RUN                           how to run a command on a machine: $T2_RUN HOST 'CMD' (ssh)
#   T2_RSH_AGENT                     how Open MPI starts ranks on other machines (ssh)
#   T2_MPI_IF                        the private network Open MPI may use (10.0.0.0/24)
#   T2_LOG_DIR, T2_PID_DIR           where the logs and the head ranks' pid files go
# Stop: $T2_RUN gpu-a 'kill -TERM $(cat /run/t2-big.pid)' (a group: its head rank), the same
# for small and the dispatcher, the router last.
set -eu
CFG=${T2_CFG:-/srv/t2/t2.cfg}
BIN=${T2_BIN_DIR:-/usr/local/bin}
HOSTS=${T2_HOSTFILE:-/srv/t2/hosts.big}
CTL=${T2_CTL:-ctl}
GPU_A=${T2_GPU_A:-gpu-a}
GPU_C=${T2_GPU_C:-gpu-c}
RUN=${T2_RUN:-ssh}
LOG=${T2_LOG_DIR:-/var/log}
PID=${T2_PID_DIR:-/run}
# Open MPI's traffic is unauthenticated: keep it on the private network (its interface or CIDR)
MPI_IF=${T2_MPI_IF:-10.0.0.0/24}
MPI="mpirun --bind-to none --mca plm_rsh_agent ${T2_RSH_AGENT:-ssh} \
--mca btl_tcp_if_include $MPI_IF --mca oob_tcp_if_include $MPI_IF"
ranks() { "$BIN/t2-config" groups "$CFG" | awk -v g="$1" '$1 == g { print $2 }'; }
$RUN "$CTL" "nohup $BIN/t2-router \$($BIN/t2-config router-args $CFG) > $LOG/t2-router.log 2>&1 &"
$RUN "$CTL" "nohup $BIN/t2-dispatcher -c $CFG > $LOG/t2-dispatcher.log 2>&1 &"
$RUN "$GPU_A" "nohup $MPI --hostfile $HOSTS -np $(ranks big) $BIN/t2-worker -c $CFG --group big \
--pid-file $PID/t2-big.pid > $LOG/t2-big.log 2>&1 < /dev/null &"
$RUN "$GPU_C" "nohup $MPI -np $(ranks small) $BIN/t2-worker -c $CFG --group small \
--pid-file $PID/t2-small.pid > $LOG/t2-small.log 2>&1 < /dev/null &"
