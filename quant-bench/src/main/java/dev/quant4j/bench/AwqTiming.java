package dev.quant4j.bench;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqResult;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.Locale;

/**
 * The end-to-end AWQ timing of docs/benchmarks.md: a {@code rows x columns} layer, {@code tokens} calibration tokens
 * streamed in batches of 2048 (N(0, 1) values, 4-bit, group 128), then llm-awq's scale and clip searches, on the
 * common pool (both cores of a two-core machine); one run after a warm-up.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp quant-bench/target/benchmarks.jar \
 *     dev.quant4j.bench.AwqTiming [columns=768] [rows=768] [tokens=65536]
 * </pre>
 */
public final class AwqTiming {

    private AwqTiming() {}

    public static void main(String[] args) {
        int columns = args.length > 0 ? Integer.parseInt(args[0]) : 768;
        int rows = args.length > 1 ? Integer.parseInt(args[1]) : 768;
        int tokens = args.length > 2 ? Integer.parseInt(args[2]) : 65536;
        int batch = 2048;
        FloatMatrix w = Gaussian.matrix("w", 42, rows, columns, 0.05);
        for (int rep = 0; rep < 2; rep++) {
            AwqStatistics stats = new AwqStatistics("layer", columns, tokens);
            for (int done = 0; done < tokens; done += batch) {
                int n = Math.min(batch, tokens - done);
                FloatMatrix x = Gaussian.matrix("x", 1000 + done, n, columns, 1.0); // not timed
                long t0 = System.nanoTime();
                stats.add(x);
                statsSeconds += (System.nanoTime() - t0) * 1e-9;
            }
            AwqResult r = new Awq(AwqConfig.defaults(4)).quantize(w, stats);
            if (rep == 1) {
                System.out.printf(
                        Locale.ROOT,
                        "awq [%d x %d], %d tokens: statistics %.2f s, scale search %.2f s (alpha %.2f), clip search"
                                + " %.2f s, mean squared output error %.4g (alpha 0: %.4g)%n",
                        rows,
                        columns,
                        tokens,
                        statsSeconds,
                        r.scaleSeconds(),
                        r.alpha(),
                        r.clipSeconds(),
                        r.loss(),
                        r.lossCurve()[0]);
            }
            statsSeconds = 0;
        }
    }

    private static double statsSeconds;
}
