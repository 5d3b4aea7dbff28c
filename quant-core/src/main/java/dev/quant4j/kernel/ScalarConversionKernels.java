package dev.quant4j.kernel;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** The plain loops of {@link ConversionKernels}: the reference the vector kernels are tested against, and the fallback. */
final class ScalarConversionKernels implements ConversionKernels {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Override
    public void bf16ToFloat(MemorySegment src, long offset, int n, float[] dst, int dstOff) {
        bf16ToFloatLoop(src, offset, 0, n, dst, dstOff);
    }

    /** {@link #bf16ToFloat} for {@code i} in {@code [from, n)}: the vector kernel's scalar tail. */
    static void bf16ToFloatLoop(MemorySegment src, long offset, int from, int n, float[] dst, int dstOff) {
        for (int i = from; i < n; i++) {
            // a BF16 value is the upper half of its float32; intBitsToFloat keeps every bit (no arithmetic on it)
            dst[dstOff + i] = Float.intBitsToFloat(src.get(LE_SHORT, offset + 2L * i) << 16);
        }
    }

    @Override
    public void floatToBf16(float[] src, int srcOff, int n, MemorySegment dst, long offset) {
        floatToBf16Loop(src, srcOff, 0, n, dst, offset);
    }

    /** {@link #floatToBf16} for {@code i} in {@code [from, n)}: the vector kernel's scalar tail. */
    static void floatToBf16Loop(float[] src, int srcOff, int from, int n, MemorySegment dst, long offset) {
        for (int i = from; i < n; i++) {
            dst.set(LE_SHORT, offset + 2L * i, ConversionKernels.floatToBf16(src[srcOff + i]));
        }
    }
}
