package dev.quant4j.bench;

import com.github.tjake.jlama.safetensors.DType;
import com.github.tjake.jlama.tensor.AbstractTensor;
import com.github.tjake.jlama.tensor.FloatBufferTensor;
import com.github.tjake.jlama.tensor.Q4ByteBufferTensor;
import com.github.tjake.jlama.tensor.TensorShape;
import com.github.tjake.jlama.tensor.operations.PanamaTensorOperations;
import com.github.tjake.jlama.util.MachineSpec;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
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
 * Matrix-vector products {@code y = W x} on {@code threads} threads: an FP32 Vector API GEMV (a dot product per row;
 * the baseline), the fused int4 g128 kernel ({@link QuantizedLinear}) with float activations, with int8 activations,
 * and for a batch of eight float rows, the row-by-row path for int8 g128 and NF4 (block 64), and the peer: Jlama's
 * Q4 (blocks of 32, its {@code PanamaTensorOperations}, the pure-Java kernels it picks for this CPU) with float and
 * with int8 activations (Jlama's Q8, quantized in the measured call as ours are). {@code streamRead} sums the FP32
 * weight without multiplying: the memory limit in the same run. Each operation uses the next of several copies of
 * the weight, together larger than this machine's 480 MiB L3, so the weights stream from memory as in LLM decoding.
 * Score: milliseconds per product (bytes of weight per product: {@code QuantizedTensor.storageBytes()}, or {@code 4 *
 * rows * cols} for FP32; Jlama's Q4 stores 16 bytes and one float per 32 weights).
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

    /** Total bytes of weight copies cycled through: above the 480 MiB L3 (smaller in the smoke test). */
    long workingSet = 640L << 20;

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
    QuantizedLinear[] int4Int8;
    Q4ByteBufferTensor[] jlamaQ4;
    PanamaTensorOperations jlamaOps;
    FloatBufferTensor jlamaX;
    FloatBufferTensor jlamaY;
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
        fp32 = new float[(int) Math.max(2, workingSet / fp32Bytes + 1)][];
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
        int4Int8 = new QuantizedLinear[int4.length];
        for (int i = 0; i < int4.length; i++) {
            int4Int8[i] = int4[i].withInt8Activations(true); // shares the copy's arrays
        }
        setUpJlama(w);
        int8 = copies(q8, int8Bytes);
        nf4 = new QuantizedLinear[(int) Math.max(2, workingSet / nf4Bytes + 1)];
        for (int i = 0; i < nf4.length; i++) {
            ByteBuffer codes = n4.packedCodes();
            byte[] packed = new byte[codes.remaining()];
            codes.get(packed);
            nf4[i] = QuantizedLinear.of(
                    new CodebookTensor(n4.name(), n4.scheme(), rows, cols, packed, n4.absmax()), null, pool);
        }
    }

    private void setUpJlama(FloatMatrix w) {
        jlamaOps = new PanamaTensorOperations(MachineSpec.VECTOR_TYPE);
        FloatBufferTensor wf = new FloatBufferTensor(rows, cols);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                wf.set(w.get(r, c), r, c);
            }
        }
        Q4ByteBufferTensor q = new Q4ByteBufferTensor(wf);
        long bytes = (long) rows * cols / 2 + 4L * rows * cols / Q4ByteBufferTensor.BLOCK_SIZE;
        jlamaQ4 = new Q4ByteBufferTensor[(int) Math.max(2, workingSet / bytes + 1)];
        ByteBuffer codes = q.getMemorySegment().asByteBuffer();
        FloatBuffer factors = q.getBlockF()
                .getMemorySegment()
                .asByteBuffer()
                .order(ByteOrder.nativeOrder())
                .asFloatBuffer();
        for (int i = 0; i < jlamaQ4.length; i++) {
            ByteBuffer c = ByteBuffer.allocateDirect(codes.capacity()).order(ByteOrder.LITTLE_ENDIAN);
            c.put(codes.duplicate()).flip();
            FloatBuffer f = ByteBuffer.allocateDirect(4 * factors.capacity())
                    .order(ByteOrder.nativeOrder())
                    .asFloatBuffer();
            f.put(factors.duplicate()).flip();
            FloatBufferTensor blockF = new FloatBufferTensor(f, q.getBlockF().shape(), false);
            jlamaQ4[i] = new Q4ByteBufferTensor("w" + i, c, blockF, TensorShape.of(rows, cols), false);
        }
        jlamaX = new FloatBufferTensor(1, cols);
        for (int c = 0; c < cols; c++) {
            jlamaX.set(x[c], 0, c);
        }
        jlamaY = new FloatBufferTensor(1, rows);
    }

    private QuantizedLinear[] copies(QuantizedTensor q, long bytes) {
        QuantizedLinear[] out = new QuantizedLinear[(int) Math.max(2, workingSet / bytes + 1)];
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

    /** The fused int4 g128 kernel on int8 activations (quantized per group of 128 inside the measured call). */
    @Benchmark
    public float[] int4G128FusedInt8() {
        int4Int8[next++ % int4Int8.length].forward(x, 0, y, 0);
        return y;
    }

    // The same products with the kernels of other vector widths (each in its own JVM: the width is fixed per JVM).

    @Benchmark
    @Fork(
            value = 1,
            jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Xmx12g", "-Dquant4j.vector.bits=256"})
    public float[] fp32VectorGemv256() {
        return fp32VectorGemv();
    }

    @Benchmark
    @Fork(
            value = 1,
            jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Xmx12g", "-Dquant4j.vector.bits=128"})
    public float[] fp32VectorGemv128() {
        return fp32VectorGemv();
    }

    @Benchmark
    @Fork(
            value = 1,
            jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Xmx12g", "-Dquant4j.vector.bits=256"})
    public float[] int4G128Fused256() {
        return int4G128Fused();
    }

    @Benchmark
    @Fork(
            value = 1,
            jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Xmx12g", "-Dquant4j.vector.bits=128"})
    public float[] int4G128Fused128() {
        return int4G128Fused();
    }

    @Benchmark
    @Fork(
            value = 1,
            jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Xmx12g", "-Dquant4j.vector=false"})
    public float[] int4G128FusedScalar() {
        return int4G128Fused();
    }

    /** Jlama's Q4 GEMV, float activations: rows split in chunks of 256 over the same pool as ours. */
    @Benchmark
    public AbstractTensor jlamaQ4F32() {
        Q4ByteBufferTensor w = jlamaQ4[next++ % jlamaQ4.length];
        Parallel.forEach(pool, (rows + 255) / 256, ch -> {
            int r0 = ch * 256;
            jlamaOps.batchDotProduct(jlamaY, jlamaX, w, 0, 0, cols, 0, r0, Math.min(256, rows - r0));
        });
        return jlamaY;
    }

    /** Jlama's Q4 GEMV on its Q8 activations, quantized in the call (blocks of 32, as llama.cpp's q8_0). */
    @Benchmark
    public AbstractTensor jlamaQ4I8() {
        Q4ByteBufferTensor w = jlamaQ4[next++ % jlamaQ4.length];
        AbstractTensor x8 = jlamaOps.quantize(jlamaX, DType.I8, 0, cols);
        Parallel.forEach(pool, (rows + 255) / 256, ch -> {
            int r0 = ch * 256;
            jlamaOps.batchDotProduct(jlamaY, x8, w, 0, 0, cols, 0, r0, Math.min(256, rows - r0));
        });
        return jlamaY;
    }

    /**
     * Reads the next FP32 copy (the bytes {@link #fp32VectorGemv} reads) and only adds them up: the memory limit in
     * the same run. Bytes per second = {@code 4 * rows * cols / time}.
     */
    @Benchmark
    public float[] streamRead() {
        float[] w = fp32[next++ % fp32.length];
        int chunks = (rows + 63) / 64;
        Parallel.forEach(pool, chunks, ch -> {
            y[ch] = MemoryBandwidthBenchmark.sum(w, ch * 64 * cols, Math.min(rows, ch * 64 + 64) * cols);
        });
        return y;
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
