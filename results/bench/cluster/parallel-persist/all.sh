cd /tmp/cb/final
uptime > uptime-start.txt
flock /work/bench.lock sh -c 'for r in 1 2 3; do REV=$((r%2==0)) ./inproc.sh $r; done'
flock /work/bench.lock sh -c 'for r in 4 5 6; do REV=$((r%2==0)) ./inproc.sh $r; done'
flock /work/bench.lock sh -c 'for r in 1 2 3 4 5 6; do REV=$((r%2==0)) ./e2e.sh $r; done'
uptime > uptime-end.txt
echo done >> loads.txt
