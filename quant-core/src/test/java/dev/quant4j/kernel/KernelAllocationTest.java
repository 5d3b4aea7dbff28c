package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.Symmetry;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * The hot vector kernels allocate nothing once the JIT has compiled them. This is the guard against the Vector API's
 * main hazard here: when C2 declines to inline one of our helpers that takes or returns a vector ({@code
 * NodeCountInliningCutoff} in {@code -XX:+PrintInlining}, typically after a method grew), it boxes that vector on the
 * heap in every iteration, and the kernel becomes 2-5x slower with the same results, so no equality test notices. A
 * boxed vector allocates every call; the unboxed kernels allocate nothing (their buffers are per thread).
 *
 * <p>Each kernel runs until its allocation per call drops to zero (compiled) or a generous time budget ends; a failure
 * names the kernel and its bytes per call.
 *
 * <p>Opt-in ({@code -Dquant4j.allocationTest=true}), not in the default build: C2's inlining is not the same from one
 * JVM to the next (compilation order and profiles differ), and runs of this test found boxing now and then that the
 * previous run of the same code had not: 6,144 bytes per 3-bit {@code quantizeGroups} call once with a small helper
 * in the loop, 1.4 MB per {@code quantizeBlocks4} call at 128 bits (the scalar fallback calling the vector encoder,
 * whose helper takes vectors) once; after that was fixed, once in about twenty JVMs the codebook encoder's threshold
 * loop, where a loop-carried vector was the receiver of a call that C2 could not devirtualize without a type profile
 * (the rules are in {@code VectorShapes}' class comment). A diagnostic to run several times after changing a
 * kernel, not a gate.
 */
@EnabledIfSystemProperty(named = "quant4j.allocationTest", matches = "true")
class KernelAllocationTest {

    /**
     * {@code com.sun.management.ThreadMXBean.getCurrentThreadAllocatedBytes()} of the platform bean, bound to it. Looked
     * up reflectively: the tests compile inside quant-core's module, which does not read the management modules (and
     * must not, for this).
     */
    private static final MethodHandle ALLOCATED = allocatedBytes();

    private static MethodHandle allocatedBytes() {
        try {
            Object bean = Class.forName("java.lang.management.ManagementFactory")
                    .getMethod("getThreadMXBean")
                    .invoke(null);
            Class<?> type = Class.forName("com.sun.management.ThreadMXBean");
            return MethodHandles.publicLookup()
                    .findVirtual(type, "getCurrentThreadAllocatedBytes", MethodType.methodType(long.class))
                    .bindTo(bean);
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("this JVM cannot count allocated bytes per thread", e);
        }
    }

    private static long allocated() {
        try {
            return (long) ALLOCATED.invokeExact();
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static final long BUDGET_NANOS = 60_000_000_000L;

    static volatile Object sink;

    /** Where the products' results go (a float field: no boxing). */
    static float total;

    /** Where {@code minMax} results go. */
    static long packedMinMax;

    /** Bytes this thread allocates per call of {@code r}, over {@code calls} calls. */
    static long bytesPerCall(Runnable r, int calls) {
        long before = allocated();
        for (int i = 0; i < calls; i++) {
            r.run();
        }
        return (allocated() - before) / calls;
    }

    /** Bytes per call once nothing changes any more: runs until they reach zero or the budget is spent. */
    static long steadyBytesPerCall(Runnable r) {
        long deadline = System.nanoTime() + BUDGET_NANOS;
        long perCall;
        do {
            perCall = bytesPerCall(r, 500);
        } while (perCall > 0 && System.nanoTime() < deadline);
        return perCall;
    }

    @Test
    void theMeasureSeesAnAllocation() {
        // the guard itself can fail: an allocating call stays above zero (and takes one short budget to find out)
        assertThat(bytesPerCall(() -> sink = new byte[256], 500)).isGreaterThanOrEqualTo(256);
    }

    @Test
    void hotVectorKernelsDoNotAllocate() {
        QuantKernels k = Kernels.get();
        assertThat(k.name()).startsWith("vector-");
        int n = 4096;
        int g = 128;
        SplittableRandom r = new SplittableRandom(7);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        float[] scales = new float[n / g];
        byte[] zeros = new byte[n / g];
        byte[] packed = new byte[n];
        float[] out = new float[8 * n];
        k.quantizeGroups(x, 0, n / g, g, 4, Symmetry.ASYM, 0, scales, 0, zeros, 0, packed, 0);
        float[] xPrepared = new float[8 * n];
        for (int b = 0; b < 8; b++) {
            PackedProductKernels.deinterleaveForNibbles(x, 0, n, xPrepared, b * n);
        }
        short[] xq = new short[n];
        float[] xScales = new float[n / g];
        PackedProductKernels.quantizeActivationsInt8(x, 0, n, g, xq, 0, xScales, 0);
        float[] absmax = new float[n / 64];
        float[] nf4 = Codebook.NF4.table();
        float[] thresholds = Codebook.NF4.thresholds();

        for (int bits : new int[] {4, 8, 3, 2}) {
            assertThat(steadyBytesPerCall(() ->
                            k.quantizeGroups(x, 0, n / g, g, bits, Symmetry.ASYM, 0, scales, 0, zeros, 0, packed, 0)))
                    .as("quantizeGroups, %d bits", bits)
                    .isZero();
        }
        byte[] codes = new byte[n];
        assertThat(steadyBytesPerCall(() -> k.quantize(x, 0, n, 0.01f, 8f, 0, 15, codes, 0)))
                .as("quantize")
                .isZero();
        java.lang.foreign.MemorySegment halves =
                java.lang.foreign.Arena.ofAuto().allocate(2L * n);
        float[] widened = new float[n];
        assertThat(steadyBytesPerCall(() -> k.bf16ToFloat(halves, 0, n, widened, 0)))
                .as("bf16ToFloat")
                .isZero();
        assertThat(steadyBytesPerCall(() -> packedMinMax += k.minMax(x, 0, n)))
                .as("minMax")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.encodeCodebook(x, 0, n, 0.5f, thresholds, false, codes, 0)))
                .as("encodeCodebook")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeGroups(packed, 0, n, 4, g, scales, 0, zeros, 0, out, 0)))
                .as("dequantizeGroups, 4 bits")
                .isZero();
        assertThat(steadyBytesPerCall(
                        () -> k.quantizeBlocks4(x, 0, n / 64, 64, thresholds, false, absmax, 0, packed, 0)))
                .as("quantizeBlocks4 (NF4)")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.decodeBlocks4(packed, 0, n / 64, 64, nf4, absmax, 0, out, 0)))
                .as("decodeBlocks4 (NF4)")
                .isZero();
        assertThat(steadyBytesPerCall(() -> total += k.dotNibbles(packed, 0, xPrepared, 0, n, g, scales, 0)))
                .as("dotNibbles")
                .isZero();
        assertThat(steadyBytesPerCall(() -> total += k.dotNibblesInt8(packed, 0, xq, 0, n, g, scales, 0, xScales, 0)))
                .as("dotNibblesInt8")
                .isZero();
        assertThat(steadyBytesPerCall(
                        () -> k.dotNibbles2x8(packed, 0, n / 2, xPrepared, 0, n, n, g, scales, 0, 0, out, 0)))
                .as("dotNibbles2x8")
                .isZero();
        // a prefill of 64 tokens, two query heads of 64 on one key/value head (the work array is the caller's)
        int tokens = 64;
        int d = 64;
        float[] q = new float[tokens * 2 * d];
        float[] kv = new float[tokens * d];
        for (int i = 0; i < kv.length; i++) {
            q[i] = (float) r.nextGaussian();
            q[kv.length + i] = (float) r.nextGaussian();
            kv[i] = (float) r.nextGaussian();
        }
        float[] context = new float[tokens * 2 * d];
        float[] work = new float[AttentionKernels.attentionScratchSize(tokens, 0, d)];
        assertThat(steadyBytesPerCall(() ->
                        k.attention(tokens, 0, true, d, 2, q, 0, 2 * d, kv, 0, kv, 0, d, context, 0, 2 * d, work)))
                .as("attention")
                .isZero();
    }

    /**
     * The vector kernels of ggml's block types, each quantizer and dequantizer on one row of 4,096 values (the
     * quantizers' per-batch work arrays are per thread).
     */
    @Test
    void hotGgmlKernelsDoNotAllocate() {
        GgmlBlockKernels k = Kernels.ggml();
        assertThat(k.name()).startsWith("vector-");
        int n = 4096;
        SplittableRandom r = new SplittableRandom(11);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextGaussian();
        }
        byte[] q = new byte[n / 32 * 34];
        float[] y = new float[n];
        assertThat(steadyBytesPerCall(() -> k.quantizeQ4_0(x, 0, q, 0, n)))
                .as("quantizeQ4_0")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.quantizeQ4_1(x, 0, q, 0, n)))
                .as("quantizeQ4_1")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.quantizeQ5_0(x, 0, q, 0, n)))
                .as("quantizeQ5_0")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.quantizeQ5_1(x, 0, q, 0, n)))
                .as("quantizeQ5_1")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.quantizeQ8_0(x, 0, q, 0, n)))
                .as("quantizeQ8_0")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.quantizeQ4_K(x, 0, q, 0, n)))
                .as("quantizeQ4_K")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.quantizeQ5_K(x, 0, q, 0, n)))
                .as("quantizeQ5_K")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ4_0(q, 0, y, 0, n)))
                .as("dequantizeQ4_0")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ4_1(q, 0, y, 0, n)))
                .as("dequantizeQ4_1")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ5_0(q, 0, y, 0, n)))
                .as("dequantizeQ5_0")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ5_1(q, 0, y, 0, n)))
                .as("dequantizeQ5_1")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ8_0(q, 0, y, 0, n)))
                .as("dequantizeQ8_0")
                .isZero();
        byte[] kq = new byte[n / 256 * 210];
        r.nextBytes(kq);
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ4_K(kq, 0, y, 0, n)))
                .as("dequantizeQ4_K")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ5_K(kq, 0, y, 0, n)))
                .as("dequantizeQ5_K")
                .isZero();
        assertThat(steadyBytesPerCall(() -> k.dequantizeQ6_K(kq, 0, y, 0, n)))
                .as("dequantizeQ6_K")
                .isZero();
    }
}
