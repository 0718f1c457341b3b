getent group berth >/dev/null 2>&1 || groupadd --system berth
