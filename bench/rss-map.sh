#!/usr/bin/env bash
# Where a running process's resident memory is, from /proc/PID/smaps, in MB: its own executable, managed
# assemblies (*.dll), native libraries (*.so), the runtime's double-mapped JIT code (memfd:doublemapper),
# the GC heap (the resident part of the GC's reserved address range: a run of adjacent anonymous mappings of
# more than 1 GB in all), the C heap (glibc malloc: [heap] and its per-thread arenas, each a 64 MB-aligned
# reservation of 64 MB, the part in use readable and writable, the rest not), and the rest of the anonymous
# memory (runtime data, thread stacks).
# With --line, one line NAME=MB ... for a report instead of the table.
#
# Usage: bench/rss-map.sh [--line] PID
set -euo pipefail

line=0
[ "${1:-}" = --line ] && { line=1; shift; }
pid=${1:?usage: bench/rss-map.sh [--line] PID}
[ -r "/proc/$pid/smaps" ] || { echo "rss-map.sh: no process $pid to read (/proc/$pid/smaps)" >&2; exit 2; }
exe=$(readlink "/proc/$pid/exe")

awk -v exe="$exe" -v line="$line" '
  function hex(h,   i, v) { v = 0; h = tolower(h); for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789abcdef", substr(h, i, 1)) - 1; return v }
  function flush() {
    if (start == "") return
    n++; s[n] = start; e[n] = end; kind[n] = k; rss[n] = r; size[n] = z; perms[n] = p
  }
  /^[0-9a-f]+-[0-9a-f]+ / {
    flush()
    split($1, range, "-"); start = hex(range[1]); end = hex(range[2]); r = 0; z = 0; p = $2
    path = $6; for (i = 7; i <= NF; i++) path = path " " $i
    if (path == exe) k = "executable"
    else if (path ~ /\.dll$/) k = "assemblies"
    else if (path ~ /\.so(\.[0-9.]+)?$/) k = "native-libraries"
    else if (path ~ /doublemapper/) k = "jit-code"
    else if (path == "" ) k = "anon"
    else if (path == "[heap]") k = "malloc"
    else if (path ~ /^\[stack/ ) k = "anon"
    else if (path ~ /^\[/) k = "kernel"
    else k = "other-files"
    next
  }
  /^Rss:/ { r = $2 }
  /^Size:/ { z = $2 }
  END {
    flush()
    # A glibc arena: 64 MB reserved at a 64 MB boundary, the used part rw-p, the rest ---p right after it.
    arena = 64 * 1024 * 1024
    for (i = 1; i < n; i++)
      if (kind[i] == "anon" && kind[i + 1] == "anon" && s[i] % arena == 0 && s[i + 1] == e[i] && perms[i + 1] == "---p" && e[i + 1] - s[i] == arena) { kind[i] = "malloc"; kind[i + 1] = "malloc" }
    # Adjacent anonymous mappings form one block; a block of more than 1 GB is the GC reservation.
    for (i = 1; i <= n; i++) {
      if (kind[i] != "anon") continue
      j = i; total = size[i]
      while (j < n && kind[j + 1] == "anon" && s[j + 1] == e[j]) { j++; total += size[j] }
      if (total > 1024 * 1024) for (m = i; m <= j; m++) kind[m] = "gc-heap"
      i = j
    }
    for (i = 1; i <= n; i++) { sum[kind[i]] += rss[i]; all += rss[i] }
    split("executable assemblies native-libraries jit-code gc-heap malloc anon other-files kernel", order, " ")
    if (line) {
      for (o = 1; o <= 9; o++) if (sum[order[o]] > 0) printf "%s=%.1f ", order[o], sum[order[o]] / 1024
      printf "total=%.1f\n", all / 1024
    } else {
      printf "| %s | %s |\n|---|---:|\n", "mappings", "RSS (MB)"
      names["anon"] = "other anonymous (runtime data, stacks)"; names["gc-heap"] = "GC heap (resident part of the reserved range)"; names["malloc"] = "C heap (glibc malloc: [heap] and arenas)"
      for (o = 1; o <= 9; o++) if (sum[order[o]] > 0) printf "| %s | %.1f |\n", (order[o] in names ? names[order[o]] : order[o]), sum[order[o]] / 1024
      printf "| total | %.1f |\n", all / 1024
    }
  }' "/proc/$pid/smaps"
