#!/usr/bin/env bash
# Prints and judges the test ledger of scripts/test.sh (tests/common/ledger.rs): how many
# root tests ran and how many tests skipped, per pass, and which skipped and why.
#
#   scripts/test-ledger.sh [--strict] [--expect-runs] DIR
#
# DIR holds one directory per pass (e.g. native/, oci/), each with the `ran` and `skipped`
# files the tests appended to (lines `kind<TAB>binary<TAB>test<TAB>reason`). A test that
# ran as root and then skipped (a tool missing) counts as skipped, not as ran; a `part`
# line is a test that ran but left a part out, listed and counted apart.
#
# --strict       (as root, in CI) exit 1 when anything skipped, whole or part
# --expect-runs  exit 1 when no root test ran at all
# Without them it only prints and exits 0.
set -euo pipefail

strict=0 expect=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --strict) strict=1 ;;
    --expect-runs) expect=1 ;;
    --) shift; break ;;
    -*) echo "test-ledger: unknown option $1" >&2; exit 2 ;;
    *) break ;;
    esac
    shift
done
[[ $# -eq 1 && -d $1 ]] || { echo "usage: $0 [--strict] [--expect-runs] DIR" >&2; exit 2; }
dir=$1

# One record per line for awk: pass<TAB>kind<TAB>binary<TAB>test<TAB>reason.
records() {
    local p f
    for p in "$dir"/*/; do
        [[ -d $p ]] || continue
        for f in "$p"ran "$p"skipped; do
            [[ -f $f ]] || continue
            awk -v pass="$(basename "$p")" 'NF { print pass "\t" $0 }' "$f"
        done
    done
}

# The summary on stdout; the last line is "TOTALS ran skipped parts".
passes=()
for p in "$dir"/*/; do [[ -d $p ]] && passes+=("$(basename "$p")"); done
out=$(records | awk -F'\t' -v passes="${passes[*]}" '
    BEGIN { npass = split(passes, order, " "); for (i = 1; i <= npass; i++) seen[order[i]] = 1 }
    {
        pass = $1; kind = $2; key = pass SUBSEP $3 SUBSEP $4
        if (!(pass in seen)) { seen[pass] = 1; order[++npass] = pass }
        if (kind == "ran") ran[key] = 1
        else if (kind == "skip") { if (!(key in skip)) skip[key] = $5; else skip[key] = skip[key] "; " $5 }
        else if (kind == "part") part[key SUBSEP $5] = 1
    }
    END {
        for (k in ran) if (!(k in skip)) { split(k, a, SUBSEP); pr[a[1]]++; tr++ }
        for (k in skip) { split(k, a, SUBSEP); ps[a[1]]++; ts++ }
        for (k in part) { split(k, a, SUBSEP); pp[a[1]]++; tp++ }
        line = ""
        for (i = 1; i <= npass; i++) {
            p = order[i]
            line = line (i > 1 ? "; " : "") p " pass: " pr[p] + 0 " ran, " ps[p] + 0 " skipped"
            if (pp[p]) line = line ", " pp[p] " parts skipped"
        }
        printf "root tests: %d ran, %d skipped", tr, ts
        if (tp) printf ", %d parts skipped", tp
        if (npass) printf " (%s)", line
        printf "\n"
        n = 0
        for (k in skip) { split(k, a, SUBSEP); l[++n] = "  skipped: [" a[1] "] " a[2] " " a[3] ": " skip[k] }
        for (k in part) { split(k, a, SUBSEP); l[++n] = "  skipped part: [" a[1] "] " a[2] " " a[3] ": " a[4] }
        # Sorted for a stable listing (insertion sort: the lists are short).
        for (i = 2; i <= n; i++) { v = l[i]; for (j = i - 1; j > 0 && l[j] > v; j--) l[j + 1] = l[j]; l[j + 1] = v }
        for (i = 1; i <= n; i++) print l[i]
        printf "TOTALS %d %d %d\n", tr, ts, tp
    }')

read -r _ ran skipped parts <<<"$(tail -n1 <<<"$out")"
summary=$(sed '$d' <<<"$out")

if ((strict == 0 && (skipped > 0 || parts > 0))); then
    echo "==================================================================" >&2
    echo "test: $((skipped)) tests and $((parts)) parts of tests SKIPPED (did not run):" >&2
    echo "==================================================================" >&2
fi
echo "$summary" >&2

status=0
if ((strict && (skipped > 0 || parts > 0))); then
    echo "test: FAILED: as root nothing may skip ($skipped tests, $parts parts skipped above)" >&2
    status=1
fi
if ((expect && ran == 0)); then
    echo "test: FAILED: no root test ran" >&2
    status=1
fi
exit $status
