#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# heapgen guest /init: sets the guest up, then runs the on-target test
# runner, tests/guest/heapgen-test (installed as /bin/heapgen-test), which
# loads the modules and runs the suite exactly as it runs on a board.
#
# The initramfs holds:
#   /bin/busybox, /bin/sh   static busybox, or, in the 6.12 x86_64 guest,
#   /system/bin/            Android's userland tools: mksh (as sh, and
#                           /bin/sh), toybox and awk
#   /bin/heapgen-test       the runner
#   /lib/modules/*.ko       the heap module(s) and heapgen_importer.ko
#   /tests/<program>        static test programs (KTAP output), and
#   /tests/dmabuf-heap      the kernel's dmabuf-heaps selftest
#   /etc/heapgen/heaps.conf the board's heaps (heapgen's test/heaps.conf; the
#                           format is described in heapgen-test)
#   /etc/udev/rules.d/      the board's generated udev rules
# cgroup2 is mounted at /sys/fs/cgroup with the dmem controller enabled for
# child groups when the kernel has them (heap-accounting creates its own).
#
# Output contract (the harness parses it from the console): the runner's
# (see heapgen-test), after this script's vCPU check, then
#   HEAPGEN-E2E-END                        after the last run

[ -x /bin/busybox ] && /bin/busybox --install -s /bin
export PATH=/bin:/system/bin
if [ -x /system/bin/toybox ]; then
	echo "# heapgen: Android's userland: sh $KSH_VERSION, $(toybox --version)"
fi

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

# `heapgen.suite=load` (the harness's kernel-report self-tests, whose fault
# fires when the module loads): load the modules and check for leaks only.
# `heapgen.suite=failed-load` (booted without the board's CMA areas, so the
# heap module's init fails): check that the failed load left nothing behind.
case " $(cat /proc/cmdline) " in
*" heapgen.suite=load "*)
	echo "# heapgen: heapgen.suite=load: no heap tests run"
	suite=--no-heap-tests
	;;
*" heapgen.suite=failed-load "*)
	echo "# heapgen: heapgen.suite=failed-load: the heap module must not load"
	suite=--no-heap-tests
	failed_load=1
	;;
esac

# The runner prints its own verdict and exit status; the harness judges the
# KTAP above it.
heapgen-test --conf /etc/heapgen/heaps.conf --tests /tests --load /lib/modules ${suite:+"$suite"}
echo "# heapgen: heapgen-test exited $?"

# A module whose init failed is gone, and so is everything it registered: its
# cache-maintenance device, its heaps, its debugfs directories.
if [ -n "$failed_load" ]; then
	echo "# heapgen-run: failed-load all"
	echo "TAP version 13"
	echo "1..2"
	modules=$(sed -n 's/^[^#][^ ]* \([^ ]*\) .*/\1/p' /etc/heapgen/heaps.conf | sort -u)
	loaded=
	for m in $modules; do
		grep -q "^$m " /proc/modules && loaded="$loaded $m"
	done
	if [ -z "$loaded" ]; then
		echo "ok 1 failed_load.module_refused"
	else
		echo "# still loaded:$loaded"
		echo "not ok 1 failed_load.module_refused"
	fi
	left=
	for p in /sys/bus/platform/devices/heapgen-cache.* \
		/sys/kernel/debug/heapgen /sys/kernel/debug/heapgen-hooks; do
		[ -e "$p" ] && left="$left $p"
	done
	while read -r h _; do
		case "$h" in ''|'#'*) continue ;; esac
		[ -e "/dev/dma_heap/$h" ] && left="$left /dev/dma_heap/$h"
	done </etc/heapgen/heaps.conf
	if [ -z "$left" ]; then
		echo "ok 2 failed_load.nothing_left_behind"
	else
		echo "# left behind:$left"
		echo "not ok 2 failed_load.nothing_left_behind"
	fi
	echo "# heapgen-exit: failed-load all 0"
fi

[ -n "$watchdog" ] && kill "$watchdog" 2>/dev/null
echo HEAPGEN-E2E-END
sync
reboot -f
