package dev.quant4j.bench;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
import dev.quant4j.kernel.GgmlBlockKernels;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.tensor.Gaussian;
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
 * ggml's block types in quant4j, one thread, one row of {@code size} values, as ggml's {@code test-quantize-perf} times
 * them (its sizes: 4,096 values, L1-resident; 655,360, L3-resident): the kernels of {@link GgmlBlockKernels}, the
 * scalar reference ({@code kernels=scalar}, ggml's {@code quantize_row_q*_ref} and {@code dequantize_row_q*} in Java)
 * or the Vector API ones of this JVM ({@code kernels=vector}), byte-identical to it. q6_K's quantizer goes
 * through {@link GgmlQuants#quantizeRow} whatever {@code kernels} says: its scale search is then this JVM's kernel (the
 * scalar one with {@code -Dquant4j.vector=false}). The {@code floatBytes}
 * secondary result is float32 bytes per second, which test-quantize-perf prints as "float32 throughput".
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class GgmlQuantsBenchmark {

    @Param({"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_K", "q5_K", "q6_K"})
    public String type;

    @Param({"4096", "655360"})
    public int size;

    @Param({"scalar", "vector"})
    public String kernels;

    GgmlType t;
    GgmlBlockKernels k;
    float[] x;
    byte[] q;
    float[] y;

    @Setup
    public void setUp() {
        t = GgmlType.byName(type);
        k = kernels.equals("scalar") ? Kernels.ggmlScalar() : Kernels.ggml();
        if (kernels.equals("vector") && k == Kernels.ggmlScalar()) {
            throw new IllegalStateException("no vector kernels in this JVM (--add-modules jdk.incubator.vector?)");
        }
        x = Gaussian.samples(42, size, 1.0);
        q = new byte[(int) t.rowSize(size)];
        y = new float[size];
        GgmlQuants.quantizeRow(t, x, 0, q, 0, size);
    }

    @Benchmark
    public byte[] quantize(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * size;
        switch (t) {
            case Q4_0 -> k.quantizeQ4_0(x, 0, q, 0, size);
            case Q4_1 -> k.quantizeQ4_1(x, 0, q, 0, size);
            case Q5_0 -> k.quantizeQ5_0(x, 0, q, 0, size);
            case Q5_1 -> k.quantizeQ5_1(x, 0, q, 0, size);
            case Q8_0 -> k.quantizeQ8_0(x, 0, q, 0, size);
            case Q4_K -> k.quantizeQ4_K(x, 0, q, 0, size);
            case Q5_K -> k.quantizeQ5_K(x, 0, q, 0, size);
            default -> GgmlQuants.quantizeRow(t, x, 0, q, 0, size);
        }
        return q;
    }

    @Benchmark
    public float[] dequantize(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * size;
        switch (t) {
            case Q4_0 -> k.dequantizeQ4_0(q, 0, y, 0, size);
            case Q4_1 -> k.dequantizeQ4_1(q, 0, y, 0, size);
            case Q5_0 -> k.dequantizeQ5_0(q, 0, y, 0, size);
            case Q5_1 -> k.dequantizeQ5_1(q, 0, y, 0, size);
            case Q8_0 -> k.dequantizeQ8_0(q, 0, y, 0, size);
            case Q4_K -> k.dequantizeQ4_K(q, 0, y, 0, size);
            case Q5_K -> k.dequantizeQ5_K(q, 0, y, 0, size);
            case Q6_K -> k.dequantizeQ6_K(q, 0, y, 0, size);
            default -> throw new IllegalStateException(type);
        }
        return y;
    }
}
