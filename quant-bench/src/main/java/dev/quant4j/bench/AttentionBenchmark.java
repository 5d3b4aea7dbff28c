package dev.quant4j.bench;

import dev.quant4j.kernel.AttentionKernels;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.tensor.Gaussian;
import java.util.Arrays;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The causal attention of one block's prefill, on one thread, three ways in one run: {@code doubleLoops}, plain loops
 * that accumulate scores, softmax and value sums in double, one query head at a time (the baseline); {@code
 * scalarKernel}, the reference {@link AttentionKernels} (float, fused multiply-adds);
 * {@code vectorKernel}, the kernels of this JVM. {@code shape} is {@code heads x kvHeads x headDim}; the queries,
 * keys and values are laid out as in {@code LlamaDecoder} ({@code [tokens, heads * headDim]} and {@code [tokens,
 * kvHeads * headDim]}). A score and a value sum are {@code 4 headDim} floating-point operations per query head and
 * visible key, {@code 2 heads headDim tokens (tokens + 1)} per prefill.
 *
 * <pre>
 * java --sun-misc-unsafe-memory-access=allow -jar quant-bench/target/benchmarks.jar AttentionBenchmark -wi 3 -i 5 -f 1
 * </pre>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {GemmBenchmark.VECTOR, "-Xmx4g"})
@State(Scope.Benchmark)
public class AttentionBenchmark {

    @Param({"512"})
    public int tokens;

    @Param({"8x8x64", "32x8x128"})
    public String shape;

    int heads;
    int kvHeads;
    int d;
    float[] q;
    float[] keys;
    float[] values;
    float[] context;
    float[] scratch;

    @Setup
    public void setUp() {
        String[] s = shape.split("x");
        heads = Integer.parseInt(s[0]);
        kvHeads = Integer.parseInt(s[1]);
        d = Integer.parseInt(s[2]);
        q = Gaussian.samples(1, tokens * heads * d, 1);
        keys = Gaussian.samples(2, tokens * kvHeads * d, 1);
        values = Gaussian.samples(3, tokens * kvHeads * d, 1);
        context = new float[tokens * heads * d];
        scratch = new float[AttentionKernels.attentionScratchSize(tokens, 0, d)];
    }

    @Benchmark
    public float[] vectorKernel() {
        return kernel(Kernels.get());
    }

    @Benchmark
    public float[] scalarKernel() {
        return kernel(Kernels.scalar());
    }

    private float[] kernel(AttentionKernels k) {
        int qDim = heads * d;
        int kvDim = kvHeads * d;
        int group = heads / kvHeads;
        for (int kv = 0; kv < kvHeads; kv++) {
            k.attention(
                    tokens,
                    0,
                    true,
                    d,
                    group,
                    q,
                    kv * group * d,
                    qDim,
                    keys,
                    kv * d,
                    values,
                    kv * d,
                    kvDim,
                    context,
                    kv * group * d,
                    qDim,
                    scratch);
        }
        return context;
    }

    /** Plain loops accumulating in double, one query head at a time, one thread. */
    @Benchmark
    public float[] doubleLoops() {
        int n = tokens;
        int qDim = heads * d;
        int kvDim = kvHeads * d;
        int group = heads / kvHeads;
        double scale = 1 / Math.sqrt(d);
        double[] p = new double[n];
        double[] acc = new double[d];
        for (int h = 0; h < heads; h++) {
            int kvOff = (h / group) * d;
            for (int i = 0; i < n; i++) {
                int qOff = i * qDim + h * d;
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j <= i; j++) {
                    int kOff = j * kvDim + kvOff;
                    double s = 0;
                    for (int c = 0; c < d; c++) {
                        s += (double) q[qOff + c] * keys[kOff + c];
                    }
                    p[j] = s * scale;
                    max = Math.max(max, p[j]);
                }
                double sum = 0;
                for (int j = 0; j <= i; j++) {
                    p[j] = Math.exp(p[j] - max);
                    sum += p[j];
                }
                Arrays.fill(acc, 0);
                for (int j = 0; j <= i; j++) {
                    int vOff = j * kvDim + kvOff;
                    for (int c = 0; c < d; c++) {
                        acc[c] += p[j] * values[vOff + c];
                    }
                }
                for (int c = 0; c < d; c++) {
                    context[qOff + c] = (float) (acc[c] / sum);
                }
            }
        }
        return context;
    }
}
