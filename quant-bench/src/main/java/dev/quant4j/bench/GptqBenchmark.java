package dev.quant4j.bench;

import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.GptqResult;
import dev.quant4j.gptq.HessianAccumulator;
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
 * GPTQ's two costs on a square layer of {@code n} input features, on both cores (the common pool plus the caller):
 * accumulating the Hessian from one batch of 2048 tokens, and quantizing {@code W [n, n]} (damping, Cholesky,
 * inverse and the column loop). Score: milliseconds per operation (single shots: one operation is long). GFLOP/s:
 * {@code 2048 n^2 / time} for the Hessian (a SYRK: {@code n^2 / 2} multiply-adds per token), and for GPTQ {@code 2 n^3
 * / 3} (Cholesky and triangular inverse) {@code + n^3} (the updates) over the time.
 */
@BenchmarkMode(Mode.SingleShotTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2)
@Measurement(iterations = 5)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx8g"})
@State(Scope.Benchmark)
public class GptqBenchmark {

    static final int TOKENS = 2048;

    @Param({"1024", "4096"})
    public int n;

    /** Bits of the codes: 4 by default; GPTQ takes 2 to 8 ({@code -p bits=2,3,4,8}). */
    @Param({"4"})
    public int bits;

    FloatMatrix x;
    FloatMatrix w;
    HessianAccumulator hessian;

    @Setup(Level.Trial)
    public void setUp() {
        x = Gaussian.matrix("x", 7, TOKENS, n, 1.0);
        w = Gaussian.matrix("w", 42, n, n, 0.02);
        hessian = new HessianAccumulator("layer", n);
        hessian.add(x);
    }

    @Benchmark
    public HessianAccumulator hessianBatch() {
        hessian.add(x);
        return hessian;
    }

    private GptqResult quantize(GptqConfig config) {
        return new Gptq(config).quantize(w, hessian);
    }

    @Benchmark
    public GptqResult quantizePerChannel() {
        return quantize(GptqConfig.defaults(bits));
    }

    @Benchmark
    public GptqResult quantizeG128ActOrder() {
        return quantize(GptqConfig.defaults(bits).withGroupSize(128).withActOrder(true));
    }
}
