#!/bin/sh
# Shared steps of the .deb and .rpm maintainer scripts, installed as
# /usr/lib/berth/hooks.sh. Usage: hooks.sh installed new|upgrade, hooks.sh removing.
set -e
case "$1" in
  installed)
    getent group berth >/dev/null 2>&1 || groupadd --system berth
    install -d -m 0755 /var/lib/berth /var/log/berth /var/log/berth/pods
    if [ -d /run/systemd/system ]; then
      systemctl daemon-reload || true
      systemctl enable berth.service >/dev/null 2>&1 || true
      if [ "$2" = upgrade ]; then
        # KillMode=process: containers and their shims keep running across the restart.
        systemctl try-restart berth.service || true
      else
        systemctl start berth.service ||
          echo "berth: the service did not start; see: berth doctor; journalctl -u berth" >&2
      fi
    else
      echo "berth: systemd is not running here; start the daemon with: berth daemon" >&2
    fi
    ;;
  removing)
    if [ -d /run/systemd/system ]; then
      systemctl stop berth.service || true
      systemctl disable berth.service >/dev/null 2>&1 || true
    fi
    # Stop every pod and take down mounts, cgroups and the pod network; the state stays
    # for a reinstall (a purge removes it).
    /usr/bin/berth reset --yes --keep-state >/dev/null ||
      echo "berth: the node could not be reset fully; stop berth, then run: berth reset" >&2
    ;;
  *)
    echo "usage: $0 installed new|upgrade | removing" >&2
    exit 2
    ;;
esac
