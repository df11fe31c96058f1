#!/usr/bin/env bash
# The SR-IOV VM test tier: run tests/vm inside a QEMU VM that has a real
# SR-IOV NIC (QEMU's emulated Intel 82576, `-device igb`, 7 VFs) driven by the
# stock Debian igb/igbvf drivers.  See tools/sriov-vm/README.md.
#
#   bash tools/sriov-vm/run.sh [pytest args...]   # default: all of tests/vm
#
# As root on Debian 12 it installs what it lacks (QEMU >= 8 from
# bookworm-backports, busybox-static), downloads a Debian kernel package
# WITHOUT installing it, builds a busybox initramfs, boots the VM under TCG
# with the host root mounted read-only over 9p and runs pytest in this work
# tree inside it.  It exits with pytest's exit code, or 70 when the VM never
# reported one (boot failure, timeout), and prints what each phase cost.
#
# Environment: DPAGENT_VM_CACHE (default .cache/sriov-vm in the work tree: the
# kernel, its modules and the initramfs, reused between runs),
# DPAGENT_VM_TIMEOUT (seconds for the whole VM run, default 600),
# DPAGENT_VM_KEEP_LOG (path: keep the VM's console output there).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
cache=${DPAGENT_VM_CACHE:-$top/.cache/sriov-vm}
vm_timeout=${DPAGENT_VM_TIMEOUT:-600}
RIG_FAILURE=70

say() { echo "sriov-vm: $*" >&2; }
die() { say "$*"; exit "$RIG_FAILURE"; }

declare -A cost=()
timed() {  # timed PHASE COMMAND...: run COMMAND, add its wall time to cost[PHASE]
    local phase=$1 start=$EPOCHREALTIME
    shift
    "$@"
    cost[$phase]=$(awk -v a="${cost[$phase]:-0}" -v s="$start" -v e="$EPOCHREALTIME" \
        'BEGIN { printf "%.1f", a + e - s }')
}

apt_get() {
    # Other engineers may be installing at the same time: wait for dpkg's lock.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@"
}

qemu_ok() {
    # (grep -q reads a here-string, not a pipe: an early exit under pipefail
    # would otherwise fail the check through the writer's SIGPIPE)
    command -v qemu-system-x86_64 > /dev/null &&
        grep -q '^name "igb"' <<< "$(qemu-system-x86_64 -device help 2> /dev/null)"
}

# --- 1. host packages -------------------------------------------------------

ensure_backports_source() {
    # Debian 12's own QEMU (7.2) predates the igb device (QEMU 8.0); its
    # backports ship a current one.  Add that suite for this one purpose.
    local codename
    # shellcheck disable=SC1091  # a system file
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    [ "$codename" = bookworm ] || return 0
    if grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
        return 0
    fi
    say "adding bookworm-backports to /etc/apt/sources.list.d/ (for qemu-system-x86)"
    cat > /etc/apt/sources.list.d/dpagent-bookworm-backports.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}

install_host_packages() {
    local missing=()
    qemu_ok || missing+=(qemu-system-x86)
    # busybox-static, not busybox: the initramfs has no libc to link against.
    grep -q 'install ok installed' <<< "$(dpkg-query -W -f='${Status}' busybox-static 2>&1)" \
        || missing+=(busybox-static)
    command -v depmod > /dev/null || missing+=(kmod)
    command -v flock > /dev/null || missing+=(util-linux)
    [ "${#missing[@]}" -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]} and not root"
    ensure_backports_source
    say "installing ${missing[*]}"
    apt_get update -qq
    local target=()
    if grep -q bookworm-backports <<< "$(apt-cache policy qemu-system-x86)"; then
        target=(-t bookworm-backports)
    fi
    apt_get install -y -qq --no-install-recommends "${target[@]}" "${missing[@]}" > /dev/null
    qemu_ok || die "qemu-system-x86_64 still has no igb device (QEMU >= 8 needed)"
}

# --- 2. the kernel ----------------------------------------------------------

kernel_package() {
    # The Debian kernel linux-image-amd64 points at today (its ABI name
    # changes with security updates, so it is looked up, not pinned).
    apt-cache depends linux-image-amd64 2> /dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ && !n++ { print $2 }'
}

fetch_kernel() {
    # -> $cache/kernel/{vmlinuz,vmlinux,release,lib/modules/RELEASE/}; kept until the
    # cache is removed, so warm runs need neither apt nor the network.
    [ -f "$cache/kernel/release" ] && return 0
    local pkg
    pkg=$(kernel_package)
    if [ -z "$pkg" ]; then
        apt_get update -qq
        pkg=$(kernel_package)
    fi
    [ -n "$pkg" ] || die "apt knows no linux-image-amd64 kernel"
    say "downloading $pkg (not installed; extracted into $cache)"
    local tmp=$cache/kernel.tmp
    rm -rf "$tmp" "$cache/debs"
    mkdir -p "$tmp" "$cache/debs"
    (cd "$cache/debs" && apt_get download -q -o APT::Sandbox::User=root "$pkg" > /dev/null)
    timed build extract_kernel "$tmp" "$cache"/debs/*.deb
    rm -rf "$cache/debs"
    mv "$tmp" "$cache/kernel"
}

extract_kernel() {
    local dest=$1 deb=$2 release
    dpkg-deb -x "$deb" "$dest/root"
    release=$(ls "$dest/root/lib/modules")
    mkdir -p "$dest/lib/modules"
    mv "$dest/root/lib/modules/$release" "$dest/lib/modules/"
    mv "$dest/root/boot/vmlinuz-$release" "$dest/vmlinuz"
    if grep -qx 'CONFIG_PVH=y' "$dest/root/boot/config-$release"; then
        pvh_vmlinux "$dest/vmlinuz" "$dest/vmlinux" || rm -f "$dest/vmlinux"
    fi
    rm -rf "$dest/root"
    # The package leaves modules.dep to the install step; make it here.
    depmod -b "$dest" "$release"
    echo "$release" > "$dest/release"
}

pvh_vmlinux() {
    # bzImage -> the plain ELF kernel inside it.  QEMU starts an ELF kernel
    # with a PVH note directly, which spares the guest decompressing itself
    # under TCG: about 4 s of every boot.  Debian compresses with xz.
    local bzimage=$1 out=$2 offset
    offset=$(LC_ALL=C grep -m 1 -obUaP '\xfd7zXZ\x00' "$bzimage" | cut -d: -f1)
    offset=${offset%%$'\n'*}  # the first match
    [ -n "$offset" ] || return 1
    # (xz stops after its stream: fed by a pipe, tail's SIGPIPE would fail it)
    xz -dcq --single-stream < <(tail -c +$((offset + 1)) "$bzimage") > "$out" || return 1
    [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = '177ELF' ]
}

kernel_image() {
    if [ -f "$cache/kernel/vmlinux" ]; then
        echo "$cache/kernel/vmlinux"
    else
        echo "$cache/kernel/vmlinuz"
    fi
}

# --- 3. the initramfs -------------------------------------------------------

module_load_order() {
    # modules.list -> every module file to load, dependencies first, once each.
    local moddir=$1 name path dep
    local -A seen=()
    while read -r name; do
        path=$(awk -F: -v n="${name//-/_}" '{
                   base = $1; sub(/.*\//, "", base); sub(/\.ko.*/, "", base)
                   gsub(/-/, "_", base)
                   if (base == n) { print; exit } }' "$moddir/modules.dep")
        if [ -z "$path" ]; then
            grep -Eq "/${name//[-_]/[-_]}\.ko" "$moddir/modules.builtin" && continue
            die "modules.list: no module '$name' in kernel $(basename "$moddir")"
        fi
        # modules.dep lists the dependencies so that loading them last to
        # first is a valid order.
        for dep in $(echo "${path#*:}" | tr ' ' '\n' | tac) "${path%%:*}"; do
            [ -n "${seen[$dep]:-}" ] && continue
            seen[$dep]=1
            echo "$dep"
        done
    done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$here/modules.list")
}

build_initramfs() {
    local release stamp
    release=$(cat "$cache/kernel/release")
    stamp=$(cat "$here/init.sh" "$here/modules.list" "$cache/kernel/release" /bin/busybox |
        sha256sum | cut -d' ' -f1)
    [ "$(cat "$cache/initramfs.stamp" 2> /dev/null)" = "$stamp" ] && return 0
    say "building the initramfs (busybox + modules of $release)"
    local moddir=$cache/kernel/lib/modules/$release stage=$cache/initramfs.tmp rel file
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,dev,modules}
    cp /bin/busybox "$stage/bin/busybox"
    ln -s busybox "$stage/bin/sh"
    install -m 755 "$here/init.sh" "$stage/init"
    mknod -m 600 "$stage/dev/console" c 5 1
    echo "$release" > "$stage/modules/kernel-release"
    module_load_order "$moddir" > "$stage/modules.order"
    while read -r rel; do
        file=$(basename "$rel")
        case $file in  # busybox insmod takes plain .ko files
            *.ko.xz) xz -dc "$moddir/$rel" > "$stage/modules/${file%.xz}"; file=${file%.xz} ;;
            *.ko.zst) zstd -qdc "$moddir/$rel" > "$stage/modules/${file%.zst}"; file=${file%.zst} ;;
            *) cp "$moddir/$rel" "$stage/modules/" ;;
        esac
        echo "$file" >> "$stage/modules/load-order"
    done < "$stage/modules.order"
    rm "$stage/modules.order"
    # (renamed into place: a VM starting meanwhile reads the old one whole)
    (cd "$stage" && find . | busybox cpio -o -H newc -R 0:0 2> /dev/null | gzip -1) \
        > "$cache/initramfs.cpio.gz.tmp"
    mv "$cache/initramfs.cpio.gz.tmp" "$cache/initramfs.cpio.gz"
    rm -rf "$stage"
    echo "$stamp" > "$cache/initramfs.stamp"
}

# --- 4. boot and test -------------------------------------------------------

write_job() {
    # What the VM's init runs, chrooted into the host root, with DPAGENT_SRIOV_VM=1.
    local job=$1
    shift
    {
        echo "# worktree: $top"
        echo "# modules: $cache/kernel/lib/modules/$(cat "$cache/kernel/release")"
        echo "cd $(printf '%q' "$top") || exit $RIG_FAILURE"
        # Bytecode written in the VM would only land in its RAM: skip the work.
        echo "export PYTHONDONTWRITEBYTECODE=1"
        [ -n "${CI:-}" ] && echo "export CI=$(printf '%q' "$CI")"
        # Under TCG every Python instruction is emulated: hypothesis's plugin
        # alone would add ~14 s of imports (tests may still import hypothesis).
        # A per-test timeout names a hung test before the VM's timeout hits.
        printf 'exec .venv/bin/python -m pytest -p no:cacheprovider -p no:hypothesispytest'
        printf ' --timeout=%q -q' "${DPAGENT_VM_TEST_TIMEOUT:-180}"
        printf ' %q' "$@"
        echo
    } > "$job"
}

boot_vm() {
    local results=$1
    local cmdline="console=ttyS0 quiet loglevel=3 panic=-1 mitigations=off"
    # --foreground: QEMU stays in our process group, so ^C stops it too.
    # -nodefaults: no VGA, floppy or default NIC -- the igb is the only NIC.
    # restrict=on: the user-mode network behind the igb reaches nothing.
    # multidevs=remap: the exported root spans several host filesystems.
    timeout --foreground --kill-after=10 "$vm_timeout" qemu-system-x86_64 \
        -M q35 -accel tcg -cpu max -m 1024 -smp 1 \
        -nodefaults -display none -serial stdio -no-reboot \
        -kernel "$(kernel_image)" -initrd "$cache/initramfs.cpio.gz" \
        -append "$cmdline" \
        -device pcie-root-port,id=rp0,slot=1 \
        -device igb,bus=rp0,netdev=n0 -netdev user,id=n0,restrict=on \
        -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
        -virtfs "local,path=$results,mount_tag=results,security_model=none" \
        < /dev/null | tr -d '\r' | tee "$results/console.log" || true
}

report_cost() {
    local results=$1 boot="?" end="?" tests="?"
    [ -f "$results/boot-seconds" ] && boot=$(cat "$results/boot-seconds")
    [ -f "$results/end-seconds" ] && end=$(cat "$results/end-seconds")
    if [ "$boot" != "?" ] && [ "$end" != "?" ]; then
        tests=$(awk -v a="$boot" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    fi
    say "cost: host packages ${cost[packages]:-0}s, kernel download ${cost[download]:-0}s," \
        "build ${cost[build]:-0}s, VM ${cost[vm]:-0}s (boot ${boot}s, tests ${tests}s," \
        "guest uptime), total ${cost[total]}s"
}

main() {
    local start=$EPOCHREALTIME
    [ -x "$top/.venv/bin/python" ] || bash "$top/tools/setup-deps.sh"
    timed packages install_host_packages
    mkdir -p "$cache"
    exec 9> "$cache/lock"
    flock 9  # one build at a time per cache
    timed download fetch_kernel
    cost[download]=$(awk -v d="${cost[download]}" -v b="${cost[build]:-0}" \
        'BEGIN { printf "%.1f", d - b }')  # fetch_kernel's extraction counts as build
    timed build build_initramfs
    flock -u 9

    local results rc
    results=$(mktemp -d /tmp/sriov-vm.XXXXXX)
    # shellcheck disable=SC2064  # expand now: the path is fixed
    trap "rm -rf '$results'" EXIT
    [ "$#" -gt 0 ] || set -- tests/vm
    write_job "$results/job" "$@"
    timed vm boot_vm "$results"
    if [ -n "${DPAGENT_VM_KEEP_LOG:-}" ]; then
        cp "$results/console.log" "$DPAGENT_VM_KEEP_LOG"
    fi
    cost[total]=$(awk -v s="$start" -v e="$EPOCHREALTIME" 'BEGIN { printf "%.1f", e - s }')
    report_cost "$results"
    if [ ! -f "$results/rc" ]; then
        die "the VM reported no result (boot failure or timeout after ${vm_timeout}s)"
    fi
    rc=$(cat "$results/rc")
    say "pytest in the VM exited $rc"
    return "$rc"
}

main "$@"
