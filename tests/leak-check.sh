#!/usr/bin/env bash
# After the suite: nothing of berth's may be left running or lying around.
set -uo pipefail
fail=0
if pgrep -f 'berth daemon' >/dev/null; then
  echo "leak: berth daemon processes still running:"; pgrep -af 'berth daemon'; fail=1
fi
left=$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'berth-test-*' 2>/dev/null)
if [ -n "$left" ]; then
  echo "leak: test directories left behind:"; echo "$left"; fail=1
fi
if [ $fail -ne 0 ]; then exit 1; fi
echo "leak check: nothing left behind"
