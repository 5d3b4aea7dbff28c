package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.ALL_LANES;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.HALF_BYTES;
import static dev.quant4j.kernel.VectorShapes.PACK_SHORTS;
import static dev.quant4j.kernel.VectorShapes.sumLanes;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@link PackedProductKernels} on the Vector API. The float products run in {@link VectorProductUnrolled} (generated:
 * a general loop, one of constant trip counts for groups of 128, one for 128-bit vectors, and the eight- and
 * sixteen-accumulator multi-row kernels); the int8 products are here. Widths without enough registers for a multi-row
 * kernel use the reference's composition of the single-row vector kernels.
 */
final class VectorPackedProductKernels implements PackedProductKernels {

    @Override
    public float dotNibbles(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, int groupSize, float[] scales, int sOff) {
        if (F.length() == 4) {
            return VectorProductUnrolled.dotNibbles128(packed, byteOff, xPrepared, xOff, n, groupSize, scales, sOff);
        }
        if (groupSize == VectorProductUnrolled.G128) {
            return VectorProductUnrolled.dotNibblesG128(packed, byteOff, xPrepared, xOff, n, scales, sOff);
        }
        return VectorProductUnrolled.dotNibbles(packed, byteOff, xPrepared, xOff, n, groupSize, scales, sOff);
    }

    /** 16-bit lanes of {@link #dotNibblesInt8}, and the packed bytes one step widens into them. */
    private static final VectorSpecies<Short> NIBBLE_SHORTS = PACK_SHORTS;

    private static final VectorSpecies<Byte> NIBBLE_SHORT_BYTES = HALF_BYTES;
    /**
     * Chunks of {@link #NIBBLE_CHUNK_INT8} codes whose 16-bit products a lane may add before they are flushed to
     * float: each chunk gives a lane {@code 64 / lanes} products of at most 15 * 127 = 1905, and 16 of them (30480)
     * still fit in a short.
     */
    private static final int INT8_FLUSH_CHUNKS = Math.max(1, 16 / (NIBBLE_CHUNK_INT8 / NIBBLE_SHORTS.length()));

    @Override
    public float dotNibblesInt8(
            byte[] packed,
            int byteOff,
            short[] xq,
            int xOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            float[] xScales,
            int dOff) {
        // a dispatcher small enough for the JIT to inline into the caller's row loop: one call per row, to the body
        if (groupSize == VectorProductUnrolled.G128) {
            return dotNibblesInt8G128(packed, byteOff, xq, xOff, n, scales, sOff, xScales, dOff);
        }
        return dotNibblesInt8Groups(packed, byteOff, xq, xOff, n, groupSize, scales, sOff, xScales, dOff);
    }

    /** {@link #dotNibblesInt8} for any group size that is a multiple of {@link #NIBBLE_CHUNK_INT8}. */
    private static float dotNibblesInt8Groups(
            byte[] packed,
            int byteOff,
            short[] xq,
            int xOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            float[] xScales,
            int dOff) {
        int lanes = NIBBLE_SHORTS.length();
        int half = NIBBLE_CHUNK_INT8 / 2;
        FloatVector t0 = FloatVector.zero(F);
        FloatVector t1 = FloatVector.zero(F);
        for (int g = 0; g < n / groupSize; g++) {
            FloatVector sd = FloatVector.broadcast(F, scales[sOff + g] * xScales[dOff + g]);
            int c = g * groupSize;
            int end = c + groupSize;
            while (c < end) {
                int stop = Math.min(end, c + INT8_FLUSH_CHUNKS * NIBBLE_CHUNK_INT8);
                ShortVector acc = ShortVector.zero(NIBBLE_SHORTS);
                for (; c < stop; c += NIBBLE_CHUNK_INT8) {
                    for (int sub = 0; sub < half; sub += lanes) {
                        ShortVector b =
                                (ShortVector) ByteVector.fromArray(NIBBLE_SHORT_BYTES, packed, byteOff + c / 2 + sub)
                                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, NIBBLE_SHORTS, 0);
                        ShortVector lo = b.and((short) 0xF);
                        ShortVector hi = b.lanewise(VectorOperators.LSHR, 4);
                        acc = lo.mul(ShortVector.fromArray(NIBBLE_SHORTS, xq, xOff + c + sub))
                                .add(hi.mul(ShortVector.fromArray(NIBBLE_SHORTS, xq, xOff + c + half + sub)))
                                .add(acc);
                    }
                }
                // exact integers up to here; the group scale is the only rounding
                ShortVector sums = ShortVector.zero(NIBBLE_SHORTS).add(acc);
                t0 = ((FloatVector) sums.convertShape(VectorOperators.S2F, F, 0)).fma(sd, t0);
                t1 = ((FloatVector) sums.convertShape(VectorOperators.S2F, F, 1)).fma(sd, t1);
            }
        }
        return sumLanes(FloatVector.zero(F).blend(t0, ALL_LANES).add(t1));
    }

    /**
     * {@link #dotNibblesInt8} for groups of 128 codes, the common case, as straight-line code per group: loops of a
     * constant trip count only (the JIT unrolls them), so no per-group loop set-up. A lane adds at most 128 / 8 = 16
     * products (at 128 bits; 4 at 512), so the 16-bit sums are exact without a flush inside the group. At the end of
     * a group each 32-bit lane holds two 16-bit sums: sign-extended and added in 32 bits (still exact), then
     * converted and scaled once. One method body, no vector-returning helper: a helper the JIT declines to inline
     * would box its vectors (measured: 2.7 ms instead of 1.7 until a late recompilation).
     */
    private static float dotNibblesInt8G128(
            byte[] packed,
            int byteOff,
            short[] xq,
            int xOff,
            int n,
            float[] scales,
            int sOff,
            float[] xScales,
            int dOff) {
        int lanes = NIBBLE_SHORTS.length();
        int half = NIBBLE_CHUNK_INT8 / 2;
        FloatVector total = FloatVector.zero(F);
        int groups = n / (2 * NIBBLE_CHUNK_INT8);
        for (int g = 0; g < groups; g++) {
            int p = byteOff + g * NIBBLE_CHUNK_INT8;
            int xo = xOff + 2 * g * NIBBLE_CHUNK_INT8;
            ShortVector acc = ShortVector.zero(NIBBLE_SHORTS);
            for (int sub = 0; sub < half; sub += lanes) {
                ShortVector b0 = (ShortVector) ByteVector.fromArray(NIBBLE_SHORT_BYTES, packed, p + sub)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, NIBBLE_SHORTS, 0);
                ShortVector b1 = (ShortVector) ByteVector.fromArray(NIBBLE_SHORT_BYTES, packed, p + half + sub)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, NIBBLE_SHORTS, 0);
                acc = b0.and((short) 0xF)
                        .mul(ShortVector.fromArray(NIBBLE_SHORTS, xq, xo + sub))
                        .add(b0.lanewise(VectorOperators.LSHR, 4)
                                .mul(ShortVector.fromArray(NIBBLE_SHORTS, xq, xo + half + sub)))
                        .add(b1.and((short) 0xF).mul(ShortVector.fromArray(NIBBLE_SHORTS, xq, xo + 2 * half + sub)))
                        .add(b1.lanewise(VectorOperators.LSHR, 4)
                                .mul(ShortVector.fromArray(NIBBLE_SHORTS, xq, xo + 3 * half + sub)))
                        .add(acc);
            }
            IntVector pairs = ShortVector.zero(NIBBLE_SHORTS).add(acc).reinterpretAsInts();
            IntVector sums = pairs.lanewise(VectorOperators.LSHL, 16)
                    .lanewise(VectorOperators.ASHR, 16)
                    .add(pairs.lanewise(VectorOperators.ASHR, 16));
            total = ((FloatVector) sums.convert(VectorOperators.I2F, 0))
                    .fma(FloatVector.broadcast(F, scales[sOff + g] * xScales[dOff + g]), total);
        }
        return sumLanes(total);
    }

    @Override
    public void dotNibbles8(
            byte[] packed,
            int byteOff,
            float[] xPrepared,
            int xOff,
            int ldx,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            float[] out,
            int outOff) {
        if (F.length() < 8) {
            ScalarPackedProductKernels.dotNibbles8(
                    this, packed, byteOff, xPrepared, xOff, ldx, n, groupSize, scales, sOff, out, outOff);
            return;
        }
        VectorProductUnrolled.dotNibbles8(
                packed, byteOff, xPrepared, xOff, ldx, n, groupSize, scales, sOff, out, outOff);
    }

    /**
     * At 512 bits, two weight rows against eight activation rows with sixteen accumulators ({@link
     * VectorProductUnrolled#dotNibbles2x8}); narrower widths have too few registers for sixteen accumulators and make
     * two {@link #dotNibbles8} calls. The results are the same either way.
     */
    @Override
    public void dotNibbles2x8(
            byte[] packed,
            int byteOff0,
            int byteOff1,
            float[] xPrepared,
            int xOff,
            int ldx,
            int n,
            int groupSize,
            float[] scales,
            int sOff0,
            int sOff1,
            float[] out,
            int outOff) {
        if (F.length() != 16) {
            ScalarPackedProductKernels.dotNibbles2x8(
                    this, packed, byteOff0, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, sOff1, out,
                    outOff);
            return;
        }
        VectorProductUnrolled.dotNibbles2x8(
                packed, byteOff0, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, sOff1, out, outOff);
    }
}
