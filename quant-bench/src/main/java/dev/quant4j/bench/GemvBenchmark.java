package dev.quant4j.bench;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.codebook.CodebookTensor;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.quant.CodebookScheme;
import dev.quant4j.quant.LinearScheme;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.ByteBuffer;
import java.util.concurrent.ForkJoinPool;
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
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Matrix-vector products {@code y = W x}, float activations, on {@code threads} threads: an FP32 Vector API GEMV (a
 * dot product per row; the baseline), the fused int4 g128 kernel ({@link QuantizedLinear}) for one activation row and
 * for a batch of eight, and the row-by-row path
 * for int8 g128 and NF4 (block 64). Each operation uses the next of several copies of the weight, together larger than
 * this machine's 480 MiB L3, so the weights stream from memory as in LLM decoding. Score: milliseconds per product
 * (bytes of weight per product: {@code QuantizedTensor.storageBytes()}, or {@code 4 * rows * cols} for FP32).
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector", "-Xmx12g"})
@State(Scope.Benchmark)
public class GemvBenchmark {

    /** Total bytes of weight copies cycled through: above the 480 MiB L3. */
    static final long WORKING_SET = 640L << 20;

    @Param({"4096x4096", "11008x4096"})
    public String shape;

    @Param({"1", "2"})
    public int threads;

    int rows;
    int cols;
    ForkJoinPool pool;
    float[] x;
    FloatMatrix x8;
    float[] y;
    float[][] fp32;
    QuantizedLinear[] int4;
    QuantizedLinear[] int8;
    QuantizedLinear[] nf4;
    long int4Bytes;
    long int8Bytes;
    long nf4Bytes;
    int next;

    @Setup(Level.Trial)
    public void setUp() {
        String[] rc = shape.split("x");
        rows = Integer.parseInt(rc[0]);
        cols = Integer.parseInt(rc[1]);
        pool = new ForkJoinPool(threads);
        FloatMatrix w = Gaussian.matrix("w", 42, rows, cols, 0.02);
        x = Gaussian.samples(7, cols, 1.0);
        x8 = Gaussian.matrix("x8", 8, 8, cols, 1.0);
        y = new float[rows];
        long fp32Bytes = 4L * rows * cols;
        fp32 = new float[(int) Math.max(2, WORKING_SET / fp32Bytes + 1)][];
        for (int i = 0; i < fp32.length; i++) {
            fp32[i] = w.toArray();
        }
        QuantizedTensor q4 = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(w);
        QuantizedTensor q8 = new RtnQuantizer(LinearScheme.asym(8, 128)).quantize(w);
        CodebookTensor n4 = new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(w);
        int4Bytes = q4.storageBytes();
        int8Bytes = q8.storageBytes();
        nf4Bytes = n4.storageBytes();
        int4 = copies(q4, int4Bytes);
        int8 = copies(q8, int8Bytes);
        nf4 = new QuantizedLinear[(int) Math.max(2, WORKING_SET / nf4Bytes + 1)];
        for (int i = 0; i < nf4.length; i++) {
            ByteBuffer codes = n4.packedCodes();
            byte[] packed = new byte[codes.remaining()];
            codes.get(packed);
            nf4[i] = QuantizedLinear.of(
                    new CodebookTensor(n4.name(), n4.scheme(), rows, cols, packed, n4.absmax()), null, pool);
        }
    }

    private QuantizedLinear[] copies(QuantizedTensor q, long bytes) {
        QuantizedLinear[] out = new QuantizedLinear[(int) Math.max(2, WORKING_SET / bytes + 1)];
        ByteBuffer codes = q.packedCodes();
        byte[] packed = new byte[codes.remaining()];
        codes.get(packed);
        for (int i = 0; i < out.length; i++) {
            // the public constructor copies the arrays: every copy is its own memory
            QuantizedTensor c =
                    new QuantizedTensor(q.name(), q.scheme(), rows, cols, q.packOrder(), packed, q.scales(), q.zeros());
            out[i] = QuantizedLinear.of(c, null, pool);
        }
        return out;
    }

    @TearDown
    public void tearDown() {
        pool.shutdown();
    }

    @Benchmark
    public float[] fp32VectorGemv() {
        float[] w = fp32[next++ % fp32.length];
        QuantKernels k = Kernels.get();
        int chunks = (rows + 63) / 64;
        Parallel.forEach(pool, chunks, ch -> {
            for (int r = ch * 64; r < Math.min(rows, ch * 64 + 64); r++) {
                y[r] = k.dot(w, r * cols, x, 0, cols);
            }
        });
        return y;
    }

    @Benchmark
    public float[] int4G128Fused() {
        int4[next++ % int4.length].forward(x, 0, y, 0);
        return y;
    }

    /** Eight activation rows at once ({@code Y = X W^T}, X [8, cols]): GFLOP/s = 2 * 8 * rows * cols / time. */
    @Benchmark
    public FloatMatrix int4G128Batch8() {
        return int4[next++ % int4.length].forward(x8);
    }

    @Benchmark
    public float[] int8G128RowByRow() {
        int8[next++ % int8.length].forward(x, 0, y, 0);
        return y;
    }

    @Benchmark
    public float[] nf4B64RowByRow() {
        nf4[next++ % nf4.length].forward(x, 0, y, 0);
        return y;
    }
}
