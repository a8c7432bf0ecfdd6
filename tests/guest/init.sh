#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# heapgen guest /init: loads the modules and runs the guest tests.
#
# The initramfs holds:
#   /bin/busybox            static busybox
#   /lib/modules/*.ko       the heap module(s) and heapgen_importer.ko
#   /tests/<program>        static test programs (KTAP output), and
#   /tests/dmabuf-heap      the kernel's dmabuf-heaps selftest
#   /etc/heapgen/heaps.conf one line per heap ('#' starts a comment):
#     <heap> <module> <cma-area> <align> <granule> <guard-before> <guard-after> <max-alloc> <uncached 0|1> <fallback> <hooks> <pool> <accounting>
#   ("-" for a module or area that does not apply, 0 for no max-alloc; <fallback>
#   is the comma-separated CMA areas of the region's fallback regions, or "-";
#   <hooks> the stem of the region's hook file, e.g. "protected", or "-";
#   <pool> the heap's pool as "<size>,<size>...:<depth>" in bytes, or "-";
#   <accounting> the region's dmem cgroup region, e.g. "heapgen/video", or "-")
# cgroup2 is mounted at /sys/fs/cgroup with the dmem controller enabled for
# child groups when the kernel has them (heap-accounting creates its own).
# Pools fill and zero buffers in the background: the CMA leak baseline and the
# final check are taken once every pool is idle (debugfs pool_pending 0), and
# count the pages the pools hold (pool_pages) as free.
# Heaps with the "protected" hooks refuse CPU mappings, which every other
# program relies on: only heap-hooks runs on them, and the kernel's selftest
# (which maps every heap) runs with their device nodes moved aside.
#
# Output contract (the harness parses it from the console):
#   # heapgen-insmod: <module.ko> <rc>
#   # heapgen-run: <program> <heap>        before each run
#   ...raw KTAP of the program...
#   # heapgen-exit: <program> <heap> <rc>  after each run
#   HEAPGEN-E2E-END                        after the last run
# Every program except dmabuf-heap runs once per heap with HEAPGEN_* set;
# dmabuf-heap runs once (it tests every heap itself), with heap "all".

/bin/busybox --install -s /bin
export PATH=/bin

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug
mkdir -p /tmp
mount -t tmpfs tmpfs /tmp
if grep -qw cgroup2 /proc/filesystems; then
	mount -t cgroup2 cgroup2 /sys/fs/cgroup &&
		grep -qw dmem /sys/fs/cgroup/cgroup.controllers &&
		echo +dmem >/sys/fs/cgroup/cgroup.subtree_control
fi

echo "# heapgen-kernel: $(uname -r) $(uname -m)"

# The guest runs on every vCPU QEMU was given (heapgen.cpus=N): the races the
# tests provoke need two CPUs at once.
want=$(sed -n 's/.*heapgen\.cpus=\([0-9]*\).*/\1/p' /proc/cmdline)
have=$(grep -c '^processor' /proc/cpuinfo)
echo "# heapgen-run: cpus all"
echo "TAP version 13"
echo "1..1"
if [ -z "$want" ] || [ "$have" = "$want" ]; then
	echo "# $have CPUs online"
	echo "ok 1 guest.all_vcpus_online"
else
	echo "# QEMU gave $want vCPUs, the kernel brought up $have"
	echo "not ok 1 guest.all_vcpus_online"
fi
echo "# heapgen-exit: cpus all 0"

# A hang diagnoses itself: 12 minutes in (the harness gives up at 15), every
# task's stack and every CPU's backtrace go to the console, if the kernel has
# sysrq (the debug kernels).
if [ -w /proc/sysrq-trigger ]; then
	(
		sleep 720
		echo "# heapgen: still running after 12 minutes: dumping tasks"
		echo t >/proc/sysrq-trigger
		echo l >/proc/sysrq-trigger
		echo w >/proc/sysrq-trigger
	) &
	watchdog=$!
fi

# The importer first, then every other module.
for ko in /lib/modules/heapgen_importer.ko /lib/modules/*.ko; do
	[ -f "$ko" ] || continue
	case " $loaded " in *" $ko "*) continue ;; esac
	loaded="$loaded $ko"
	insmod "$ko"
	echo "# heapgen-insmod: ${ko##*/} $?"
done

echo "# heapgen-heaps: $(ls /dev/dma_heap 2>/dev/null | tr '\n' ' ')"

# Upstream's heaps over the board's CMA areas (its CMA heap makes one of every
# area from 6.19; 6.12's one of the default area) hand the memory out without
# the region's policies: the generated udev rules must close each of them
# (mode 0000). Every heap node the board's module did not create, but the
# system heap, must be one of those the rules close.
closed=$(sed -n 's/.*KERNEL=="\([^"]*\)", MODE="0000".*/\1/p' /etc/udev/rules.d/*.rules 2>/dev/null)
if [ -f /etc/heapgen/heaps.conf ]; then
	foreign=""
	for node in /dev/dma_heap/*; do
		[ -e "$node" ] || continue
		h=${node##*/}
		[ "$h" = system ] && continue
		grep -q "^$h " /etc/heapgen/heaps.conf && continue
		foreign="$foreign $h"
	done
	echo "# heapgen-run: upstream-heaps all"
	echo "TAP version 13"
	echo "1..$(echo $foreign | wc -w)"
	n=0
	for h in $foreign; do
		n=$((n + 1))
		if echo "$closed" | grep -qxF "$h"; then
			echo "ok $n upstream_heaps.$h.closed_by_the_rules"
		else
			echo "# $h is not closed by /etc/udev/rules.d: $(echo $closed)"
			echo "not ok $n upstream_heaps.$h.closed_by_the_rules"
		fi
	done
	echo "# heapgen-exit: upstream-heaps all 0"
fi

# CMA pages in use per area after loading the modules: the leak baseline.
# (The default area always holds the atomic DMA pool's pages.)
cma_used() {
	a=$(cat "/sys/kernel/mm/cma/$1/alloc_pages_success" 2>/dev/null || echo 0)
	r=$(cat "/sys/kernel/mm/cma/$1/release_pages_success" 2>/dev/null || echo 0)
	echo $((a - r))
}
# Pages the pools over area $1 hold, once they are idle (60 s at most).
pool_pages() {
	p=0
	[ -f /etc/heapgen/heaps.conf ] || { echo 0; return; }
	while read -r h _ c _ _ _ _ _ _ _ _ pool _; do
		case "$h" in ''|'#'*) continue ;; esac
		[ "$c" = "$1" ] && [ -n "$pool" ] && [ "$pool" != - ] || continue
		d=/sys/kernel/debug/heapgen/$h
		t=0
		while [ "$(cat "$d/pool_pending" 2>/dev/null || echo 0)" != 0 ] && [ $t -lt 60 ]; do
			sleep 1
			t=$((t + 1))
		done
		p=$((p + $(cat "$d/pool_pages" 2>/dev/null || echo 0)))
	done </etc/heapgen/heaps.conf
	echo $p
}
# Pages of area $1 held by live buffers.
cma_live() {
	pooled=$(pool_pages "$1")
	echo $(($(cma_used "$1") - pooled))
}
for area in $(ls /sys/kernel/mm/cma 2>/dev/null); do
	echo "$area $(cma_live "$area")" >>/tmp/cma-baseline
done

run() {
	prog=$1
	heap=$2
	echo "# heapgen-run: ${prog##*/} $heap"
	"$prog"
	rc=$?
	echo "# heapgen-exit: ${prog##*/} $heap $rc"
}

# `heapgen.suite=load` (the harness's kernel-report self-tests, whose fault
# fires when the module loads): load the modules and check for leaks only.
case " $(cat /proc/cmdline) " in
*" heapgen.suite=load "*) load_only=1 ;;
esac

conf=/etc/heapgen/heaps.conf
if [ -n "$load_only" ]; then
	echo "# heapgen: heapgen.suite=load: no heap tests run"
elif [ -f "$conf" ]; then
	while read -r heap module cma align granule gbefore gafter maxalloc uncached fallback hooks pool accounting rest; do
		case "$heap" in ''|'#'*) continue ;; esac
		export HEAPGEN_HEAP="$heap" HEAPGEN_MODULE="$module" \
			HEAPGEN_CMA="$cma" HEAPGEN_ALIGN="$align" \
			HEAPGEN_GRANULE="$granule" \
			HEAPGEN_GUARD_BEFORE="$gbefore" \
			HEAPGEN_GUARD_AFTER="$gafter" \
			HEAPGEN_MAX_ALLOC="$maxalloc" \
			HEAPGEN_UNCACHED="$uncached" \
			HEAPGEN_FALLBACK="${fallback:--}" \
			HEAPGEN_HOOKS="${hooks:--}" \
			HEAPGEN_POOL="${pool:--}" \
			HEAPGEN_ACCOUNTING="${accounting:--}"
		[ "$hooks" = protected ] && protected="$protected $heap"
		for prog in /tests/*; do
			[ -f "$prog" ] && [ -x "$prog" ] || continue
			[ "${prog##*/}" = dmabuf-heap ] && continue
			if [ "$hooks" = protected ] && [ "${prog##*/}" != heap-hooks ]; then
				continue
			fi
			run "$prog" "$heap" </dev/null
		done
	done <"$conf"
else
	echo "# heapgen: $conf is missing: no heap tests run"
fi
unset HEAPGEN_HEAP HEAPGEN_MODULE HEAPGEN_CMA HEAPGEN_ALIGN HEAPGEN_GRANULE \
	HEAPGEN_GUARD_BEFORE HEAPGEN_GUARD_AFTER HEAPGEN_MAX_ALLOC \
	HEAPGEN_UNCACHED HEAPGEN_FALLBACK HEAPGEN_HOOKS HEAPGEN_POOL HEAPGEN_ACCOUNTING

if [ -z "$load_only" ] && [ -x /tests/dmabuf-heap ]; then
	mkdir -p /tmp/protected-heaps
	for heap in $protected; do
		mv "/dev/dma_heap/$heap" /tmp/protected-heaps/
	done
	run /tests/dmabuf-heap all </dev/null
	for heap in $protected; do
		mv "/tmp/protected-heaps/$heap" /dev/dma_heap/
	done
fi

# Debug kernels: no leaked kernel object (kmemleak ignores objects younger
# than 5 s, so wait that long before the scan).
if [ -w /sys/kernel/debug/kmemleak ]; then
	sleep 6
	echo scan >/sys/kernel/debug/kmemleak
	echo "# heapgen-run: kmemleak all"
	echo "TAP version 13"
	echo "1..1"
	if grep -q "unreferenced object" /sys/kernel/debug/kmemleak; then
		sed 's/^/# /' /sys/kernel/debug/kmemleak | head -60
		echo "not ok 1 kmemleak.no_leaks"
	else
		echo "ok 1 kmemleak.no_leaks"
	fi
	echo "# heapgen-exit: kmemleak all 0"
fi

# No CMA page leaked: every area is back to its baseline.
if [ -f /tmp/cma-baseline ]; then
	echo "# heapgen-run: leak-check all"
	echo "TAP version 13"
	echo "1..$(wc -l </tmp/cma-baseline)"
	n=0
	while read -r area base; do
		n=$((n + 1))
		now=$(cma_live "$area")
		if [ "$now" = "$base" ]; then
			echo "ok $n cma.$area.no_leak"
		else
			echo "# area $area: $now pages in use, $base at start"
			echo "not ok $n cma.$area.no_leak"
		fi
	done </tmp/cma-baseline
	echo "# heapgen-exit: leak-check all 0"
fi

[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
echo HEAPGEN-E2E-END
sync
reboot -f
