#!/usr/bin/env bash
# Measures quant quantize/dequantize on a 7B-shaped checkpoint beside reading it (docs/scaling.md), in one sitting:
#
#   scripts/measure-7b.sh [WORK_DIR [SHAPE]]     default /tmp/quant4j-7b and 7b (about 40 GB free); tiny for a dry run
#
# Writes the checkpoint (random BF16, Llama-2-7B's shapes in the Hub's two shards) with the bench module's
# SyntheticCheckpoint if WORK_DIR/s7b does not exist, then times `cat` of the input (page cache warm), RTN g128 on two
# threads and one, NF4, dequantize of the NF4 output to BF16 beside writing as many bytes with `cat`, GGUF q8_0 and q4_0
# output (each after a warm `cat`), ONNX output of a model of 21 Llama-2-7B MLP layers with external data (written by
# SyntheticOnnx if WORK_DIR/onnxs does not exist), and, when this user may drop the page cache
# (/proc/sys/vm/drop_caches), `cat` and RTN again from a cold cache. Every quant command runs with -Xmx1g. Run it
# alone on the machine (flock /tmp/bench.lock scripts/measure-7b.sh), and note the load average it prints.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-/tmp/quant4j-7b}"
shape="${2:-7b}"
# shellcheck source=scripts/find-java25.sh
. "$root/scripts/find-java25.sh"
java_bin=$(find_java25) || { echo "measure-7b: needs a JDK 25 or newer (set JAVA_HOME)" >&2; exit 1; }
(cd "$root" && mvn -B -q -pl quant-core,quant-cli,quant-bench -am package -DskipTests)
mkdir -p "$work"
in="$work/s7b"
if [ ! -d "$in" ]; then
    "$java_bin" --add-modules jdk.incubator.vector -cp "$root/quant-bench/target/benchmarks.jar" \
        dev.quant4j.bench.SyntheticCheckpoint "$in" "$shape"
fi
q=("$java_bin" -Xmx1g --add-modules jdk.incubator.vector -jar "$root/quant-cli/target/quant.jar")
secs() { local s e; s=$(date +%s.%N); "$@" > /dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }
run() { # LABEL COMMAND...: wall time, user CPU, peak RSS and the command's last line
    local label=$1; shift
    /usr/bin/time -f "%e %U %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
    read -r wall user rss < "$work/time"
    echo "$label: wall $wall s, user $user s, peak RSS $(( rss / 1024 )) MB | $(tail -1 "$work/out")"
}
drop() { sync; echo 1 > /proc/sys/vm/drop_caches; }
# Reads FILES twice so that they are in the page cache for the timed `cat` that follows: first dropping the cache when
# allowed, since pages read twice before (other files, earlier runs) are kept in preference to pages read once
warm() { if [ -w /proc/sys/vm/drop_caches ]; then drop; fi; cat "$@" > /dev/null; cat "$@" > /dev/null; }
shards=("$in"/model-*.safetensors)
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
warm "${shards[@]}"
echo "cat, page cache warm: $(secs cat "${shards[@]}") s"
rm -rf "$work/q"; run "quantize rtn g128, 2 threads" "${q[@]}" quantize --in "$in" --out "$work/q" --method rtn --group-size 128 --threads 2
rm -rf "$work/q"; run "quantize rtn g128, 1 thread" "${q[@]}" quantize --in "$in" --out "$work/q" --method rtn --group-size 128 --threads 1
rm -rf "$work/q"; run "quantize nf4, 2 threads" "${q[@]}" quantize --in "$in" --out "$work/q" --method nf4 --threads 2
echo "cat of the nf4 output, warm: $(secs cat "$work"/q/model-*.safetensors) s"
rm -rf "$work/d"; run "dequantize nf4 to bf16, 2 threads" "${q[@]}" dequantize --in "$work/q" --out "$work/d" --dtype bf16 --threads 2
rm -rf "$work/d" "$work/q"
# what writing the dequantized model's bytes costs by itself: the input shards (as many bytes) into one file
echo "cat of both shards into a file (writing as many bytes as dequantize): $(secs sh -c 'cat "$@" > "$0"' "$work/copy" "${shards[@]}") s"
rm -f "$work/copy"
for t in q8_0 q4_0; do
    warm "${shards[@]}"
    echo "cat, page cache warm: $(secs cat "${shards[@]}") s"
    run "quantize --format gguf --gguf-type $t, 2 threads" "${q[@]}" quantize --in "$in/model.safetensors.index.json" \
        --format gguf --gguf-type "$t" --method rtn --threads 2 --out "$work/q.gguf"
    rm -f "$work/q.gguf"
done
onnx="$work/onnxs"
if [ ! -d "$onnx" ]; then
    layers=21; [ "$shape" = 7b ] || layers=1
    "$java_bin" --add-modules jdk.incubator.vector -cp "$root/quant-bench/target/benchmarks.jar" \
        dev.quant4j.bench.SyntheticOnnx "$onnx" "$layers"
fi
warm "$onnx"/model.onnx*
echo "cat of the ONNX model and its data, page cache warm: $(secs cat "$onnx"/model.onnx*) s"
rm -rf "$work/oq"; mkdir -p "$work/oq"
run "quantize --format onnx rtn 4-bit g128, 2 threads" "${q[@]}" quantize --format onnx --in "$onnx/model.onnx" \
    --out "$work/oq/q.onnx" --method rtn --bits 4 --group-size 128 --threads 2
rm -rf "$work/oq"
if [ -w /proc/sys/vm/drop_caches ]; then
    drop
    echo "cat, page cache dropped: $(secs cat "${shards[@]}") s"
    drop
    run "quantize rtn g128, page cache dropped" "${q[@]}" quantize --in "$in" --out "$work/q" --method rtn --group-size 128 --threads 2
    rm -rf "$work/q"
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
