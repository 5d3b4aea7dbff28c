#!/usr/bin/env bash
# Times llama.cpp's llama-quantize beside quant quantize --format gguf on the same input, in one sitting (docs/scaling.md):
#
#   scripts/measure-peer-gguf.sh LLAMA_QUANTIZE [WORK_DIR [ROUNDS]]     default /tmp/quant4j-7b, 2 rounds
#
# LLAMA_QUANTIZE is a llama-quantize binary built outside this project (see docs/scaling.md for the build used). The
# input is WORK_DIR/s7b (written by measure-7b.sh) as a BF16 llama.cpp model, written by `quant quantize --model ...
# --gguf-type bf16` if WORK_DIR/s7b-bf16.gguf does not exist. Each round times a warm `cat` of it, llama-quantize to
# Q4_0 with every 2-D weight in Q4_0 (--pure, output and token embedding too) on 2 threads, another warm `cat`, and
# quant4j's GGUF writer on the same tensors on 2 threads (-Xmx1g); the two outputs of the last round are compared
# tensor by tensor (bench's GgufTensorsCompare: type, extents and data bytes by name).
# Run it alone on the machine: flock /tmp/bench.lock scripts/measure-peer-gguf.sh ...
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lq="${1:?usage: measure-peer-gguf.sh LLAMA_QUANTIZE [WORK_DIR [ROUNDS]]}"
work="${2:-/tmp/quant4j-7b}"
rounds="${3:-2}"
# shellcheck source=scripts/find-java25.sh
. "$root/scripts/find-java25.sh"
java_bin=$(find_java25) || { echo "measure-peer-gguf: needs a JDK 25 or newer (set JAVA_HOME)" >&2; exit 1; }
[ -x "$lq" ] || { echo "measure-peer-gguf: $lq is not an executable" >&2; exit 1; }
[ -d "$work/s7b" ] || { echo "measure-peer-gguf: no $work/s7b (run scripts/measure-7b.sh $work first)" >&2; exit 1; }
q=("$java_bin" -Xmx1g --add-modules jdk.incubator.vector -jar "$root/quant-cli/target/quant.jar")
in="$work/s7b-bf16.gguf"
if [ ! -f "$in" ]; then
    "${q[@]}" quantize --model "$work/s7b" --format gguf --gguf-type bf16 --method rtn --out "$in" > /dev/null
fi
# every 2-D weight of a llama GGUF: the tensors llama-quantize --pure quantizes
include='^(token_embd|output|blk\.[0-9]+\.(attn_(q|k|v|output)|ffn_(gate|up|down)))\.weight$'
secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
timed() { # LABEL COMMAND...: wall, user CPU, peak RSS
    local label=$1; shift
    /usr/bin/time -f "%e %U %M" -o "$work/time" "$@" > "$work/out" 2>&1 || { cat "$work/out" >&2; exit 1; }
    read -r wall user rss < "$work/time"
    echo "$label: wall $wall s, user $user s, peak RSS $(( rss / 1024 )) MB"
}
echo "input $in ($(stat -L -c %s "$in") bytes)"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= rounds; r++)); do
    rm -f "$work/ggml.gguf" "$work/q4j.gguf"
    # read twice after dropping the page cache (when allowed): pages read twice before are kept in preference
    if [ -w /proc/sys/vm/drop_caches ]; then sync; echo 1 > /proc/sys/vm/drop_caches; fi
    cat "$in" > /dev/null
    cat "$in" > /dev/null
    echo "cat, page cache warm: $(secs cat "$in") s"
    timed "llama-quantize Q4_0, 2 threads" "$lq" --pure --output-tensor-type q4_0 --token-embedding-type q4_0 \
        "$in" "$work/ggml.gguf" Q4_0 2
    [ "$r" -gt 1 ] || grep -m1 '^version' "$work/out" || true
    echo "cat, page cache warm: $(secs cat "$in") s"
    timed "quant quantize --format gguf --gguf-type q4_0, 2 threads" "${q[@]}" quantize --in "$in" --format gguf \
        --gguf-type q4_0 --method rtn --threads 2 --include "$include" --out "$work/q4j.gguf"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
# the same tensors in both files, byte for byte (the last round's outputs)
"$java_bin" -cp "$root/quant-bench/target/benchmarks.jar" dev.quant4j.bench.GgufTensorsCompare \
    "$work/ggml.gguf" "$work/q4j.gguf" | tail -3
rm -f "$work/ggml.gguf" "$work/q4j.gguf"
