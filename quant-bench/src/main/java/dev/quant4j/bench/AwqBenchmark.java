package dev.quant4j.bench;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqResult;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * AWQ on an {@code n x n} layer, both cores: streaming one batch of 2048 calibration tokens into the statistics, and
 * the whole search (20 scale candidates, then the clip search) from statistics of 8192 tokens, 4 bits, group 128.
 * Score: milliseconds per operation (single shots).
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3)
@Measurement(iterations = 5)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Benchmark)
public class AwqBenchmark {

    static final int BATCH = 2048;
    static final int TOKENS = 4 * BATCH;

    @Param({"768"})
    public int n;

    /** Bits of the codes: 4 by default, as llm-awq ({@code -p bits=3,4} for others). */
    @Param({"4"})
    public int bits;

    FloatMatrix w;
    FloatMatrix[] batches;
    AwqStatistics stats;

    @Setup(Level.Trial)
    public void setUp() {
        w = Gaussian.matrix("w", 42, n, n, 0.05);
        batches = new FloatMatrix[TOKENS / BATCH];
        for (int i = 0; i < batches.length; i++) {
            batches[i] = Gaussian.matrix("x", 100 + i, BATCH, n, 1.0);
        }
        stats = new AwqStatistics("layer", n, TOKENS);
        for (FloatMatrix b : batches) {
            stats.add(b);
        }
    }

    @Benchmark
    public AwqStatistics statisticsBatch() {
        AwqStatistics s = new AwqStatistics("layer", n, BATCH);
        s.add(batches[0]);
        return s;
    }

    @Benchmark
    public AwqResult searchG128() {
        return new Awq(AwqConfig.defaults(bits)).quantize(w, stats);
    }
}
