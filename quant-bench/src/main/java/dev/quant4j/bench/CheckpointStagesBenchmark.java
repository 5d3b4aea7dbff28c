package dev.quant4j.bench;

import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.ErrorMetrics;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Map;
import java.util.concurrent.ForkJoinPool;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The stages {@code CheckpointQuantizer} runs on each block of a BF16 weight, one thread, compiled (JMH warms each up
 * first): {@code widen} (BF16 to float32 from off-heap memory, as from a mapped or read buffer), {@code quantize}
 * (round-to-nearest, asymmetric 4-bit, groups of 128, one thread), {@code parts} (the quantized block as the byte
 * arrays the writer takes), {@code errors} (the error figures: each row dequantized again and compared with the
 * input while it is in cache), and {@code pipeline}, all of them in turn on one block, as a task of the quantizer runs
 * them (without the file I/O). Blocks of 4096 columns: 8 rows (32K values, 128 KiB as float32, within L2) and 64 rows
 * (262,144 values, the quantizer's block, 1 MiB). The {@code floatBytes} secondary result is float32 bytes of the
 * block per second, 4 per weight: {@code 4e9 / floatBytes} is nanoseconds per weight. {@code
 * MemoryBandwidthBenchmark.read} in the same run is the machine's limit.
 *
 * <pre>
 * java --sun-misc-unsafe-memory-access=allow -jar quant-bench/target/benchmarks.jar \
 *     'CheckpointStagesBenchmark|MemoryBandwidthBenchmark.read' -wi 3 -i 5 -f 1
 * </pre>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class CheckpointStagesBenchmark {

    static final int COLS = 4096;

    @Param({"8", "64"})
    public int rows;

    private final QuantKernels k = Kernels.get();
    private MemorySegment bf16;
    private float[] values;
    private ForkJoinPool pool;
    private RtnQuantizer quantizer;
    private QuantizedTensor q;
    private FloatMatrix w;

    @Setup
    public void setUp() {
        int n = rows * COLS;
        float[] x = Gaussian.samples(7, n, 0.02);
        bf16 = Arena.ofAuto().allocate(2L * n, 64);
        for (int i = 0; i < n; i++) {
            bf16.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(x[i]) >>> 16));
        }
        values = new float[n];
        k.bf16ToFloat(bf16, 0, n, values, 0);
        pool = new ForkJoinPool(1);
        quantizer = new RtnQuantizer(LinearScheme.asym(4, 128), pool);
        w = FloatMatrix.of("w", rows, COLS, values, 0);
        q = (QuantizedTensor) quantizer.quantize(w);
    }

    @TearDown
    public void tearDown() {
        pool.shutdown();
    }

    @Benchmark
    public float[] widen(LinearRtnBenchmark.Bytes b) {
        k.bf16ToFloat(bf16, 0, values.length, values, 0);
        b.floatBytes += 4L * values.length;
        return values;
    }

    @Benchmark
    public Object quantize(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * values.length;
        return quantizer.quantize(w);
    }

    @Benchmark
    public Map<String, byte[]> parts(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * values.length;
        return QuantizedSafeTensors.parts(q);
    }

    @Benchmark
    public ErrorMetrics.Accumulator errors(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * values.length;
        return new ErrorMetrics.Accumulator().add(w, q);
    }

    @Benchmark
    public ErrorMetrics.Accumulator pipeline(LinearRtnBenchmark.Bytes b) {
        k.bf16ToFloat(bf16, 0, values.length, values, 0);
        QuantizedTensor t = (QuantizedTensor) quantizer.quantize(w);
        QuantizedSafeTensors.parts(t);
        b.floatBytes += 4L * values.length;
        return new ErrorMetrics.Accumulator().add(w, t);
    }
}
