# Sourced by the set-up scripts: install_debs PREFIX PACKAGE... installs the Debian packages that
# are missing, without starting the services they ship (policy-rc.d exit 101 = "action
# forbidden": invoke-rc.d then neither starts nor restarts them).  PREFIX names the caller in
# messages.  Fails when packages are missing and we are not root.
install_debs() {
    local prefix=$1 pkg
    shift
    local missing=()
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$prefix: missing Debian packages (${missing[*]}) and not root" >&2
        return 1
    fi
    echo "$prefix: installing ${missing[*]}"
    local policy=/usr/sbin/policy-rc.d own_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"
        chmod 755 "$policy"
        own_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } || rc=$?
    [ "$own_policy" = 1 ] && rm -f "$policy"
    return "$rc"
}
