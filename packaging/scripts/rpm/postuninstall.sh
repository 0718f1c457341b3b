# RPM has no purge: state under /var/lib/berth stays after an erase (remove it by hand).
if [ "$1" -eq 0 ]; then systemctl daemon-reload >/dev/null 2>&1 || true; fi
