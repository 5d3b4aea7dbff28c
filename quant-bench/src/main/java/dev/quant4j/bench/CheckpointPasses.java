package dev.quant4j.bench;

import dev.quant4j.io.SafeTensorsCheckpoint;
import dev.quant4j.pipeline.CheckpointQuantizer;
import dev.quant4j.scheme.LinearScheme;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.ForkJoinPool;

/**
 * Round-to-nearest (asymmetric 4-bit, groups of 128) of a safetensors file or folder, {@code passes} times in one JVM,
 * each pass timed: the first includes the JIT's compilation of the kernels, the later ones are the pipeline compiled
 * (file reads, the stages of {@code CheckpointStagesBenchmark}, the writes). The 2-D tensors are quantized
 * except embeddings and the output head, as {@code quant quantize} does by default; the output goes to a temporary
 * folder beside {@code /tmp} and is deleted after each pass.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx1g -cp quant-bench/target/benchmarks.jar \
 *     dev.quant4j.bench.CheckpointPasses /tmp/s7b/model-00002-of-00002.safetensors [threads=2] [passes=4]
 * </pre>
 */
public final class CheckpointPasses {

    private CheckpointPasses() {}

    public static void main(String[] args) throws IOException {
        Path in = Path.of(args[0]);
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        int passes = args.length > 2 ? Integer.parseInt(args[2]) : 4;
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            for (int p = 1; p <= passes; p++) {
                Path dir = Files.createTempDirectory(Path.of("/tmp"), "checkpoint-passes");
                Path out = dir.resolve("q.safetensors");
                long t0 = System.nanoTime();
                try (SafeTensorsCheckpoint ck = SafeTensorsCheckpoint.open(in)) {
                    CheckpointQuantizer.Summary s = new CheckpointQuantizer(
                                    CheckpointQuantizer.Method.rtn(LinearScheme.asym(4, 128)),
                                    e -> e.shape().length == 2
                                                    && !e.name().contains("embed")
                                                    && !e.name().contains("lm_head")
                                            ? CheckpointQuantizer.Choice.QUANTIZE
                                            : CheckpointQuantizer.Choice.COPY,
                                    pool)
                            .quantize(ck, out, false, (t, b) -> {});
                    System.out.printf(
                            Locale.ROOT,
                            "pass %d: %.2f s, %d weights quantized%n",
                            p,
                            (System.nanoTime() - t0) / 1e9,
                            s.weights().size());
                } finally {
                    Files.deleteIfExists(out);
                    Files.deleteIfExists(dir);
                }
            }
        } finally {
            pool.shutdown();
        }
    }
}
