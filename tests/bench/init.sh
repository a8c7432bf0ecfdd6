#!/bin/busybox sh
# /init of the `cargo xtask bench` guest: load the test importer and the bench
# board's module, record what the figures depend on, run the benchmark, power off.
# /etc/heapgen/bench.conf holds "<our heap> <upstream heap> [<cgroup>]": with a
# cgroup path (relative to the cgroup2 root), the benchmark runs in that group,
# created with the dmem controller enabled on every level above it.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
for ko in /lib/modules/*.ko; do
	insmod "$ko" || echo "BENCH-ERROR insmod $ko failed"
done

# The kernel starts on tsc-early and moves to the refined tsc about a second
# into the boot: wait for it, so that the unit cannot change during the run.
clocksource() {
	cat /sys/devices/system/clocksource/clocksource0/current_clocksource
}
i=0
while [ "$(clocksource)" != tsc ] && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
echo "BENCH-INFO clocksource $(clocksource)"
echo "BENCH-INFO cpu-flags $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -x -E 'rep_good|erms|fsrm' | tr '\n' ' ')"
echo "BENCH-INFO cpu-model $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-)"
echo "BENCH-INFO cpus $(grep -c '^processor' /proc/cpuinfo)"
echo "BENCH-INFO kernel $(uname -r)"
echo "BENCH-INFO cmdline $(cat /proc/cmdline)"
echo "BENCH-INFO heaps $(ls /dev/dma_heap | tr '\n' ' ')"
echo "BENCH-INFO cma-pages $(cat /sys/kernel/mm/cma/reserved/available_pages 2>/dev/null)"

read -r ours upstream cgroup </etc/heapgen/bench.conf
# The benchmark's options (`--pressure`: B6 alone), if any.
args=$(cat /etc/heapgen/bench.args 2>/dev/null)
if [ -n "$cgroup" ]; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup || echo "BENCH-ERROR no cgroup2"
	dir=/sys/fs/cgroup
	for part in $(echo "$cgroup" | tr / ' '); do
		echo +dmem >"$dir/cgroup.subtree_control" || echo "BENCH-ERROR +dmem in $dir"
		dir=$dir/$part
		mkdir -p "$dir"
	done
	echo $$ >"$dir/cgroup.procs" || echo "BENCH-ERROR cannot join $dir"
	echo "BENCH-INFO cgroup $(cat /proc/self/cgroup)"
fi
echo "BENCH-BEGIN $ours $upstream"
# shellcheck disable=SC2086 # $args is a list of options
HEAPGEN_BENCH_ALL_ROWS=1 /tests/heapgen-bench $args "$ours" "$upstream"
echo "BENCH-EXIT $?"
echo "BENCH-INFO clocksource-after $(clocksource)"
echo "BENCH-INFO cma-pages-after $(cat /sys/kernel/mm/cma/reserved/available_pages 2>/dev/null)"
echo HEAPGEN-BENCH-END
reboot -f
