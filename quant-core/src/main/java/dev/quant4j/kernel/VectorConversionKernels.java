package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.I;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link ConversionKernels} on the Vector API: {@code F.length()} BF16 values are loaded as shorts (a vector of half
 * the float width), widened to ints, shifted into the upper half and stored as float bits; floats are rounded in int
 * lanes and narrowed to shorts the other way. The same bits as the reference for every input. Segments the Vector API
 * cannot access (heap segments over arrays other than {@code byte[]}) take the scalar loop.
 */
final class VectorConversionKernels implements ConversionKernels {

    /** Shorts as many as the float lanes: half the float vector's bits. */
    private static final VectorSpecies<Short> HALVES =
            VectorSpecies.of(short.class, VectorShape.forBitSize(F.vectorBitSize() / 2));

    @Override
    public void bf16ToFloat(MemorySegment src, long offset, int n, float[] dst, int dstOff) {
        int i = 0;
        if (src.isNative() || src.heapBase().orElse(null) instanceof byte[]) {
            int step = F.length();
            int bound = n - n % (2 * step);
            for (; i < bound; i += 2 * step) {
                widen(src, offset + 2L * i, dst, dstOff + i);
                widen(src, offset + 2L * (i + step), dst, dstOff + i + step);
            }
        }
        // scalar tail
        ScalarConversionKernels.bf16ToFloatLoop(src, offset, i, n, dst, dstOff);
    }

    private static void widen(MemorySegment src, long at, float[] dst, int dstOff) {
        ShortVector h = ShortVector.fromMemorySegment(HALVES, src, at, ByteOrder.LITTLE_ENDIAN);
        ((IntVector) h.convertShape(VectorOperators.S2I, I, 0))
                .lanewise(VectorOperators.LSHL, 16)
                .reinterpretAsFloats()
                .intoArray(dst, dstOff);
    }

    @Override
    public void floatToBf16(float[] src, int srcOff, int n, MemorySegment dst, long offset) {
        int i = 0;
        if (dst.isNative() || dst.heapBase().orElse(null) instanceof byte[]) {
            int step = F.length();
            int bound = F.loopBound(n);
            for (; i < bound; i += step) {
                narrow(src, srcOff + i, dst, offset + 2L * i);
            }
        }
        // scalar tail
        ScalarConversionKernels.floatToBf16Loop(src, srcOff, i, n, dst, offset);
    }

    /**
     * HalfFloats.floatToBf16 lane-wise: {@code bits + 0x7FFF + (bit 16)} rounds to nearest even in the upper half; a
     * NaN (magnitude bits above the infinity's) keeps its upper half with the quiet bit set instead.
     */
    private static void narrow(float[] src, int srcOff, MemorySegment dst, long at) {
        IntVector bits = FloatVector.fromArray(F, src, srcOff).reinterpretAsInts();
        IntVector upper = bits.lanewise(VectorOperators.LSHR, 16);
        IntVector rounded = bits.add(upper.and(1)).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = bits.and(0x7FFFFFFF).compare(VectorOperators.GT, 0x7F800000);
        ((ShortVector) rounded.blend(upper.or(0x0040), nan).convertShape(VectorOperators.I2S, HALVES, 0))
                .intoMemorySegment(dst, at, ByteOrder.LITTLE_ENDIAN);
    }
}
