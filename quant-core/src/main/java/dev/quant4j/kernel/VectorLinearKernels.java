package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.B;
import static dev.quant4j.kernel.VectorShapes.BYTE_PARTS;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.HALF_BYTES;
import static dev.quant4j.kernel.VectorShapes.HALVES;
import static dev.quant4j.kernel.VectorShapes.I;
import static dev.quant4j.kernel.VectorShapes.LITTLE_ENDIAN;
import static dev.quant4j.kernel.VectorShapes.MAGIC_BITS;
import static dev.quant4j.kernel.VectorShapes.PACK_BYTES;
import static dev.quant4j.kernel.VectorShapes.PACK_SHORTS;
import static dev.quant4j.kernel.VectorShapes.ROUND_MAGIC;
import static dev.quant4j.scheme.Symmetry.MINMAX;
import static dev.quant4j.scheme.Symmetry.SIGNED;
import static dev.quant4j.scheme.Symmetry.SYM;

import dev.quant4j.scheme.Symmetry;
import java.util.Arrays;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link LinearKernels} on the Vector API: parameters a vector of groups at a time, codes by a corrected reciprocal and
 * rounding in the integer domain, {@code quantizeGroups} fused into passes with no buffer of codes, decoding and 4-bit
 * packing in registers. The unrolled code bodies are in {@link VectorLinearUnrolled} (generated). Every result is
 * bit-identical to {@link ScalarLinearKernels}, whose loops finish the tails.
 */
final class VectorLinearKernels implements LinearKernels {

    private static final StatisticsKernels STATISTICS = new VectorStatisticsKernels();

    /**
     * {@link LinearKernels#linearScale} and {@link LinearKernels#linearZero} for a vector of groups at a time, with
     * the same float operations in the same order. A chunk whose scale would need the overflow or underflow guard is
     * left to the scalar code (it never happens for sane weights).
     */
    @Override
    public void linearParams(
            float[] mins,
            float[] maxs,
            int n,
            int bits,
            Symmetry form,
            float[] scales,
            int sOff,
            float[] zeros,
            int zOff) {
        int maxq = (1 << bits) - 1;
        int bound = form == MINMAX ? 0 : F.loopBound(n); // AWQ's form: one group at a time, scalar
        int i = 0;
        for (; i < bound; i += F.length()) {
            FloatVector mn = FloatVector.fromArray(F, mins, i);
            FloatVector mx = FloatVector.fromArray(F, maxs, i);
            FloatVector scale;
            FloatVector zero;
            if (form == SIGNED) {
                int qlimit = (1 << (bits - 1)) - 1;
                FloatVector amax = mn.abs().max(mx.abs());
                amax = amax.blend(1f, amax.compare(VectorOperators.EQ, 0f));
                scale = amax.div(qlimit);
                zero = FloatVector.broadcast(F, 1 << (bits - 1));
            } else {
                FloatVector xmin = mn.min(0f);
                FloatVector xmax = mx.max(0f);
                if (form == SYM) {
                    xmax = xmin.abs().max(xmax);
                    xmin = xmin.blend(xmax.neg(), xmin.compare(VectorOperators.LT, 0f));
                }
                VectorMask<Float> allZero =
                        xmin.compare(VectorOperators.EQ, 0f).and(xmax.compare(VectorOperators.EQ, 0f));
                xmin = xmin.blend(-1f, allZero);
                xmax = xmax.blend(1f, allZero);
                scale = xmax.sub(xmin).div(maxq);
                zero = form == SYM
                        ? FloatVector.broadcast(F, (maxq + 1) / 2)
                        // rint by the magic add: |-xmin / S| <= maxq here, far below 2^22
                        : xmin.neg()
                                .div(scale)
                                .add(ROUND_MAGIC)
                                .sub(ROUND_MAGIC)
                                .max(0f)
                                .min(maxq);
            }
            // the scalar guard's cases (an overflowed or subnormal scale) go to the scalar code
            if (scale.compare(VectorOperators.GE, Float.MIN_NORMAL)
                    .and(scale.compare(VectorOperators.LE, Float.MAX_VALUE))
                    .allTrue()) {
                scale.intoArray(scales, sOff + i);
                zero.intoArray(zeros, zOff + i);
            } else {
                ScalarLinearKernels.linearParamsLoop(
                        mins, maxs, i, i + F.length(), bits, form, scales, sOff, zeros, zOff);
            }
        }
        // scalar tail
        ScalarLinearKernels.linearParamsLoop(mins, maxs, i, n, bits, form, scales, sOff, zeros, zOff);
    }

    /**
     * Rounds in the integer domain: for |v| < 2^22, {@code v + 1.5 * 2^23} is rounded half to even to an integer and
     * its float bits are {@code 0x4B400000 + rint(v)}. Larger |v| (and infinities) give bit patterns beyond the code
     * range on the correct side, because positive float bit patterns are ordered like their values and negative sums
     * have the sign bit set (negative as ints); clamping the bits before removing the bias (no overflow) then gives
     * qmin or qmax exactly as the scalar reference does.
     */
    @Override
    public void quantize(
            float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff) {
        int z = (int) zero;
        int lo = MAGIC_BITS - z + qmin;
        int hi = MAGIC_BITS - z + qmax;
        int bias = MAGIC_BITS - z;
        float inv = 1.0f / scale;
        // every whole vector (one byte-vector store each; at 128 bits the last merges, see
        // VectorCodebookUnrolled.codebookRange), then the
        // scalar tail
        int i = VectorLinearUnrolled.quantizeRange(x, off, len, scale, inv, lo, hi, bias, codes, codesOff);
        ScalarLinearKernels.quantizeLoop(x, off + i, len - i, scale, zero, qmin, qmax, codes, codesOff + i);
    }

    private static final int EXPONENT = 0x7F800000;

    /**
     * Quotients below this bound need none of {@link #carefulCodes}' care for huge values (it is far above any code; the
     * magic-add rounding holds to 2^22).
     */
    private static final float QUOTIENT_LIMIT = 0x1p21f;

    /**
     * A run of groups in four passes, at 8, 4 and 2 bits for groups of whole steps (one, two and four vectors), 256
     * bits and wider, and at 3 bits for groups of eight vectors, 512 bits; otherwise the scalar reference's passes over
     * L1-sized chunks:
     *
     * <ol>
     *   <li>per group, lane-wise statistics of the float bits: signed and unsigned integer maxima, one instruction
     *       each and no blend (a compare-and-blend minimum and maximum take four);
     *   <li>per {@code L} groups ({@code L} lanes), one transposed reduction ({@link #reduceLanes}) instead of {@code
     *       L} separate cross-lane reductions, whose long chains of shuffles dominated a group of 128;
     *   <li>the groups' minima and maxima from those bit maxima ({@link #groupRanges}), which also find every value
     *       that is not finite (so no separate pass checks), then {@link #linearParams};
     *   <li>the codes, packed in registers and stored once (no buffer of codes, no packing pass).
     * </ol>
     *
     * The result is bit-identical to the reference, which the tests check for every form, width and group size.
     */
    @Override
    public boolean quantizeGroups(
            float[] x,
            int off,
            int groups,
            int gsize,
            int bits,
            Symmetry form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff) {
        int l = F.length();
        boolean fused = BYTE_PARTS == 1
                && LITTLE_ENDIAN
                && (bits == 3
                        ? l == 16 && gsize % (8 * l) == 0
                        : (bits == 8 || bits == 4 || bits == 2) && gsize % (8 / bits * l) == 0);
        if (!fused) {
            // the reference's passes, over chunks of about 4096 values that end on whole bytes (L1-sized: a run of many
            // rows at once measured 8% slower at 2 bits on 4096x4096)
            int chunk = Math.max(1, 4096 / gsize);
            int align = 8 >> Math.min(3, Integer.numberOfTrailingZeros(gsize * bits)); // groups filling whole bytes
            chunk = (chunk + align - 1) / align * align;
            for (int g = 0; g < groups; g += chunk) {
                int n = Math.min(chunk, groups - g);
                int p = pOff + (int) ((long) g * gsize * bits / 8);
                if (!ScalarLinearKernels.quantizeGroups(
                        STATISTICS,
                        this,
                        x,
                        off + g * gsize,
                        n,
                        gsize,
                        bits,
                        form,
                        qmin,
                        scales,
                        sOff + g,
                        zeros,
                        zOff + g,
                        packed,
                        p)) {
                    return false;
                }
            }
            return true;
        }
        int batches = (groups + l - 1) / l;
        int batchInts = l / 2 * l; // a batch of L groups: L / 2 vectors after the first level
        KernelScratch s = KernelScratch.get(batches * l)
                .withLaneStats(batches * batchInts)
                .withBitWork(gsize / 2)
                .withCodeParams(batches * l);
        laneRanges(x, off, groups, gsize, s.signedMax, s.unsignedMax);
        // the last batch's missing groups: zeros, finite and ignored
        int filled = (groups + 1) / 2 * l;
        Arrays.fill(s.signedMax, filled, batches * batchInts, 0);
        Arrays.fill(s.unsignedMax, filled, batches * batchInts, 0);
        for (int b = 0; b < batches; b++) {
            reduceLanes(s.signedMax, s.unsignedMax, b * batchInts);
        }
        if (!groupRanges(x, off, groups, gsize, s)) {
            return false;
        }
        linearParams(s.mins, s.maxs, groups, bits, form, scales, sOff, s.zeros, 0);
        fusedCodes(x, off, groups, gsize, bits, form, qmin, scales, sOff, zeros, zOff, packed, pOff, s);
        return true;
    }

    /**
     * Per group, lane-wise maxima of the float bits read as signed ints and as unsigned ints. Signed, a float with the
     * sign bit clear beats every float with it set, and among either kind the larger bits are the larger magnitude; so
     * the signed maximum is the group's maximum when one value is not negative, and the unsigned maximum its minimum
     * when one value is negative. Groups go in pairs, whose two vectors are combined at once by the first level of
     * {@link #reduceLanes} (an odd last group pairs with itself): pair {@code p} at {@code [p * L, (p + 1) * L)}.
     */
    private static void laneRanges(float[] x, int off, int groups, int gsize, int[] sm, int[] um) {
        int l = F.length();
        IntVector left = IntVector.fromArray(I, HALVES, 0);
        IntVector right = IntVector.fromArray(I, HALVES, l);
        for (int g = 0; g < groups; g += 2) {
            int a = off + g * gsize;
            int b = g + 1 < groups ? a + gsize : a;
            IntVector sa = FloatVector.fromArray(F, x, a).reinterpretAsInts();
            IntVector ua = sa;
            IntVector sb = FloatVector.fromArray(F, x, b).reinterpretAsInts();
            IntVector ub = sb;
            for (int i = l; i < gsize; i += l) {
                IntVector va = FloatVector.fromArray(F, x, a + i).reinterpretAsInts();
                sa = va.max(sa);
                ua = va.lanewise(VectorOperators.UMAX, ua);
                IntVector vb = FloatVector.fromArray(F, x, b + i).reinterpretAsInts();
                sb = vb.max(sb);
                ub = vb.lanewise(VectorOperators.UMAX, ub);
            }
            left.selectFrom(sa, sb).max(right.selectFrom(sa, sb)).intoArray(sm, g / 2 * l);
            left.selectFrom(ua, ub)
                    .lanewise(VectorOperators.UMAX, right.selectFrom(ua, ub))
                    .intoArray(um, g / 2 * l);
        }
    }

    /**
     * Reduces the lane maxima of {@code L} groups (at {@code base} of both arrays, after the first level: {@code L / 2}
     * vectors of two groups each) to one vector whose lane {@code j} is group {@code j}'s maximum, in place: each level
     * pairs vectors and keeps, per group, the larger of its lanes' two halves, so {@code L - 1} combinations (two
     * {@code selectFrom} and a maximum each) replace {@code L} reductions of {@code log2 L} dependent shuffles.
     */
    private static void reduceLanes(int[] sm, int[] um, int base) {
        int l = F.length();
        for (int level = 1, n = l / 2; n > 1; level++, n >>= 1) {
            IntVector left = IntVector.fromArray(I, HALVES, level * 2 * l);
            IntVector right = IntVector.fromArray(I, HALVES, level * 2 * l + l);
            for (int p = 0; p < n / 2; p++) {
                int a = base + 2 * p * l;
                IntVector s0 = IntVector.fromArray(I, sm, a);
                IntVector s1 = IntVector.fromArray(I, sm, a + l);
                left.selectFrom(s0, s1).max(right.selectFrom(s0, s1)).intoArray(sm, base + p * l);
                IntVector u0 = IntVector.fromArray(I, um, a);
                IntVector u1 = IntVector.fromArray(I, um, a + l);
                left.selectFrom(u0, u1)
                        .lanewise(VectorOperators.UMAX, right.selectFrom(u0, u1))
                        .intoArray(um, base + p * l);
            }
        }
    }

    /**
     * Minimum and maximum of every group from its reduced bit maxima into {@code s.mins} and {@code s.maxs}; false if
     * a value is not finite (an infinity or NaN has the largest bits of its sign). A group with values of one sign
     * only, where one of the two maxima says nothing, is scanned again with {@link #minMax}.
     */
    private boolean groupRanges(float[] x, int off, int groups, int gsize, KernelScratch s) {
        int l = F.length();
        int batchInts = l / 2 * l;
        for (int b = 0; b * l < groups; b++) {
            IntVector sm = IntVector.fromArray(I, s.signedMax, b * batchInts);
            IntVector um = IntVector.fromArray(I, s.unsignedMax, b * batchInts);
            VectorMask<Integer> usual = sm.compare(VectorOperators.GE, 0)
                    .and(um.compare(VectorOperators.LT, 0))
                    .and(sm.and(EXPONENT).compare(VectorOperators.NE, EXPONENT))
                    .and(um.and(EXPONENT).compare(VectorOperators.NE, EXPONENT));
            if (usual.allTrue()) {
                um.reinterpretAsFloats().intoArray(s.mins, b * l);
                sm.reinterpretAsFloats().intoArray(s.maxs, b * l);
                continue;
            }
            // the last, partial batch (its padding is never usual) or an unusual group
            for (int j = 0; j < Math.min(l, groups - b * l); j++) {
                int hiBits = s.signedMax[b * batchInts + j];
                int loBits = s.unsignedMax[b * batchInts + j];
                if (!Float.isFinite(Float.intBitsToFloat(hiBits)) || !Float.isFinite(Float.intBitsToFloat(loBits))) {
                    return false;
                }
                int g = b * l + j;
                if (hiBits >= 0 && loBits < 0) {
                    s.mins[g] = Float.intBitsToFloat(loBits);
                    s.maxs[g] = Float.intBitsToFloat(hiBits);
                } else {
                    long mm = STATISTICS.minMax(x, off + g * gsize, gsize);
                    s.mins[g] = StatisticsKernels.min(mm);
                    s.maxs[g] = StatisticsKernels.max(mm);
                }
            }
        }
        return true;
    }

    /*
     * The fused codes clamp from above only. For GPTQ's forms the lower clamp never binds: (asymmetric) the range
     * [xmin, xmax] holds 0 and every value, so RN(xmax - xmin) >= -xmin and S = RN(range / maxq) >= -xmin / maxq *
     * (1 - 2^-24); the zero-point Z = rint(RN(-xmin / S)) is then at most maxq (never clamped), and for x >= xmin
     * rounded division and rint are monotone and odd, so rint(RN(x / S)) >= rint(RN(xmin / S)) = -Z: the code is >= 0.
     * A scale raised by the guards only shrinks the quotients. Symmetric: Z = (maxq + 1) / 2 and |x / S| <= maxq / 2 *
     * (1 + 2^-22), so rint(x / S) >= -Z. Signed: |x / S| <= qlimit * (1 + 2^-23), so the code is >= 2^(bits-1) - qlimit
     * = 1 = qmin. The upper clamp does bind (rint(xmax / S) and rint(-xmin / S) can both round up at ties) and stays.
     * llm-awq's min/max form (its range need not hold 0, its zero-point is clamped) takes the careful way, as do
     * quotients near the float range.
     */

    /**
     * The codes of every group at 2, 3, 4 or 8 bits, packed in registers (the chains are in {@link
     * VectorLinearUnrolled}). For GPTQ's forms at 2, 4 and 8 bits the per-group values come first, L groups at a time
     * ({@link #codeParams}), then the codes of the whole run in a method of their own per width ({@link
     * VectorLinearUnrolled#codes8}, {@code codes4}, {@code codes2}: arrays in, no vector crosses the call), with each
     * group's values broadcast from arrays, because inside this method C2 rebuilt the broadcasts of {@code 1 / S} and
     * {@code -S} at every use (shuffle-port work in every step) and spilled the loop's values: 8-bit codes of 64K values
     * in L2 8.2 -> 6.6 cycles per vector. Then the rare careful groups are written over. 3 bits (512 bits only) and
     * llm-awq's form go group by group.
     */
    private void fusedCodes(
            float[] x,
            int off,
            int groups,
            int gsize,
            int bits,
            Symmetry form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff,
            KernelScratch s) {
        int maxq = (1 << bits) - 1;
        if (form != MINMAX && bits != 3) {
            int careful = codeParams(groups, maxq, scales, sOff, zeros, zOff, s);
            switch (bits) {
                case 8 -> VectorLinearUnrolled.codes8(x, off, groups, gsize, s, packed, pOff);
                case 4 -> VectorLinearUnrolled.codes4(x, off, groups, gsize, s, packed, pOff);
                default -> VectorLinearUnrolled.codes2(x, off, groups, gsize, s, packed, pOff);
            }
            // the groups whose quotients come near the float range, written over
            for (int i = 0; i < careful; i++) {
                int g = s.careful[i];
                carefulCodes(
                        x,
                        off + g * gsize,
                        gsize,
                        bits,
                        scales[sOff + g],
                        (int) s.zeros[g],
                        qmin,
                        s,
                        packed,
                        pOff + g * gsize * bits / 8);
            }
            return;
        }
        // group by group: llm-awq's form (every group the careful way: its range need not hold 0, its zero-point is
        // clamped), and 3 bits (a run of groups in one method, like codes8, measured 8% slower in L2)
        for (int g = 0; g < groups; g++) {
            float scale = scales[sOff + g];
            int z = (int) s.zeros[g];
            zeros[zOff + g] = (byte) z;
            float inv = 1.0f / scale;
            int goff = off + g * gsize;
            int p = pOff + g * gsize * bits / 8;
            if (form == MINMAX || nearFloatRange(s.mins[g], s.maxs[g], inv)) {
                // llm-awq's form, or quotients near the float range (the scale's guards): the careful codes, packed
                carefulCodes(x, goff, gsize, bits, scale, z, qmin, s, packed, p);
                continue;
            }
            // 3 bits (every other width with GPTQ's forms took codeParams above)
            VectorLinearUnrolled.codes3(
                    x, goff, gsize, inv, -scale, MAGIC_BITS - z + maxq, MAGIC_BITS - z, s.bitWork, packed, p);
        }
    }

    /**
     * Whether a group's quotients {@code x / S} may reach {@link #QUOTIENT_LIMIT} (the fused codes' rounding by adding
     * a constant holds below {@code 2^22}): then the group takes the careful codes. {@link #codeParams} makes the same
     * comparison lane by lane.
     */
    private static boolean nearFloatRange(float min, float max, float inv) {
        return !(Math.max(Math.abs(min), Math.abs(max)) * inv < QUOTIENT_LIMIT);
    }

    /** One group's codes the careful way (the reference's quantize, then pack), for the groups the fast codes skip. */
    private void carefulCodes(
            float[] x,
            int goff,
            int gsize,
            int bits,
            float scale,
            int z,
            int qmin,
            KernelScratch s,
            byte[] packed,
            int p) {
        byte[] codes = s.codes(gsize);
        quantize(x, goff, gsize, scale, z, qmin, (1 << bits) - 1, codes, 0);
        pack(codes, 0, gsize, bits, packed, p);
    }

    /**
     * The per-group values of the fused codes, L groups at a time: {@code 1 / S}, {@code -S}, the clamp and the
     * bias ({@code MAGIC_BITS - Z + maxq} and {@code MAGIC_BITS - Z}) into {@code s}, the zero-points as bytes into
     * {@code zeros}, and in {@code s.careful} the groups whose quotients may come near the float range. The same
     * operations as the per-group loop of {@link #fusedCodes} (IEEE division and negation, truncation of the integral
     * zero-points), so the same values; computed per group in scalar code they cost about as much as the codes of the
     * group. Returns the number of careful groups.
     */
    private static int codeParams(
            int groups, int maxq, float[] scales, int sOff, byte[] zeros, int zOff, KernelScratch s) {
        int l = F.length();
        int careful = 0;
        int g = 0;
        FloatVector one = FloatVector.broadcast(F, 1.0f);
        for (; g + l <= groups; g += l) {
            FloatVector scale = FloatVector.fromArray(F, scales, sOff + g);
            FloatVector inv = one.div(scale);
            inv.intoArray(s.invs, g);
            scale.neg().intoArray(s.negs, g);
            IntVector z = (IntVector) FloatVector.fromArray(F, s.zeros, g).convert(VectorOperators.F2I, 0);
            IntVector bias = IntVector.broadcast(I, MAGIC_BITS).sub(z);
            bias.intoArray(s.biases, g);
            bias.add(maxq).intoArray(s.his, g);
            ((ByteVector) z.convertShape(VectorOperators.I2B, B, 0)).intoArray(zeros, zOff + g);
            VectorMask<Float> fast = FloatVector.fromArray(F, s.mins, g)
                    .abs()
                    .max(FloatVector.fromArray(F, s.maxs, g).abs())
                    .mul(inv)
                    .compare(VectorOperators.LT, QUOTIENT_LIMIT);
            if (!fast.allTrue()) {
                for (int j = 0; j < l; j++) {
                    if (!fast.laneIsSet(j)) {
                        s.careful[careful++] = g + j;
                    }
                }
            }
        }
        for (; g < groups; g++) {
            float scale = scales[sOff + g];
            int z = (int) s.zeros[g];
            float inv = 1.0f / scale;
            s.invs[g] = inv;
            s.negs[g] = -scale;
            s.biases[g] = MAGIC_BITS - z;
            s.his[g] = MAGIC_BITS - z + maxq;
            zeros[zOff + g] = (byte) z;
            if (nearFloatRange(s.mins[g], s.maxs[g], inv)) {
                s.careful[careful++] = g;
            }
        }
        return careful;
    }

    @Override
    public void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff) {
        int step = B.length();
        int bound = len - len % step;
        int i = 0;
        for (; i < bound; i += step) {
            ByteVector b = ByteVector.fromArray(B, codes, codesOff + i);
            for (int part = 0; part < BYTE_PARTS; part++) {
                IntVector q = (IntVector) b.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, part);
                ((FloatVector) q.convert(VectorOperators.I2F, 0))
                        .sub(zero)
                        .mul(scale)
                        .intoArray(out, outOff + i + part * F.length());
            }
        }
        // scalar tail
        ScalarLinearKernels.dequantizeLoop(codes, codesOff + i, len - i, scale, zero, out, outOff + i);
    }

    /**
     * 2, 3, 4 and 8 bits: the codes are decoded in registers and dequantized in one pass. A code {@code c} becomes a float
     * without a conversion: the bits {@code MAGIC_BITS | c} are the float {@code 1.5 * 2^23 + c}, and subtracting
     * {@code 1.5 * 2^23 + zero} (exact: both are integers below 2^24) leaves {@code c - zero} exactly, as the scalar
     * code's {@code (float) c - zero}; the product by the scale then rounds once in both. At 4 bits a step widens 16
     * packed bytes to int lanes and copies each to two lanes ({@link #PAIR_LOW}, {@link #PAIR_HIGH}), which shift by
     * 0 or 4 and mask: the and and the or become one instruction on AVX-512 (vpternlogd); 2 bits likewise, four lanes
     * per byte; 3 bits at 512 bits with two lane shuffles per code (the two bytes it lies in). 5, 6 and 7 bits (and 3
     * at narrower widths) unpack into a scratch buffer and dequantize per group, as before.
     */
    @Override
    public void dequantizeGroups(
            byte[] packed,
            int pOff,
            int n,
            int bits,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff) {
        if (bits == 4 && groupSize % 2 == 0 && LITTLE_ENDIAN) {
            VectorLinearUnrolled.dequantizeGroups4(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else if (bits == 2 && groupSize % 4 == 0) {
            VectorLinearUnrolled.dequantizeGroups2(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else if (bits == 3 && groupSize % 8 == 0 && F.length() == 16) {
            VectorLinearUnrolled.dequantizeGroups3(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else if (bits == 8) {
            VectorLinearUnrolled.dequantizeGroups8(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else {
            // unpack (SWAR) into a buffer, then dequantize per group; calling these from the scalar class instead (as
            // a shared definition) measured 13% slower at 3 bits and 256 bits
            byte[] codes = KernelScratch.codeBuffer(n);
            unpack(packed, pOff, n, bits, codes, 0);
            for (int g = 0; g < n / groupSize; g++) {
                dequantize(
                        codes,
                        g * groupSize,
                        groupSize,
                        scales[sOff + g],
                        zeros[zOff + g] & 0xFF,
                        out,
                        outOff + g * groupSize);
            }
        }
    }

    @Override
    public void pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff) {
        if (bits == 8) {
            System.arraycopy(codes, codesOff, packed, packedOff, n);
            return;
        }
        if (bits != 4) {
            // 2, 3, 5, 6, 7 bits: eight codes per 64-bit word, then the reference bit stream for the tail
            int done = SwarPacking.pack(codes, codesOff, n, bits, packed, packedOff);
            ScalarLinearKernels.packLoop(codes, codesOff + done, n - done, bits, packed, packedOff + done / 8 * bits);
            return;
        }
        if (!LITTLE_ENDIAN) {
            ScalarLinearKernels.packLoop(codes, codesOff, n, bits, packed, packedOff);
            return;
        }
        int i = packNibbles(codes, codesOff, n, packed, packedOff, false);
        // scalar tail
        ScalarLinearKernels.packLoop(codes, codesOff + i, n - i, bits, packed, packedOff + i / 2);
    }

    /**
     * Packs whole vectors of code pairs, two per byte, and returns the number of codes done. Byte pairs are read as
     * little-endian shorts {@code s = c0 | c1 << 8}: the low byte of {@code s | s >>> 4} is {@code c0 | c1 << 4} (low
     * nibble first, quant4j's order), that of {@code s << 4 | s >>> 8} is {@code c0 << 4 | c1} (high nibble first,
     * bitsandbytes' order).
     */
    static int packNibbles(byte[] codes, int codesOff, int n, byte[] packed, int packedOff, boolean highFirst) {
        int step = PACK_BYTES.length();
        int bound = n - n % step;
        for (int i = 0; i < bound; i += step) {
            ShortVector s =
                    ByteVector.fromArray(PACK_BYTES, codes, codesOff + i).reinterpretAsShorts();
            ShortVector pairs = highFirst
                    ? s.lanewise(VectorOperators.LSHL, 4).or(s.lanewise(VectorOperators.LSHR, 8))
                    : s.or(s.lanewise(VectorOperators.LSHR, 4));
            ((ByteVector) pairs.convertShape(VectorOperators.S2B, HALF_BYTES, 0)).intoArray(packed, packedOff + i / 2);
        }
        return bound;
    }

    @Override
    public void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        if (bits == 8) {
            System.arraycopy(packed, packedOff, codes, codesOff, n);
            return;
        }
        if (bits != 4) {
            int done = SwarPacking.unpack(packed, packedOff, n, bits, codes, codesOff);
            ScalarLinearKernels.unpackLoop(packed, packedOff + done / 8 * bits, n - done, bits, codes, codesOff + done);
            return;
        }
        if (!LITTLE_ENDIAN) {
            ScalarLinearKernels.unpackLoop(packed, packedOff, n, bits, codes, codesOff);
            return;
        }
        // Each packed byte p becomes the short (p & 0xF) | (p >>> 4) << 8, i.e. the byte pair [low, high nibble].
        int step = PACK_BYTES.length();
        int bound = n - n % step;
        int i = 0;
        for (; i < bound; i += step) {
            ShortVector s = (ShortVector) ByteVector.fromArray(HALF_BYTES, packed, packedOff + i / 2)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, PACK_SHORTS, 0);
            s.and((short) 0xF)
                    .or(s.lanewise(VectorOperators.LSHR, 4).lanewise(VectorOperators.LSHL, 8))
                    .reinterpretAsBytes()
                    .intoArray(codes, codesOff + i);
        }
        // scalar tail
        ScalarLinearKernels.unpackLoop(packed, packedOff + i / 2, n - i, bits, codes, codesOff + i);
    }
}
