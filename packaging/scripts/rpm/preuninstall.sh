# $1: 0 when the package is being erased, 1 on an upgrade.
if [ "$1" -eq 0 ]; then /usr/lib/berth/hooks.sh removing; fi
