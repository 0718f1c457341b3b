# $1: 1 on a first install, 2 or more on an upgrade.
if [ "$1" -gt 1 ]; then /usr/lib/berth/hooks.sh installed upgrade; else /usr/lib/berth/hooks.sh installed new; fi
