package dev.quant4j.bench;

import dev.quant4j.ggml.GgmlQuants;
import dev.quant4j.ggml.GgmlType;
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
 * them (its sizes: 4,096 values, L1-resident; 655,360, L3-resident): {@link GgmlQuants#quantizeRow} (the scalar
 * reference quantizer, ggml's {@code quantize_row_q*_ref}) and {@link GgmlQuants#dequantizeRow}. The {@code floatBytes}
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

    @Param({"q4_0", "q8_0"})
    public String type;

    @Param({"4096", "655360"})
    public int size;

    GgmlType t;
    float[] x;
    byte[] q;
    float[] y;

    @Setup
    public void setUp() {
        t = GgmlType.byName(type);
        x = Gaussian.samples(42, size, 1.0);
        q = new byte[(int) t.rowSize(size)];
        y = new float[size];
        GgmlQuants.quantizeRow(t, x, 0, q, 0, size);
    }

    @Benchmark
    public byte[] quantizeReference(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * size;
        GgmlQuants.quantizeRow(t, x, 0, q, 0, size);
        return q;
    }

    @Benchmark
    public float[] dequantize(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * size;
        GgmlQuants.dequantizeRow(t, q, 0, y, 0, size);
        return y;
    }
}
