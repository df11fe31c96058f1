#!/bin/sh
# /init of the SR-IOV test VM: runs as PID 1 inside the guest, under busybox.
#
# It turns a bare initramfs into "the host's own root, writable, with an igb
# PF": load the modules run.sh put in /modules (in dependency order), mount the
# host root (9p, read-only) as the lower layer of an overlay whose upper layer
# is RAM, so tests may write anywhere and nothing reaches the host; give the
# overlay fresh proc/sys/dev and empty /tmp and /run (the host's /run holds
# pid files and namespaces that mean nothing here); then chroot into it and run
# the job run.sh wrote into the writable "results" share.  The job's exit code
# and the guest's uptime are written back to that share, then the VM powers
# off.  If anything fails before the job runs, no rc file is written, which
# run.sh reports as a rig failure rather than a test failure.
PATH=/bin
export PATH

/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /lower /rw /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

die() {
    echo "sriov-vm init: $*" >&2
    sync
    poweroff -f
}

read -r kver < /modules/kernel-release
while read -r module; do
    insmod "/modules/$module" || die "cannot load $module"
done < /modules/load-order

# msize: bigger 9p messages mean fewer round trips when Python reads files.
# cache=loose: nothing changes the exported tree while the tests run.
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower \
    || die "cannot mount the host root (9p tag hostroot)"
mount -t tmpfs -o mode=755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || die "cannot mount the overlay root"

r=/newroot
# The job run.sh wrote names the work tree and the kernel's module tree (in
# run.sh's cache).  Either may lie under /tmp or /run, which get fresh tmpfs
# below: hold both (as the overlay shows them) and put them back on top.
mkdir -p /results /keep/worktree /keep/modules
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results /results \
    || die "cannot mount the results share (9p tag results)"
worktree=$(sed -n 's/^# worktree: //p' /results/job)
moddir=$(sed -n 's/^# modules: //p' /results/job)
[ -d "$r$worktree" ] || die "no work tree $worktree in the host root"
mount -o bind "$r$worktree" /keep/worktree
[ -d "$r$moddir" ] || die "no module tree $moddir in the host root"
mount -o bind "$r$moddir" /keep/modules

mount -t proc proc $r/proc
mount -t sysfs sysfs $r/sys
mount -t devtmpfs devtmpfs $r/dev
mkdir -p $r/dev/pts $r/dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts $r/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $r/dev/shm
mount -t tmpfs -o mode=1777 tmpfs $r/tmp
mount -t tmpfs -o mode=1777 tmpfs $r/var/tmp
mount -t tmpfs -o mode=755 tmpfs $r/run

mkdir -p "$r$worktree" "$r/lib/modules/$kver" $r/run/sriov-vm
mount -o move /keep/worktree "$r$worktree"
# the whole module tree of this kernel, so `modprobe` works in the chroot
mount -o move /keep/modules "$r/lib/modules/$kver"
mount -o move /results $r/run/sriov-vm

hostname sriov-vm
ip link set lo up
cut -d' ' -f1 /proc/uptime > $r/run/sriov-vm/boot-seconds
chroot $r /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    DPAGENT_SRIOV_VM=1 /bin/bash /run/sriov-vm/job
echo $? > $r/run/sriov-vm/rc
cut -d' ' -f1 /proc/uptime > $r/run/sriov-vm/end-seconds
sync
umount $r/run/sriov-vm
poweroff -f
