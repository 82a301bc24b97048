#!/usr/bin/env bash
# Install SLURM (slurm-wlm: slurmctld, slurmd, client tools) and munge from Debian's archive,
# for the single-node test cluster in slurm/local_cluster.py. Idempotent: does nothing when
# slurmctld, slurmd, munged and sbatch are already on PATH. Needs root (or passwordless sudo).
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # the daemons live in /usr/sbin, not on every PATH

need=(slurmctld slurmd munged sbatch)
missing=()
for bin in "${need[@]}"; do
    command -v "$bin" >/dev/null 2>&1 || missing+=("$bin")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "slurm/install.sh: SLURM and munge already installed (slurm-wlm $(slurmd -V 2>/dev/null | awk '{print $2}'), $(munged --version 2>/dev/null)); nothing to do"
    exit 0
fi
echo "slurm/install.sh: missing ${missing[*]}; installing slurm-wlm and munge with apt-get"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "slurm/install.sh: not root and no sudo; cannot install ${missing[*]}" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
# Package scripts must not start daemons in a container (no init): policy-rc.d 101 forbids it.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
    echo "slurm/install.sh: writing $policy (exit 101) so the packages do not start services"
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if [ "$created_policy" = 1 ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT

echo "+ apt-get update"
$SUDO apt-get update -q
echo "+ apt-get install -y --no-install-recommends slurm-wlm munge"
$SUDO apt-get install -y -q --no-install-recommends slurm-wlm munge

for bin in "${need[@]}"; do
    if ! command -v "$bin" >/dev/null 2>&1; then
        echo "slurm/install.sh: $bin still missing after install" >&2
        exit 1
    fi
done
echo "slurm/install.sh: installed $(slurmd -V), $(munged --version)"
