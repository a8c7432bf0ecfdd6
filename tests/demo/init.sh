#!/bin/busybox sh
# /init of the `cargo xtask demo` guest: load the modules, allocate from every heap, power off.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs dev /dev 2>/dev/null
for ko in /lib/modules/*.ko; do
	insmod "$ko" || echo "DEMO-INSMOD-FAILED $ko"
done
echo "DEMO-BEGIN"
/tests/heapgen-demo 1048576
echo "DEMO-END"
echo HEAPGEN-E2E-END
reboot -f
