#!/usr/bin/env bash
# Fuzzes quant4j's readers with Jazzer, one target at a time, at the lowest CPU priority (docs/reliability.md).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET ...]      e.g. scripts/fuzz.sh 300 NpyFuzzTest
#
# Targets are the *FuzzTest classes of quant-core (all of them by default). Each runs in its own JVM with a 256 MB
# heap (the contract: no OutOfMemoryError whatever sizes a file claims) and a 60 s per-input timeout that catches
# hangs (the targets themselves fail any input that takes more than a second of CPU). The corpus each run grows is
# kept in quant-core/target/fuzz-corpus/TARGET and reused by the next run; a crashing input is written beside the
# target's seeds (src/test/resources/.../TARGETInputs/fuzz/crash-*), where `mvn verify` replays it from then on.
# Logs: quant-core/target/fuzz/TARGET.log; the last line printed per target is libFuzzer's "Done N runs in S s".
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
core="$root/quant-core"
seconds="${1:-300}"
shift || true

# shellcheck source=scripts/find-java25.sh
. "$root/scripts/find-java25.sh"
java_bin=$(find_java25) || { echo "fuzz: needs a JDK 25 or newer (set JAVA_HOME)" >&2; exit 1; }

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    while IFS= read -r f; do targets+=("$(basename "$f" .java)"); done \
        < <(find "$core/src/test/java" -name '*FuzzTest.java' | sort)
fi

mkdir -p "$core/target/fuzz"
(cd "$root" && mvn -B -q -pl quant-core test-compile dependency:build-classpath -Dmdep.includeScope=test \
    -Dmdep.outputFile="$core/target/fuzz/classpath" >"$core/target/fuzz/build.log" 2>&1) \
    || { cat "$core/target/fuzz/build.log" >&2; exit 1; }
# the campaigns run on a copy of the classes, so that a build during a campaign cannot pull them from under it
rm -rf "$core/target/fuzz/classes" "$core/target/fuzz/test-classes"
cp -r "$core/target/classes" "$core/target/fuzz/classes"
cp -r "$core/target/test-classes" "$core/target/fuzz/test-classes"
cp="$core/target/fuzz/test-classes:$core/target/fuzz/classes:$(cat "$core/target/fuzz/classpath")"

status=0
for t in "${targets[@]}"; do
    file=$(find "$core/src/test/java" -name "$t.java" | head -1)
    [ -n "$file" ] || { echo "fuzz: no target $t" >&2; exit 2; }
    class=$(echo "${file#"$core/src/test/java/"}" | sed 's|/|.|g; s|\.java$||')
    corpus="$core/target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    echo "fuzz: $class for ${seconds}s" >&2
    # -timeout: libFuzzer's per-input limit (wall clock, so a hang is caught); --keep_going: record up to 20 distinct
    # findings instead of stopping at the first
    if ! (cd "$core" && nice -n 19 "$java_bin" -Xmx256m -XX:+EnableDynamicAgentLoading \
        --add-modules jdk.incubator.vector -cp "$cp" com.code_intelligence.jazzer.Jazzer \
        --target_class="$class" --keep_going=20 \
        "$corpus" -max_total_time="$seconds" -timeout=60 -print_final_stats=1 \
        >"$core/target/fuzz/$t.log" 2>&1); then
        status=1
        echo "fuzz: $t reported findings (see $core/target/fuzz/$t.log)" >&2
    fi
    grep -E '^Done [0-9]+ runs' "$core/target/fuzz/$t.log" | sed "s/^/$t: /" || true
done
exit $status
