#!/bin/sh
# Start the example of deploy/multihost/t2.cfg from the control machine with ssh (example:
# adapt hosts and paths). Open MPI starts the remote ranks of "big" itself (ssh too).
set -eu
CFG=/srv/t2/t2.cfg
BIN=/usr/local/bin
# Open MPI's traffic is unauthenticated: keep it on the private network (its interface or CIDR)
MPI_IF=${T2_MPI_IF:-10.0.0.0/24}
MPI="mpirun --bind-to none --mca btl_tcp_if_include $MPI_IF --mca oob_tcp_if_include $MPI_IF"
ssh ctl "nohup $BIN/t2-router \$($BIN/t2-config router-args $CFG) > /var/log/t2-router.log 2>&1 &"
ssh ctl "nohup $BIN/t2-dispatcher -c $CFG > /var/log/t2-dispatcher.log 2>&1 &"
ssh gpu-a "nohup $MPI --hostfile /srv/t2/hosts.big -np 4 $BIN/t2-worker -c $CFG --group big --pid-file /run/t2-big.pid > /var/log/t2-big.log 2>&1 &"
ssh gpu-a "nohup $MPI -np 1 $BIN/t2-worker -c $CFG --group small-a --pid-file /run/t2-small-a.pid > /var/log/t2-small-a.log 2>&1 &"
ssh gpu-b "nohup $MPI -np 1 $BIN/t2-worker -c $CFG --group small-b --pid-file /run/t2-small-b.pid > /var/log/t2-small-b.log 2>&1 &"
# stop: ssh gpu-a 'kill -TERM $(cat /run/t2-big.pid)' (the head rank), ... router last.
