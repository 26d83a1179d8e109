#!/usr/bin/env bash
# Runs the whole fault suite N times in a row (default 20), every even run with both cores kept
# busy by two spin loops, and prints one line per run. Stops at the first failing run. Run it
# alone: the suite restarts PostgreSQL, Redis and the emulator.
set -u
cd "$(dirname "$0")/.."
n=${1:-20}
out=$(mktemp -d)
for i in $(seq 1 "$n"); do
  load=""
  if (( i % 2 == 0 )); then
    for _ in 1 2; do timeout 600 node -e 'for(;;){}' & done
    load=" (loaded)"
  fi
  start=$(date +%s)
  npx vitest run --project fault > "$out/run$i.log" 2>&1
  rc=$?
  [ -n "$load" ] && kill $(jobs -p) 2>/dev/null
  line=$(sed 's/\x1b\[[0-9;]*m//g' "$out/run$i.log" | grep -o 'fault suite: [0-9].*lost' | tail -1)
  echo "run $i$load: exit $rc in $(( $(date +%s) - start )) s: $line"
  if (( rc != 0 )); then echo "run $i failed; its log: $out/run$i.log"; exit 1; fi
done
echo "$n runs in a row passed (logs in $out)"
