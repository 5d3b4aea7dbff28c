package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.I;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link ConversionKernels} on the Vector API: {@code F.length()} BF16 values are loaded as shorts (a vector of half
 * the float width), widened to ints, shifted into the upper half and stored as float bits; the same bits as the
 * reference for every input. Segments the Vector API cannot read (heap segments over arrays other than {@code byte[]})
 * take the scalar loop.
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
}
