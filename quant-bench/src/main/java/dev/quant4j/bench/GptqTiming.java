package dev.quant4j.bench;

import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.GptqResult;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.Locale;

/**
 * The end-to-end GPTQ timing of docs/benchmarks.md: a {@code columns x columns} layer, {@code tokens} calibration
 * tokens streamed in batches of {@code batch} (eight distinct random batches, cycled: the cost does not depend on the
 * values), then GPTQ at 4 bits per channel and at group 128 with act-order. Wall-clock seconds on the common pool
 * (both cores of a two-core machine), one run each after a short warm-up, so a long job reads as users see it.
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -Xmx12g -cp quant-bench/target/benchmarks.jar \
 *     dev.quant4j.bench.GptqTiming [columns=4096] [tokens=262144] [batch=2048]
 * </pre>
 */
public final class GptqTiming {

    private GptqTiming() {}

    public static void main(String[] args) {
        int columns = args.length > 0 ? Integer.parseInt(args[0]) : 4096;
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 262144;
        int batch = args.length > 2 ? Integer.parseInt(args[2]) : 2048;
        FloatMatrix[] batches = new FloatMatrix[8];
        for (int i = 0; i < batches.length; i++) {
            batches[i] = Gaussian.matrix("x" + i, 100 + i, batch, columns, 1.0);
        }
        FloatMatrix w = Gaussian.matrix("w", 42, columns, columns, 0.02);

        HessianAccumulator warm = new HessianAccumulator("warm-up", columns);
        warm.add(batches[0]);
        new Gptq(GptqConfig.defaults(4)).quantize(w, warm);

        HessianAccumulator h = new HessianAccumulator("layer", columns);
        long t0 = System.nanoTime();
        for (int done = 0, i = 0; done < tokens; done += batch, i++) {
            h.add(batches[i % batches.length]);
        }
        double hs = (System.nanoTime() - t0) * 1e-9;
        System.out.printf(
                Locale.ROOT,
                "hessian: %d tokens x %d features in %.2f s, %.1f GFLOP/s (tokens * n^2)%n",
                h.tokens(),
                columns,
                hs,
                (double) h.tokens() * columns * columns / hs * 1e-9);
        for (GptqConfig config : new GptqConfig[] {
            GptqConfig.defaults(4), GptqConfig.defaults(4).withGroupSize(128).withActOrder(true)
        }) {
            long t1 = System.nanoTime();
            GptqResult r = new Gptq(config).quantize(w, h);
            double qs = (System.nanoTime() - t1) * 1e-9;
            double n = columns;
            System.out.printf(
                    Locale.ROOT,
                    "gptq %s act-order=%b: %.2f s (damping + Cholesky + inverse %.2f s at %.1f GFLOP/s, column loop"
                            + " %.2f s at %.1f GFLOP/s), loss %.6g%n",
                    config.scheme(),
                    config.actOrder(),
                    qs,
                    r.diagnostics().hinvSeconds(),
                    2 * n * n * n / 3 / r.diagnostics().hinvSeconds() * 1e-9,
                    r.diagnostics().quantizeSeconds(),
                    w.rows() * n * n / r.diagnostics().quantizeSeconds() * 1e-9,
                    r.loss());
            long t2 = System.nanoTime();
            double err = h.outputError(w, r.tensor().dequantize());
            double es = (System.nanoTime() - t2) * 1e-9;
            System.out.printf(
                    Locale.ROOT,
                    "  output error over the calibration tokens %.6g, computed on request in %.2f s%n",
                    err,
                    es);
        }
    }
}
