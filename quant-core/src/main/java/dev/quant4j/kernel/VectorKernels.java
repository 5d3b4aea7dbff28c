package dev.quant4j.kernel;

import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.LongVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code jdk.incubator.vector} kernels at one float vector width per JVM: 128, 256 or 512 bits.
 *
 * <p>Loaded only through {@link Kernels} when the module is present. Every method has a vector body over
 * {@code species.loopBound(len)} followed by a scalar tail that computes exactly what {@link ScalarKernels} does, so
 * integer results are identical. Float sums use several accumulators and differ from the scalar order by rounding
 * only.
 *
 * <p>Two rules keep C2 from boxing vectors on the heap (a kernel 2-5x slower with the same results; {@code
 * KernelAllocationTest} watches for it). No helper of ours takes or returns a vector: one the JIT does not inline
 * boxes every vector that crosses it (the exception is {@link #sumLanes}, small, called once per call after a loop).
 * And a vector carried around a loop is not the receiver of a Vector API call inside the loop (nor after it where
 * that costs nothing) ({@code x = fresh.add(x)}, not {@code x = x.add(fresh)}): when C2
 * parses the loop it types the loop variable as {@code FloatVector}, not the species' final class, so a call on it is
 * virtual and inlines only through its type profile, which is absent when tiered compilation compiled the Vector API
 * method without profiling (at tier 2, when the compile queue is long). Seen in session 7 with {@code
 * -XX:+PrintInlining}: {@code count.add(one, mask)} in the codebook encoder's threshold loop, "FloatVector::lanewise
 * failed to inline: virtual call", 1.4-1.6 MB per 4096 values, in about one JVM of twenty.
 */
final class VectorKernels extends ScalarKernels {

    /** {@code 1.5 * 2^23}: adding and subtracting it rounds any |v| <= 2^22 to an integer, half to even. */
    private static final float ROUND_MAGIC = 12582912f;
    /** Float bits of {@link #ROUND_MAGIC}, 0x4B400000: the bits of {@code ROUND_MAGIC + k} are {@code MAGIC_BITS + k}. */
    private static final int MAGIC_BITS = Float.floatToRawIntBits(ROUND_MAGIC);

    /*
     * Species are static finals, fixed once per JVM by VectorFactory.BITS: the JIT only turns Vector API calls into
     * SIMD instructions when the species is a compile-time constant (an instance field is not).
     */
    private static final VectorSpecies<Float> F =
            VectorSpecies.of(float.class, VectorShape.forBitSize(VectorFactory.BITS));
    private static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Byte species with {@code max(8, F.length())} lanes: holds the codes of {@code BYTE_PARTS} float vectors. */
    private static final VectorSpecies<Byte> B =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(8, F.length()) * 8));

    private static final int BYTE_PARTS = B.length() / F.length();
    /** 4-bit packing: {@code PACK_BYTES} codes (as shorts in {@code PACK_SHORTS}) become {@code HALF_BYTES} bytes. */
    private static final VectorSpecies<Byte> PACK_BYTES = VectorSpecies.of(byte.class, F.vectorShape());

    private static final VectorSpecies<Short> PACK_SHORTS = VectorSpecies.of(short.class, F.vectorShape());
    private static final VectorSpecies<Byte> HALF_BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    /** Lanes of the upper half and of the lower half; shuffles {@code i -> i ^ (L/2)}, {@code i ^ (L/4)} ... {@code i ^ 1}. */
    private static final VectorMask<Float> UPPER =
            VectorMask.fromLong(F, ((1L << F.length()) - 1) & -(1L << (F.length() / 2)));

    private static final VectorMask<Float> LOWER = UPPER.not();
    /** Every lane: {@code zero.blend(v, ALL_LANES)} is {@code v} as a fresh vector (see the class comment). */
    private static final VectorMask<Float> ALL_LANES = F.maskAll(true);

    private static final VectorShuffle<Float>[] XOR = xorShuffles();
    /** Codes of one {@link #decode4} step, with room for the widest byte vector read at its last position. */
    private static final ThreadLocal<byte[]> DECODE_SCRATCH =
            ThreadLocal.withInitial(() -> new byte[PACK_BYTES.length() + B.length()]);

    private static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    VectorKernels() {}

    /**
     * The sum of the lanes by a fixed tree of exact lane permutations and IEEE additions ({@code i ^ L/2}, then {@code
     * i ^ L/4}, ... {@code i ^ 1}). Unlike {@code reduceLanes(ADD)}, whose order the JIT's intrinsic and the
     * interpreter's Java fallback choose differently, this gives the same float in every compilation tier, so results
     * do not depend on which thread ran warm code.
     */
    private static float sumLanes(FloatVector sum) {
        // the argument is usually a loop's accumulator: copied into a fresh vector first, so that no call has the
        // loop variable as its receiver (class comment)
        FloatVector v = FloatVector.zero(F).blend(sum, ALL_LANES);
        // unrolled over constant shuffles (F.length() folds): small enough that C2 inlines it even into the
        // eight-row kernel, where a loop over the XOR array made it box vectors on the heap
        if (F.length() >= 16) {
            v = v.add(v.rearrange(XOR_8));
        }
        if (F.length() >= 8) {
            v = v.add(v.rearrange(XOR_4));
        }
        v = v.add(v.rearrange(XOR_2));
        return v.add(v.rearrange(XOR_1)).lane(0);
    }

    /** Up to {@code L} vectors' lanes, stored by the multi-row products for {@link #sumLanesOfEach}. */
    private static final ThreadLocal<float[]> LANES_SCRATCH =
            ThreadLocal.withInitial(() -> new float[F.length() * F.length()]);

    /**
     * {@link #sumLanes} of each of {@code count <= L} vectors stored one after the other at {@code lanes[0 ...]}, into
     * {@code out[outOff ... outOff + count)}, for all of them at once: the transposed reduction of {@link #reduceLanes}
     * with additions, {@code L - 1} combinations of two {@code selectFrom} and one add instead of {@code count} trees of
     * {@code L - 1} dependent scalar additions. Each lane still adds {@code a[i] + a[i + d]} for {@code d = L/2 ... 1},
     * the tree of {@link #sumLanes}, so each sum is the same float. Vectors past {@code count} are zeroed first;
     * overwrites {@code lanes}. Takes and returns no vector (a call the JIT does not inline boxes nothing).
     */
    private static void sumLanesOfEach(float[] lanes, int count, float[] out, int outOff) {
        int l = F.length();
        Arrays.fill(lanes, count * l, l * l, 0f);
        for (int level = 0, n = l; n > 1; level++, n >>= 1) {
            IntVector left = IntVector.fromArray(I, HALVES, level * 2 * l);
            IntVector right = IntVector.fromArray(I, HALVES, level * 2 * l + l);
            for (int p = 0; p < n / 2; p++) {
                IntVector v0 = FloatVector.fromArray(F, lanes, 2 * p * l).reinterpretAsInts();
                IntVector v1 = FloatVector.fromArray(F, lanes, 2 * p * l + l).reinterpretAsInts();
                left.selectFrom(v0, v1)
                        .reinterpretAsFloats()
                        .add(right.selectFrom(v0, v1).reinterpretAsFloats())
                        .intoArray(lanes, p * l);
            }
        }
        System.arraycopy(lanes, 0, out, outOff, count);
    }

    /** {@code i -> i ^ d} for the unrolled {@link #sumLanes}; {@code d} capped at half the lanes (unused beyond). */
    private static final VectorShuffle<Float> XOR_8 = xor(Math.min(8, F.length() / 2));

    private static final VectorShuffle<Float> XOR_4 = xor(Math.min(4, F.length() / 2));
    private static final VectorShuffle<Float> XOR_2 = xor(2);
    private static final VectorShuffle<Float> XOR_1 = xor(1);

    /** The same permutations for int lanes (absmax in the integer domain). */
    private static final VectorShuffle<Integer> XOR_8_INT = XOR_8.cast(I);

    private static final VectorShuffle<Integer> XOR_4_INT = XOR_4.cast(I);
    private static final VectorShuffle<Integer> XOR_2_INT = XOR_2.cast(I);
    private static final VectorShuffle<Integer> XOR_1_INT = XOR_1.cast(I);

    private static VectorShuffle<Float> xor(int d) {
        return VectorShuffle.fromOp(F, lane -> lane ^ d);
    }

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] xorShuffles() {
        int steps = Integer.numberOfTrailingZeros(F.length());
        VectorShuffle<Float>[] s = new VectorShuffle[steps];
        for (int k = 0; k < steps; k++) {
            int d = F.length() >> (k + 1);
            s[k] = VectorShuffle.fromOp(F, lane -> lane ^ d);
        }
        return s;
    }

    @Override
    public String name() {
        return "vector-" + F.vectorBitSize();
    }

    @Override
    public boolean allFinite(float[] x, int off, int len) {
        int i = 0;
        int step = F.length();
        // v * 0 is 0 for a finite v and NaN otherwise; sums of the probes stay 0 unless one is NaN
        FloatVector p1 = FloatVector.zero(F);
        FloatVector p2 = FloatVector.zero(F);
        int bound2 = len - len % (2 * step);
        for (; i < bound2; i += 2 * step) {
            p1 = FloatVector.fromArray(F, x, off + i).mul(0f).add(p1);
            p2 = FloatVector.fromArray(F, x, off + i + step).mul(0f).add(p2);
        }
        boolean finite = FloatVector.zero(F).add(p1).add(p2).reduceLanes(VectorOperators.ADD) == 0f;
        // scalar tail
        for (; i < len; i++) {
            finite &= Float.isFinite(x[off + i]);
        }
        return finite;
    }

    /**
     * Minimum and maximum with compare-and-blend (Math.min's NaN and signed-zero rules cost several instructions per
     * lane on x86), then one combined reduction: lanes of the lower half reduce the minimum, lanes of the upper half
     * the maximum, halving the distance each step, so both come out of one chain of shuffles.
     */
    @Override
    public long minMax(float[] x, int off, int len) {
        int i = 0;
        float min = x[off];
        float max = x[off];
        int bound = F.loopBound(len);
        if (bound > 0) {
            FloatVector lo = FloatVector.fromArray(F, x, off);
            FloatVector hi = lo;
            for (i = F.length(); i < bound; i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, x, off + i);
                // the new vector is the receiver, the loop-carried one an argument (class comment), with the
                // complementary predicate (keep lo where v >= lo): the same as "take v where v < lo" for the finite
                // input the contract asks for, zeros included, without a mask negation (7% of a 5-bit quantize)
                lo = v.blend(lo, v.compare(VectorOperators.GE, lo));
                hi = v.blend(hi, v.compare(VectorOperators.LE, hi));
            }
            // lower half: min of lo and its upper half; upper half: max of hi and its lower half
            // straight-line code (no loop here), the lane mask written out (a helper taking vectors boxes them when
            // the JIT does not inline it). Its first two calls have the loop's lo as receiver, an exception to the
            // class comment's rule: copying lo and hi into fresh vectors first cost 4-5% of a 5-bit quantize, which
            // calls this per group; without a type profile they would box two vectors per call
            FloatVector c = lo.blend(hi, UPPER);
            FloatVector r = lo.blend(hi, LOWER).rearrange(XOR[0]);
            c = c.blend(
                    r,
                    r.compare(VectorOperators.LT, c)
                            .and(LOWER)
                            .or(r.compare(VectorOperators.GT, c).and(UPPER)));
            if (F.length() >= 16) {
                r = c.rearrange(XOR_4);
                c = c.blend(
                        r,
                        r.compare(VectorOperators.LT, c)
                                .and(LOWER)
                                .or(r.compare(VectorOperators.GT, c).and(UPPER)));
            }
            if (F.length() >= 8) {
                r = c.rearrange(XOR_2);
                c = c.blend(
                        r,
                        r.compare(VectorOperators.LT, c)
                                .and(LOWER)
                                .or(r.compare(VectorOperators.GT, c).and(UPPER)));
            }
            r = c.rearrange(XOR_1);
            c = c.blend(
                    r,
                    r.compare(VectorOperators.LT, c)
                            .and(LOWER)
                            .or(r.compare(VectorOperators.GT, c).and(UPPER)));
            min = c.lane(0);
            max = c.lane(F.length() / 2);
        }
        // scalar tail
        for (; i < len; i++) {
            float v = x[off + i];
            min = v < min ? v : min;
            max = v > max ? v : max;
        }
        return QuantKernels.packMinMax(min, max);
    }

    @Override
    public float absMax(float[] x, int off, int len) {
        int i = 0;
        float m = 0f;
        int bound = F.loopBound(len);
        if (bound > 0) {
            FloatVector acc = FloatVector.zero(F);
            for (; i < bound; i += F.length()) {
                FloatVector v = FloatVector.fromArray(F, x, off + i).abs();
                acc = v.blend(acc, v.compare(VectorOperators.LE, acc)); // as in minMax: finite input
            }
            // all lanes are >= 0, so MAX is exact whatever its rules for NaN and signed zeros (and max with 0 is a
            // no-op that makes the receiver a fresh vector, not the loop's)
            m = FloatVector.zero(F).max(acc).reduceLanes(VectorOperators.MAX);
        }
        // scalar tail
        for (; i < len; i++) {
            float v = Math.abs(x[off + i]);
            m = v > m ? v : m;
        }
        return m;
    }

    /**
     * {@link ScalarKernels#linearScale} and {@link ScalarKernels#linearZero} for a vector of groups at a time, with
     * the same float operations in the same order. A chunk whose scale would need the overflow or underflow guard is
     * left to the scalar code (it never happens for sane weights).
     */
    @Override
    public void linearParams(
            float[] mins, float[] maxs, int n, int bits, int form, float[] scales, int sOff, float[] zeros, int zOff) {
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
                for (int j = i; j < i + F.length(); j++) {
                    scalarParams(mins, maxs, j, bits, form, scales, sOff, zeros, zOff);
                }
            }
        }
        // scalar tail
        for (; i < n; i++) {
            scalarParams(mins, maxs, i, bits, form, scales, sOff, zeros, zOff);
        }
    }

    private static void scalarParams(
            float[] mins, float[] maxs, int j, int bits, int form, float[] scales, int sOff, float[] zeros, int zOff) {
        float scale = linearScale(bits, form, mins[j], maxs[j]);
        scales[sOff + j] = scale;
        zeros[zOff + j] = linearZero(bits, form, mins[j], maxs[j], scale);
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
        // every whole vector (one byte-vector store each; at 128 bits the last merges, see codebookRange), then the
        // scalar tail
        int i = quantizeRange(x, off, len, scale, inv, lo, hi, bias, codes, codesOff);
        super.quantize(x, off + i, len - i, scale, zero, qmin, qmax, codes, codesOff + i);
    }

    /** Per level of {@link #reduceLanes}: the lanes that meet, as two index vectors for {@code selectFrom}. */
    private static final int[] HALVES = halvingIndexes();

    /** Lanes {@code 0, 2, 4, ...} of two int vectors side by side: the low ints of their long lanes. */
    private static final IntVector EVEN_LANES = IntVector.zero(I).addIndex(2);

    private static final int EXPONENT = 0x7F800000;

    /** Bytes {@code 0, 1, 2, 4, 5, 6, 8, ...}: the three low bytes of every int lane, in order (3-bit packing). */
    private static final VectorShuffle<Byte> TRIPLE_BYTES =
            VectorShuffle.fromOp(PACK_BYTES, j -> j < 3 * F.length() ? 4 * (j / 3) + j % 3 : 0);

    private static final VectorMask<Byte> TRIPLE_MASK = PACK_BYTES.indexInRange(0, 3 * F.length());

    /**
     * Quotients below this bound need none of {@link #codes}'s care for huge values (it is far above any code; the
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
            int form,
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
                if (!super.quantizeGroups(
                        x, off + g * gsize, n, gsize, bits, form, qmin, scales, sOff + g, zeros, zOff + g, packed, p)) {
                    return false;
                }
            }
            return true;
        }
        int batches = (groups + l - 1) / l;
        int batchInts = l / 2 * l; // a batch of L groups: L / 2 vectors after the first level
        GroupScratch s = GroupScratch.get(batches * l)
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
     * Lane indexes for {@link #reduceLanes}: before level {@code k} a vector holds {@code 2^k} groups of {@code s = L
     * / 2^k} lanes; its result takes the first halves of every group of the pair (left) and the second halves (right).
     */
    private static int[] halvingIndexes() {
        int l = F.length();
        int levels = Integer.numberOfTrailingZeros(l);
        int[] idx = new int[Math.max(1, levels) * 2 * l];
        for (int level = 0; level < levels; level++) {
            int s = l >> level;
            int half = s / 2;
            int perVector = l / s;
            for (int j = 0; j < l; j++) {
                int k = j / half;
                int t = j % half;
                int from = k < perVector ? k * s + t : l + (k - perVector) * s + t;
                idx[level * 2 * l + j] = from;
                idx[level * 2 * l + l + j] = from + half;
            }
        }
        return idx;
    }

    /**
     * Minimum and maximum of every group from its reduced bit maxima into {@code s.mins} and {@code s.maxs}; false if
     * a value is not finite (an infinity or NaN has the largest bits of its sign). A group with values of one sign
     * only, where one of the two maxima says nothing, is scanned again with {@link #minMax}.
     */
    private boolean groupRanges(float[] x, int off, int groups, int gsize, GroupScratch s) {
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
                    long mm = minMax(x, off + g * gsize, gsize);
                    s.mins[g] = QuantKernels.min(mm);
                    s.maxs[g] = QuantKernels.max(mm);
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
     * The codes of every group at 2, 3, 4 or 8 bits, as {@link #codes} computes them. At 3 bits (512 bits only) codes
     * become pairs (6 bits), pairs of pairs (12) and eights (24, three bytes) by the step of 4 bits with shifts of 29,
     * 26 and 20, through an int buffer; a byte shuffle then drops every fourth byte and a masked store writes 48. At 8
     * bits each vector is narrowed to bytes and stored. At 4 bits two vectors at a time: the codes of lanes {@code 2j}
     * and {@code 2j + 1} share a long lane, {@code c | c >>> 28} puts {@code c0 | c1 << 4} in its low byte, and the low
     * ints of both vectors' long lanes are gathered and narrowed to bytes. At 2 bits four vectors: {@code c | c >>> 30}
     * makes pairs {@code c0 | c1 << 2}, gathered, and the step of 4 bits joins pairs of pairs into bytes.
     *
     * <p>For GPTQ's forms at 2, 4 and 8 bits the per-group values come first, L groups at a time ({@link #codeParams}),
     * then the codes of the whole run in a method of their own per width ({@link #codes8}, {@link #codes4}, {@link
     * #codes2}; no vector crosses a call), then the rare careful groups are written over: 8-bit codes of 64K values in
     * L2 8.2 -> 6.6 cycles per vector, a 128 x 2048 quantize 69 -> 40-46 us (throwaway harness, session 9). 3 bits
     * stays group by group.
     *
     * <p>Each vector's chain is written out: the same chain in a small helper returning a vector ({@code fastCodes}), or
     * the joining step in one ({@code joinFields}), was inlined by C2 in some JVMs and not in others, where it boxed the
     * vectors (6,144 bytes per 3-bit call; 2-bit 7 times slower), session 6.
     */
    private void fusedCodes(
            float[] x,
            int off,
            int groups,
            int gsize,
            int bits,
            int form,
            int qmin,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            byte[] packed,
            int pOff,
            GroupScratch s) {
        int maxq = (1 << bits) - 1;
        if (form != MINMAX && bits != 3) {
            int careful = codeParams(groups, maxq, scales, sOff, zeros, zOff, s);
            switch (bits) {
                case 8 -> codes8(x, off, groups, gsize, s, packed, pOff);
                case 4 -> codes4(x, off, groups, gsize, s, packed, pOff);
                default -> codes2(x, off, groups, gsize, s, packed, pOff);
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
        // clamped), and 3 bits, whose codes measured 8% slower in L2 as a method of their own like codes8 (session 9)
        int l = F.length();
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
            int hi = MAGIC_BITS - z + maxq;
            int bias = MAGIC_BITS - z;
            FloatVector vinv = FloatVector.broadcast(F, inv);
            FloatVector vneg = FloatVector.broadcast(F, -scale);
            // codes to pairs c0 | c1 << 3 (6 bits), as at 4 bits, into this thread's int buffer
            int[] work = s.bitWork;
            for (int i = 0; i < gsize; i += 2 * l) {
                FloatVector v0 = FloatVector.fromArray(F, x, goff + i);
                FloatVector q0 = v0.mul(vinv);
                LongVector c0 = q0.fma(vneg, v0)
                        .fma(vinv, q0)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                FloatVector v1 = FloatVector.fromArray(F, x, goff + i + 1 * l);
                FloatVector q1 = v1.mul(vinv);
                LongVector c1 = q1.fma(vneg, v1)
                        .fma(vinv, q1)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                EVEN_LANES
                        .selectFrom(
                                c0.or(c0.lanewise(VectorOperators.LSHR, 29)).reinterpretAsInts(),
                                c1.or(c1.lanewise(VectorOperators.LSHR, 29)).reinterpretAsInts())
                        .intoArray(work, i / 2);
            }
            // pairs of pairs (12 bits), in place
            for (int j = 0; j < gsize / 2; j += 2 * l) {
                LongVector a = IntVector.fromArray(I, work, j).reinterpretAsLongs();
                LongVector b = IntVector.fromArray(I, work, j + l).reinterpretAsLongs();
                EVEN_LANES
                        .selectFrom(
                                a.or(a.lanewise(VectorOperators.LSHR, 26)).reinterpretAsInts(),
                                b.or(b.lanewise(VectorOperators.LSHR, 26)).reinterpretAsInts())
                        .intoArray(work, j / 2);
            }
            // eight codes (24 bits, three bytes) per int lane; the three low bytes of each lane, stored
            for (int j = 0; j < gsize / 4; j += 2 * l) {
                LongVector a = IntVector.fromArray(I, work, j).reinterpretAsLongs();
                LongVector b = IntVector.fromArray(I, work, j + l).reinterpretAsLongs();
                EVEN_LANES
                        .selectFrom(
                                a.or(a.lanewise(VectorOperators.LSHR, 20)).reinterpretAsInts(),
                                b.or(b.lanewise(VectorOperators.LSHR, 20)).reinterpretAsInts())
                        .reinterpretAsBytes()
                        .rearrange(TRIPLE_BYTES)
                        .intoArray(packed, p + j / 2 * 3, TRIPLE_MASK);
            }
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
            GroupScratch s,
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
     * group (session 9). Returns the number of careful groups.
     */
    private static int codeParams(
            int groups, int maxq, float[] scales, int sOff, byte[] zeros, int zOff, GroupScratch s) {
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

    /**
     * The 8-bit codes of {@code groups} groups from their parameters in {@code s} (see {@link #fusedCodes}): a method
     * of its own, with the parameters broadcast from arrays, because inside {@code fusedCodes} C2 rebuilt the broadcasts
     * of {@code 1 / S} and {@code -S} at every use (shuffle-port work in every step) and spilled the loop's values.
     */
    private static void codes8(float[] x, int off, int groups, int gsize, GroupScratch s, byte[] packed, int pOff) {
        int l = F.length();
        for (int g = 0; g < groups; g++) {
            FloatVector vinv = FloatVector.broadcast(F, s.invs[g]);
            FloatVector vneg = FloatVector.broadcast(F, s.negs[g]);
            int hi = s.his[g];
            int bias = s.biases[g];
            int o = off + g * gsize;
            int p = pOff + g * gsize;
            for (int i = 0; i < gsize; i += l) {
                FloatVector v = FloatVector.fromArray(F, x, o + i);
                FloatVector q = v.mul(vinv);
                IntVector c = q.fma(vneg, v)
                        .fma(vinv, q)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias);
                ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(packed, p + i);
            }
        }
    }

    /** The 4-bit codes of {@code groups} groups, two vectors at a time (see {@link #fusedCodes}, {@link #codes8}). */
    private static void codes4(float[] x, int off, int groups, int gsize, GroupScratch s, byte[] packed, int pOff) {
        int l = F.length();
        for (int g = 0; g < groups; g++) {
            FloatVector vinv = FloatVector.broadcast(F, s.invs[g]);
            FloatVector vneg = FloatVector.broadcast(F, s.negs[g]);
            int hi = s.his[g];
            int bias = s.biases[g];
            int o = off + g * gsize;
            int p = pOff + g * gsize / 2;
            for (int i = 0; i < gsize; i += 2 * l) {
                FloatVector v0 = FloatVector.fromArray(F, x, o + i);
                FloatVector q0 = v0.mul(vinv);
                LongVector c0 = q0.fma(vneg, v0)
                        .fma(vinv, q0)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                FloatVector v1 = FloatVector.fromArray(F, x, o + i + l);
                FloatVector q1 = v1.mul(vinv);
                LongVector c1 = q1.fma(vneg, v1)
                        .fma(vinv, q1)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                IntVector pairs = EVEN_LANES.selectFrom(
                        c0.or(c0.lanewise(VectorOperators.LSHR, 28)).reinterpretAsInts(),
                        c1.or(c1.lanewise(VectorOperators.LSHR, 28)).reinterpretAsInts());
                ((ByteVector) pairs.convertShape(VectorOperators.I2B, B, 0)).intoArray(packed, p + i / 2);
            }
        }
    }

    /** The 2-bit codes of {@code groups} groups, four vectors at a time (see {@link #fusedCodes}, {@link #codes8}). */
    private static void codes2(float[] x, int off, int groups, int gsize, GroupScratch s, byte[] packed, int pOff) {
        int l = F.length();
        for (int g = 0; g < groups; g++) {
            FloatVector vinv = FloatVector.broadcast(F, s.invs[g]);
            FloatVector vneg = FloatVector.broadcast(F, s.negs[g]);
            int hi = s.his[g];
            int bias = s.biases[g];
            int goff = off + g * gsize;
            int p = pOff + g * gsize / 4;
            for (int i = 0; i < gsize; i += 4 * l) {
                FloatVector v0 = FloatVector.fromArray(F, x, goff + i);
                FloatVector q0 = v0.mul(vinv);
                LongVector c0 = q0.fma(vneg, v0)
                        .fma(vinv, q0)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                FloatVector v1 = FloatVector.fromArray(F, x, goff + i + 1 * l);
                FloatVector q1 = v1.mul(vinv);
                LongVector c1 = q1.fma(vneg, v1)
                        .fma(vinv, q1)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                FloatVector v2 = FloatVector.fromArray(F, x, goff + i + 2 * l);
                FloatVector q2 = v2.mul(vinv);
                LongVector c2 = q2.fma(vneg, v2)
                        .fma(vinv, q2)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                FloatVector v3 = FloatVector.fromArray(F, x, goff + i + 3 * l);
                FloatVector q3 = v3.mul(vinv);
                LongVector c3 = q3.fma(vneg, v3)
                        .fma(vinv, q3)
                        .add(ROUND_MAGIC)
                        .reinterpretAsInts()
                        .min(hi)
                        .sub(bias)
                        .reinterpretAsLongs();
                // pairs c0 | c1 << 2 in the low ints, gathered; then pairs of pairs, as at 4 bits
                LongVector p01 = EVEN_LANES
                        .selectFrom(
                                c0.or(c0.lanewise(VectorOperators.LSHR, 30)).reinterpretAsInts(),
                                c1.or(c1.lanewise(VectorOperators.LSHR, 30)).reinterpretAsInts())
                        .reinterpretAsLongs();
                LongVector p23 = EVEN_LANES
                        .selectFrom(
                                c2.or(c2.lanewise(VectorOperators.LSHR, 30)).reinterpretAsInts(),
                                c3.or(c3.lanewise(VectorOperators.LSHR, 30)).reinterpretAsInts())
                        .reinterpretAsLongs();
                IntVector quads = EVEN_LANES.selectFrom(
                        p01.or(p01.lanewise(VectorOperators.LSHR, 28)).reinterpretAsInts(),
                        p23.or(p23.lanewise(VectorOperators.LSHR, 28)).reinterpretAsInts());
                ((ByteVector) quads.convertShape(VectorOperators.I2B, B, 0)).intoArray(packed, p + i / 4);
            }
        }
    }

    @Override
    public void encodeCodebook(
            float[] x,
            int off,
            int len,
            float inv,
            float[] thresholds,
            boolean signMagnitude,
            byte[] codes,
            int codesOff) {
        // every whole vector, as in quantize, then the scalar tail
        int i = codebookRange(x, off, len, inv, thresholds, signMagnitude, codes, codesOff);
        super.encodeCodebook(x, off + i, len - i, inv, thresholds, signMagnitude, codes, codesOff + i);
    }

    /**
     * Nibbles to codes in element order (the 4-bit unpack with the nibbles swapped: each packed byte p becomes the
     * byte pair [p >>> 4, p & 0xF]), then a table lookup by lane shuffles: the 16-entry table is split into vectors
     * of the lane count, each looked up with the wrapped indexes, and the right one blended in.
     */
    @Override
    public void decode4(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff) {
        // at 128 bits the table is four vectors: four shuffles and three blends per vector lose to the scalar lookup
        // (measured: 3.5 vs 4.7 GiB/s), so that width keeps the scalar code
        if (!LITTLE_ENDIAN || F.length() < 8) {
            super.decode4(packed, byteOff, n, table, out, outOff);
            return;
        }
        int chunks = Math.max(1, 16 / F.length());
        int step = PACK_BYTES.length(); // codes per step: two per packed byte
        int bound = n - n % step;
        byte[] codes = DECODE_SCRATCH.get();
        int i = 0;
        for (; i < bound; i += step) {
            ShortVector s = (ShortVector) ByteVector.fromArray(HALF_BYTES, packed, byteOff + i / 2)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, PACK_SHORTS, 0);
            s.lanewise(VectorOperators.LSHR, 4)
                    .or(s.and((short) 0xF).lanewise(VectorOperators.LSHL, 8))
                    .reinterpretAsBytes()
                    .intoArray(codes, 0);
            for (int j = 0; j < step; j += F.length()) {
                IntVector idx = (IntVector)
                        ByteVector.fromArray(B, codes, j).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                VectorShuffle<Float> sh = idx.toShuffle().cast(F).wrapIndexes();
                FloatVector r = FloatVector.fromArray(F, table, 0).rearrange(sh);
                for (int k = 1; k < chunks; k++) {
                    FloatVector part =
                            FloatVector.fromArray(F, table, k * F.length()).rearrange(sh);
                    VectorMask<Float> in =
                            idx.compare(VectorOperators.GE, k * F.length()).cast(F);
                    r = part.blend(r, in.not());
                }
                FloatVector.zero(F).blend(r, ALL_LANES).intoArray(out, outOff + i + j);
            }
        }
        // scalar tail
        super.decode4(packed, byteOff + i / 2, n - i, table, out, outOff + i);
    }

    /**
     * Fused: per block a vector absmax (blend on {@code >}, exact), one reciprocal, the threshold count of {@link
     * #codebookRange} per vector into a buffer of codes for all the blocks of the call, then one nibble-packing
     * pass over the whole buffer. The same float operations as the block-by-block calls, so the same bits.
     */
    @Override
    public void quantizeBlocks4(
            float[] x,
            int off,
            int nBlocks,
            int blockSize,
            float[] thresholds,
            boolean signMagnitude,
            float[] absmax,
            int aOff,
            byte[] packed,
            int pOff) {
        if (BYTE_PARTS != 1 || !LITTLE_ENDIAN || blockSize % F.length() != 0) {
            super.quantizeBlocks4(x, off, nBlocks, blockSize, thresholds, signMagnitude, absmax, aOff, packed, pOff);
            return;
        }
        int n = nBlocks * blockSize;
        byte[] codes = codeScratch(n);
        CellTables cells = CellTables.cached(thresholds, signMagnitude);
        // all the absmax values first: independent of each other, so their reductions overlap, instead of each
        // block's codes waiting for its own reduction and reciprocal. In the integer domain: the bits of |v| (the
        // sign cleared) order like the values, so one integer max per vector does what a compare and a blend do on
        // floats, and the lane reduction needs no NaN or signed-zero rules (the input is finite).
        int perStep = Math.max(1, MINI_CHUNK / blockSize);
        for (int first = 0; first < nBlocks; first += perStep) {
            int stop = Math.min(nBlocks, first + perStep);
            for (int b = first; b < stop; b++) {
                int start = off + b * blockSize;
                IntVector m = IntVector.zero(I);
                for (int i = 0; i < blockSize; i += F.length()) {
                    m = FloatVector.fromArray(F, x, start + i)
                            .reinterpretAsInts()
                            .and(0x7FFFFFFF)
                            .max(m);
                }
                m = IntVector.zero(I).max(m); // the same lanes (all >= 0), as a fresh vector (class comment)
                // written out, not a helper: a helper taking the vector would box it when C2 does not inline it
                if (F.length() >= 16) {
                    m = m.max(m.rearrange(XOR_8_INT));
                }
                if (F.length() >= 8) {
                    m = m.max(m.rearrange(XOR_4_INT));
                }
                m = m.max(m.rearrange(XOR_2_INT));
                m = m.max(m.rearrange(XOR_1_INT));
                absmax[aOff + b] = Float.intBitsToFloat(m.lane(0));
            }
            for (int b = first; b < stop; b++) {
                int start = off + b * blockSize;
                float inv = 1.0f / absmax[aOff + b];
                if (cells != null && absmax[aOff + b] == 0f) {
                    // an all-zero block: 0 * (1 / 0) is NaN in every lane, which the reference codes 0
                    java.util.Arrays.fill(codes, b * blockSize, (b + 1) * blockSize, (byte) 0);
                } else if (cells != null && inv != Float.POSITIVE_INFINITY) {
                    int last = cells.cells - 1;
                    boolean two = CellTables.TWO;
                    for (int i = 0; i < blockSize; i += F.length()) {
                        // the cell-table count of CellTables written out, with no helper of ours: in this large
                        // method C2 runs out of its inlining budget (NodeCountInliningCutoff), and a helper it does
                        // not inline boxes every vector it takes or returns (4x slower; the Vector API's own methods
                        // are force-inlined whatever the budget)
                        FloatVector q = FloatVector.fromArray(F, x, start + i).mul(inv);
                        FloatVector a = signMagnitude ? q.abs() : q;
                        IntVector cell = a.fma(cells.scale, cells.shift)
                                .reinterpretAsInts()
                                .sub(CellTables.CELL_MAGIC_BITS)
                                .max(0)
                                .min(last);
                        IntVector c = two ? cell.selectFrom(cells.below, cells.belowHi) : cell.selectFrom(cells.below);
                        IntVector t = two ? cell.selectFrom(cells.in0, cells.in0Hi) : cell.selectFrom(cells.in0);
                        c = c.add(
                                1,
                                a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                        .cast(I));
                        if (cells.perCell > 1) {
                            t = two ? cell.selectFrom(cells.in1, cells.in1Hi) : cell.selectFrom(cells.in1);
                            c = c.add(
                                    1,
                                    a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                            .cast(I));
                        }
                        if (cells.perCell > 2) {
                            t = two ? cell.selectFrom(cells.in2, cells.in2Hi) : cell.selectFrom(cells.in2);
                            c = c.add(
                                    1,
                                    a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                            .cast(I));
                        }
                        if (cells.perCell > 3) {
                            t = two ? cell.selectFrom(cells.in3, cells.in3Hi) : cell.selectFrom(cells.in3);
                            c = c.add(
                                    1,
                                    a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                            .cast(I));
                        }
                        if (signMagnitude) {
                            c = c.lanewise(VectorOperators.XOR, c.and(2).lanewise(VectorOperators.LSHL, 1))
                                    .lanewise(
                                            VectorOperators.OR,
                                            8,
                                            q.compare(VectorOperators.LT, 0f).cast(I));
                        }
                        ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, b * blockSize + i);
                    }
                } else {
                    // no tables, or a block of subnormals whose 1 / absmax overflows: its zeros become 0 * Inf = NaN,
                    // which counts no threshold (code 0, as the reference and bitsandbytes' decision tree give), while
                    // the tables would put NaN in the top cell
                    codebookRange(x, start, blockSize, inv, thresholds, signMagnitude, codes, b * blockSize);
                }
            }
        }
        int done = packNibbles(codes, 0, n, packed, pOff, true);
        // scalar tail
        super.packHighFirst4(codes, done, n - done, packed, pOff + done / 2);
    }

    /**
     * Values per step of {@link #quantizeBlocks4} (4 KiB of floats): the absmax of a step's blocks, then their codes,
     * so that the codes pass finds the values in L1 rather than L2. In L2 (1 MiB of values, a throwaway harness) a
     * call measured 99 against 117 us per 256K values right after the change (session 5), but 113-120 an hour later
     * and JMH in L2 only 8.8 against 8.6 GiB/s: a small gain at most; the caller's finiteness check over the whole call's values comes first and brings them from memory in one
     * burst, which measured faster on 4096 x 4096 than letting the steps fetch them (5.6-5.9 against 5.1 GB/s).
     */
    private static final int MINI_CHUNK = 1024;

    /**
     * The threshold count of {@link #codebookRange} with a table lookup instead of a compare per threshold. The range
     * of the counted value ({@code [-1, 1]} for NF4, the magnitude {@code [0, 1]} for FP4) is cut into cells; a
     * value's cell is the rounded {@code a * scale + shift} clamped to {@code [0, cells)} (see {@link #cell}), a
     * monotone function of {@code a}. Per cell the tables hold the number of thresholds whose cell is lower (all of
     * them are below every value of the cell) and the at most {@link #MAX_PER_CELL} thresholds in the cell itself
     * (padded with +Inf), so the count is {@code below[cell] + sum_k (a > inCell_k[cell])}: the same integer as
     * counting all thresholds, for every float (ties included: the comparison is the same strict one). At 512 bits
     * there are 32 cells, two vectors per table looked up together (vpermi2d, one instruction), which leaves NF4 and
     * FP4 at most one threshold per cell: two lookups and one compare per vector of values. Narrower widths have one
     * cell per lane (a two-vector lookup is not an AVX2 instruction) and NF4 two thresholds in some cells. Built per
     * call from the thresholds (a few hundred operations); {@code null} where a cell would hold too many, and the
     * caller counts.
     */
    private static final class CellTables {
        static final int MAX_PER_CELL = 4;
        /** Whether the tables are two vectors (32 cells at 512 bits). */
        static final boolean TWO = F.length() == 16;

        /** The thresholds these tables were built from (a copy). */
        final float[] thresholds;

        final float scale;
        final float shift;
        final int cells;
        /** How many of {@code in0 .. in3} hold thresholds (the rest are +Inf). */
        final int perCell;

        final IntVector below;
        final IntVector belowHi;
        /** The thresholds inside each cell, as float bits; {@code *Hi}: cells {@code L} and up when {@link #TWO}. */
        final IntVector in0;

        final IntVector in0Hi;
        final IntVector in1;
        final IntVector in1Hi;
        final IntVector in2;
        final IntVector in2Hi;
        final IntVector in3;
        final IntVector in3Hi;

        private CellTables(
                float[] thresholds, float scale, float shift, int cells, int perCell, int[] below, float[][] inCell) {
            this.thresholds = thresholds;
            this.scale = scale;
            this.shift = shift;
            this.cells = cells;
            this.perCell = perCell;
            int lanes = F.length();
            this.below = IntVector.fromArray(I, below, 0);
            this.belowHi = TWO ? IntVector.fromArray(I, below, lanes) : this.below;
            this.in0 = bits(inCell[0], 0);
            this.in0Hi = TWO ? bits(inCell[0], lanes) : in0;
            this.in1 = bits(inCell[1], 0);
            this.in1Hi = TWO ? bits(inCell[1], lanes) : in1;
            this.in2 = bits(inCell[2], 0);
            this.in2Hi = TWO ? bits(inCell[2], lanes) : in2;
            this.in3 = bits(inCell[3], 0);
            this.in3Hi = TWO ? bits(inCell[3], lanes) : in3;
        }

        private static IntVector bits(float[] values, int from) {
            return FloatVector.fromArray(F, values, from).reinterpretAsInts();
        }

        /** The last tables built for each kind of code (NF4's plain count, FP4's sign and magnitude). */
        private static volatile CellTables lastPlain;

        private static volatile CellTables lastSignMagnitude;

        /**
         * {@link #of}, reusing the last tables built for the same thresholds: one quantization calls this per 64K
         * values, and the tables (vectors held in fields, so on the heap) were 1.7 KB of garbage each time. Immutable,
         * so a race only builds them twice.
         */
        static CellTables cached(float[] thresholds, boolean signMagnitude) {
            CellTables last = signMagnitude ? lastSignMagnitude : lastPlain;
            if (last != null && Arrays.equals(last.thresholds, thresholds)) {
                return last;
            }
            CellTables built = of(thresholds, signMagnitude);
            if (built != null) {
                if (signMagnitude) {
                    lastSignMagnitude = built;
                } else {
                    lastPlain = built;
                }
            }
            return built;
        }

        static CellTables of(float[] thresholds, boolean signMagnitude) {
            int lanes = F.length();
            if (lanes < 8) {
                return null;
            }
            int cells = TWO ? 2 * lanes : lanes;
            float lo = signMagnitude ? 0f : -1f;
            float scale = cells / (1f - lo);
            float shift = -lo * scale + CELL_MAGIC; // exact: 2^23, 2^23 + 8 or 2^23 + 16
            int[] below = new int[cells];
            float[][] inCell = new float[MAX_PER_CELL][cells];
            for (float[] row : inCell) {
                java.util.Arrays.fill(row, Float.POSITIVE_INFINITY);
            }
            int[] count = new int[cells];
            for (float t : thresholds) {
                int cell = cell(t, scale, shift, cells);
                for (int c = cell + 1; c < cells; c++) {
                    below[c]++;
                }
                if (count[cell] == MAX_PER_CELL) {
                    return null;
                }
                inCell[count[cell]++][cell] = t;
            }
            int k = 0;
            for (int c : count) {
                k = Math.max(k, c);
            }
            return new CellTables(thresholds.clone(), scale, shift, cells, k, below, inCell);
        }

        /** {@code 2^23}: added by the cell function's fma, so that the rounded sum's low bits are the cell. */
        static final float CELL_MAGIC = 0x1p23f;

        static final int CELL_MAGIC_BITS = Float.floatToRawIntBits(CELL_MAGIC);

        /**
         * The scalar twin of the vector cell function, the same float operations: {@code fma(a, scale, shift + 2^23)}
         * rounds {@code a * scale + shift} to an integer (half to even) in the float's low bits, which are then
         * clamped to {@code [0, cells)}: monotone in {@code a}, which is all the tables need. For finite {@code a}
         * only (a NaN would land in the top cell; the kernel never passes one: blocks whose {@code 1 / absmax} is infinite,
         * all-zero or subnormal, are coded apart).
         */
        private static int cell(float a, float scale, float shift, int cells) {
            int c = Float.floatToRawIntBits(Math.fma(a, scale, shift)) - CELL_MAGIC_BITS;
            return Math.min(cells - 1, Math.max(0, c));
        }
    }

    /** Eight packed bytes, and their sixteen codes in element order (one byte each). */
    private static final VectorSpecies<Byte> BYTES_64 = ByteVector.SPECIES_64;

    private static final VectorSpecies<Short> SHORTS_128 = ShortVector.SPECIES_128;

    /**
     * Per block, the codebook times the absmax in vectors (the same float32 products as the scalar table); per
     * sixteen codes, eight packed bytes widened to shorts, their nibbles swapped into element order, widened to int
     * lanes and looked up by a lane shuffle (at 256 bits the 16-entry table is two vectors: two shuffles and a blend).
     * No buffer between the steps.
     */
    @Override
    public void decodeBlocks4(
            byte[] packed,
            int pOff,
            int nBlocks,
            int blockSize,
            float[] codebook,
            float[] absmax,
            int aOff,
            float[] out,
            int outOff) {
        if (!LITTLE_ENDIAN || F.length() < 8 || blockSize % 16 != 0) {
            super.decodeBlocks4(packed, pOff, nBlocks, blockSize, codebook, absmax, aOff, out, outOff);
            return;
        }
        int lanes = F.length();
        FloatVector book0 = FloatVector.fromArray(F, codebook, 0);
        FloatVector book1 = lanes == 16 ? book0 : FloatVector.fromArray(F, codebook, 8);
        for (int b = 0; b < nBlocks; b++) {
            FloatVector t0 = book0.mul(absmax[aOff + b]);
            FloatVector t1 = book1.mul(absmax[aOff + b]);
            int p = pOff + b * (blockSize / 2);
            int o = outOff + b * blockSize;
            for (int i = 0; i < blockSize; i += 16) {
                ShortVector s = (ShortVector) ByteVector.fromArray(BYTES_64, packed, p + i / 2)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, SHORTS_128, 0);
                ByteVector codes = s.lanewise(VectorOperators.LSHR, 4)
                        .or(s.and((short) 0xF).lanewise(VectorOperators.LSHL, 8))
                        .reinterpretAsBytes();
                for (int part = 0; part < 16 / lanes; part++) {
                    IntVector idx = (IntVector) codes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, part);
                    FloatVector r;
                    if (lanes == 16) {
                        r = t0.rearrange(idx.toShuffle().cast(F));
                    } else {
                        VectorShuffle<Float> sh = idx.and(7).toShuffle().cast(F);
                        r = t0.rearrange(sh)
                                .blend(
                                        t1.rearrange(sh),
                                        idx.compare(VectorOperators.GE, 8).cast(F));
                    }
                    r.intoArray(out, o + i + part * lanes);
                }
            }
        }
    }

    /**
     * The candidates of a binary search over 7 or 15 sorted thresholds (FP4's magnitudes, NF4), for {@link
     * #codebookRange}: with {@code d} levels ({@code 2^d - 1} thresholds), level {@code k} compares a lane with
     * threshold {@code (2 i + 1) 2^(d - k) - 1}, where {@code i} is the code's {@code k - 1} bits found so far, so
     * the candidates of level {@code k} are {@code 2^(k - 1)} thresholds, looked up by those bits. The tables are the
     * thresholds' float bits in int vectors (a lookup is an int {@code selectFrom}); the last level of NF4 has eight
     * candidates, two vectors at 128 bits. Built once per threshold array (cached like {@link CellTables}); {@code
     * null} for other counts, unsorted thresholds or fewer than four lanes, and the caller counts.
     */
    private static final class SearchTables {
        final float[] thresholds;
        final int levels;
        /** {@code 2^(levels - 1)}: the first level's code bit, and 1 + the index of its threshold. */
        final int top;

        final IntVector level2;
        final IntVector level3;
        final IntVector level4;
        final IntVector level4Hi;

        /** The last tables built for 7 and for 15 thresholds (FP4's and NF4's, which a model may alternate). */
        private static volatile SearchTables last7;

        private static volatile SearchTables last15;

        private SearchTables(float[] thresholds, int levels) {
            this.thresholds = thresholds.clone();
            this.levels = levels;
            this.top = 1 << (levels - 1);
            this.level2 = candidates(thresholds, levels, 2, 0);
            this.level3 = candidates(thresholds, levels, 3, 0);
            this.level4 = levels >= 4 ? candidates(thresholds, levels, 4, 0) : null;
            this.level4Hi = levels >= 4 && I.length() < 8 ? candidates(thresholds, levels, 4, I.length()) : null;
        }

        /** Level {@code k}'s candidates {@code from, from + 1, ...} in lanes (the rest repeat the last one). */
        private static IntVector candidates(float[] t, int levels, int k, int from) {
            int count = 1 << (k - 1);
            int[] bits = new int[I.length()];
            for (int j = 0; j < bits.length; j++) {
                int i = Math.min(count - 1, from + j);
                bits[j] = Float.floatToRawIntBits(t[(2 * i + 1) * (1 << (levels - k)) - 1]);
            }
            return IntVector.fromArray(I, bits, 0);
        }

        static SearchTables cached(float[] thresholds) {
            int levels = thresholds.length == 15 ? 4 : thresholds.length == 7 ? 3 : 0;
            if (levels == 0 || I.length() < 4) {
                return null;
            }
            SearchTables s = levels == 4 ? last15 : last7;
            if (s != null && Arrays.equals(s.thresholds, thresholds)) {
                return s;
            }
            for (int j = 1; j < thresholds.length; j++) {
                // strictly ascending and no NaN: then the search finds the count of thresholds below a value
                if (!(thresholds[j - 1] < thresholds[j])) {
                    return null;
                }
            }
            s = new SearchTables(thresholds, levels);
            if (levels == 4) {
                last15 = s;
            } else {
                last7 = s;
            }
            return s;
        }
    }

    /**
     * Codebook codes of the whole vectors of {@code x[off, off + len)} into {@code dst[dOff ...]}; returns how many
     * values it coded (the caller's scalar tail does the rest). Per lane the number of thresholds below it (NaN lanes
     * pass none): for NF4's 15 and FP4's 7 sorted thresholds by the binary search of {@link SearchTables}, otherwise
     * counted, the count summed in float lanes (masked adds of 1, exact for small integers) and converted once. Arrays
     * in, a count out: no vector crosses the call, so a JIT that does not inline it pays a call per range, not a heap
     * box per vector.
     */
    private static int codebookRange(
            float[] x, int off, int len, float inv, float[] thresholds, boolean signMagnitude, byte[] dst, int dOff) {
        FloatVector zero = FloatVector.zero(F);
        FloatVector one = FloatVector.broadcast(F, 1f);
        SearchTables search = SearchTables.cached(thresholds);
        int i = 0;
        // every whole vector (a counted loop to a loop bound, as C2 likes it), except at 128 bits a lone one, which
        // has no codes before it to merge with
        int bound = len >= B.length() ? F.loopBound(len) : 0;
        for (; i < bound; i += F.length()) {
            boolean last = i + B.length() > len;
            int xOff = off + i;
            FloatVector q = FloatVector.fromArray(F, x, xOff).mul(inv);
            FloatVector a = signMagnitude ? q.abs() : q;
            IntVector c;
            if (search != null) {
                // a binary search, one level per code bit: the threshold a lane meets at a level depends on the bits
                // found so far, looked up from that level's candidates (one vector, or two at 128 bits for the eight
                // of NF4's last level); every comparison is a > t, so the code is the count of thresholds below the
                // value, as counting gives, NaN included (it passes none)
                IntVector code = IntVector.zero(I);
                code = code.add(
                        search.top,
                        a.compare(VectorOperators.GT, search.thresholds[search.top - 1])
                                .cast(I));
                // levels is 3 or 4: the second and third levels always run, written out (a helper or a loop over
                // the levels would pass vectors or make the code a loop variable and a receiver: class comment)
                int levels = search.levels;
                IntVector t2 = code.lanewise(VectorOperators.LSHR, levels - 1).selectFrom(search.level2);
                code = code.add(
                        search.top >> 1,
                        a.compare(VectorOperators.GT, t2.reinterpretAsFloats()).cast(I));
                IntVector t3 = code.lanewise(VectorOperators.LSHR, levels - 2).selectFrom(search.level3);
                code = code.add(
                        search.top >> 2,
                        a.compare(VectorOperators.GT, t3.reinterpretAsFloats()).cast(I));
                if (levels >= 4) {
                    IntVector i4 = code.lanewise(VectorOperators.LSHR, 1);
                    IntVector t = search.level4Hi == null
                            ? i4.selectFrom(search.level4)
                            : i4.selectFrom(search.level4, search.level4Hi);
                    code = code.add(
                            1,
                            a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                    .cast(I));
                }
                c = code;
            } else {
                // four thresholds per step counted from a fresh zero by masked adds (one instruction each), then added
                // to the loop-carried count, which is thus an argument, never the receiver (class comment); a blend
                // and an add per threshold (the first form of the rule) made NF4 quantize at 128 bits 1.6x slower
                FloatVector count = zero;
                int j = 0;
                for (; j + 4 <= thresholds.length; j += 4) {
                    count = zero.add(one, a.compare(VectorOperators.GT, thresholds[j]))
                            .add(one, a.compare(VectorOperators.GT, thresholds[j + 1]))
                            .add(one, a.compare(VectorOperators.GT, thresholds[j + 2]))
                            .add(one, a.compare(VectorOperators.GT, thresholds[j + 3]))
                            .add(count);
                }
                for (; j < thresholds.length; j++) {
                    count = zero.add(one, a.compare(VectorOperators.GT, thresholds[j]))
                            .add(count);
                }
                c = (IntVector) zero.add(count).convert(VectorOperators.F2I, 0);
            }
            if (signMagnitude) {
                c = c.lanewise(VectorOperators.XOR, c.and(2).lanewise(VectorOperators.LSHL, 1))
                        .lanewise(
                                VectorOperators.OR,
                                8,
                                q.compare(VectorOperators.LT, 0f).cast(I));
            }
            // the low byte of each lane. At 128 bits the byte vector holds two float vectors' codes: a store writes
            // B.length() - F.length() zero bytes after the codes, which the next vector's store overwrites; the last
            // vector of a range (whose store would leave it) puts its codes into the upper half of the byte vector that
            // ends the range and merges them with the codes already there, replacing their spilled zeros
            if (BYTE_PARTS > 1 && last) {
                int start = dOff + i + F.length() - B.length();
                ByteVector.fromArray(B, dst, start)
                        .or((ByteVector) c.convertShape(VectorOperators.I2B, B, 1 - BYTE_PARTS))
                        .intoArray(dst, start);
            } else {
                ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(dst, dOff + i);
            }
        }
        return i;
    }

    /**
     * Linear codes of the whole vectors of {@code x[off, off + len)} into {@code dst[dOff ...]} (stored as in {@link
     * #codebookRange}); returns how many values it coded. Per value the quotient {@code v / scale}, rounded by the magic add, the bits clamped to [lo, hi], the
     * bias removed. The quotient is not a division (one 512-bit division per 8 or more cycles set the pace of
     * quantization) but Markstein's correction of the product by the reciprocal {@code inv = RN(1 / scale)}: {@code q
     * = RN(v * inv)}, the exact remainder {@code e = fma(-q, scale, v)}, {@code q' = RN(q + e * inv)}, which is the
     * correctly rounded quotient, bit for bit what {@code v / scale} gives wherever neither overflows nor underflows
     * (P. Markstein, IBM J. Res. Dev. 34(1), 1990; Muller et al., Handbook of Floating-Point Arithmetic, the theorem
     * on division by FMA). Beyond that the codes still agree: tiny quotients round to 0 and huge ones clamp either
     * way. Checked on 60 million pairs, half of them next to half-integers and with significands of all ones (session
     * 4), and in the tests against the scalar reference's division, ties and the float range's ends included.
     */
    private static int quantizeRange(
            float[] x, int off, int len, float scale, float inv, int lo, int hi, int bias, byte[] dst, int dOff) {
        int i = 0;
        // every whole vector (a counted loop to a loop bound, as C2 likes it), except at 128 bits a lone one, which
        // has no codes before it to merge with
        int bound = len >= B.length() ? F.loopBound(len) : 0;
        for (; i < bound; i += F.length()) {
            boolean last = i + B.length() > len;
            FloatVector v = FloatVector.fromArray(F, x, off + i);
            FloatVector q = v.mul(inv);
            FloatVector e = q.fma(FloatVector.broadcast(F, -scale), v);
            FloatVector corrected = e.fma(FloatVector.broadcast(F, inv), q);
            // a quotient beyond the float range: q is infinite and q + e * inv is NaN; q keeps the sign that clamps
            corrected = corrected.blend(q, corrected.compare(VectorOperators.NE, corrected));
            IntVector c = corrected
                    .add(ROUND_MAGIC)
                    .reinterpretAsInts()
                    .max(lo)
                    .min(hi)
                    .sub(bias);
            // stored as in codebookRange (the store written out there too: no helper takes a vector)
            if (BYTE_PARTS > 1 && last) {
                int start = dOff + i + F.length() - B.length();
                ByteVector.fromArray(B, dst, start)
                        .or((ByteVector) c.convertShape(VectorOperators.I2B, B, 1 - BYTE_PARTS))
                        .intoArray(dst, start);
            } else {
                ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(dst, dOff + i);
            }
        }
        return i;
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
        super.dequantize(codes, codesOff + i, len - i, scale, zero, out, outOff + i);
    }

    /** Packed bytes one step of the 4-bit {@link #dequantizeGroups} reads: 32 codes. */
    private static final VectorSpecies<Byte> BYTES_128 = ByteVector.SPECIES_128;
    /** Lane {@code j} of an int vector of packed bytes to lane {@code j / 2} (low half) or {@code L/2 + j/2} (high). */
    private static final VectorShuffle<Integer> PAIR_LOW = VectorShuffle.fromOp(I, j -> j / 2);

    private static final VectorShuffle<Integer> PAIR_HIGH = VectorShuffle.fromOp(I, j -> I.length() / 2 + j / 2);
    /** Shift of lane {@code j} that brings its nibble down: 0 for even lanes (low nibble first), 4 for odd ones. */
    private static final IntVector NIBBLE_SHIFTS =
            IntVector.zero(I).addIndex(1).and(1).mul(4);

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
            dequantizeGroups4(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else if (bits == 2 && groupSize % 4 == 0) {
            dequantizeGroups2(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else if (bits == 3 && groupSize % 8 == 0 && F.length() == 16) {
            dequantizeGroups3(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else if (bits == 8) {
            dequantizeGroups8(packed, pOff, n, groupSize, scales, sOff, zeros, zOff, out, outOff);
        } else {
            // unpack (SWAR) into a buffer, then dequantize per group; calling these from the scalar class instead (as
            // a shared definition) measured 13% slower at 3 bits and 256 bits
            byte[] codes = codeScratch(n);
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

    private static void dequantizeGroups4(
            byte[] packed,
            int pOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff) {
        int lanes = F.length();
        for (int g = 0; g < n / groupSize; g++) {
            float scale = scales[sOff + g];
            int z = zeros[zOff + g] & 0xFF;
            float bias = ROUND_MAGIC + z;
            int c0 = g * groupSize;
            int c = c0;
            int end = c0 + groupSize;
            for (; c + 32 <= end; c += 32) {
                ByteVector bytes = ByteVector.fromArray(BYTES_128, packed, pOff + c / 2);
                for (int part = 0; part < 16 / lanes; part++) {
                    IntVector b = (IntVector) bytes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, part);
                    int o = outOff + c + 2 * part * lanes;
                    b.rearrange(PAIR_LOW)
                            .lanewise(VectorOperators.LSHR, NIBBLE_SHIFTS)
                            .and(0xF)
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, o);
                    b.rearrange(PAIR_HIGH)
                            .lanewise(VectorOperators.LSHR, NIBBLE_SHIFTS)
                            .and(0xF)
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, o + lanes);
                }
            }
            // scalar tail of the group (fewer than 32 codes; the group starts on a byte, groupSize being even)
            for (; c < end; c++) {
                int code = (packed[pOff + c / 2] >>> ((c & 1) * 4)) & 0xF;
                out[outOff + c] = scale * (code - (float) z);
            }
        }
    }

    /*
     * The 2-, 3- and 4-bit decoders below repeat one chain (shuffle, shift, mask, or, subtract, multiply, store) per
     * vector of codes, each with its own constant shuffle. One method over an array of shuffles, indexed in a loop,
     * measured 1.5-2.5x slower (session 5: the shuffles are then not constants to C2), and a helper taking the vector
     * risks boxing it if not inlined; so the chains stay written out.
     */

    /** Lane {@code j} to lane {@code k * L/4 + j/4}: four copies of each packed byte, for the four 2-bit codes. */
    private static final VectorShuffle<Integer> QUAD_0 = quad(0);

    private static final VectorShuffle<Integer> QUAD_1 = quad(1);
    private static final VectorShuffle<Integer> QUAD_2 = quad(2);
    private static final VectorShuffle<Integer> QUAD_3 = quad(3);
    /** Shift of lane {@code j} that brings its 2-bit code down: {@code 2 * (j % 4)} (low bits first). */
    private static final IntVector CRUMB_SHIFTS =
            IntVector.zero(I).addIndex(1).and(3).mul(2);

    private static VectorShuffle<Integer> quad(int k) {
        return VectorShuffle.fromOp(I, j -> k * (I.length() / 4) + j / 4);
    }

    /**
     * {@link #dequantizeGroups} at 2 bits, as at 4: a step widens 16 packed bytes (64 codes) to int lanes, copies
     * each byte to four lanes, which shift by 0, 2, 4 or 6 and mask; each group starts on a byte (a multiple of 4
     * codes). Codes of a group past its last whole step come from the scalar loop.
     */
    private static void dequantizeGroups2(
            byte[] packed,
            int pOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff) {
        int lanes = F.length();
        for (int g = 0; g < n / groupSize; g++) {
            float scale = scales[sOff + g];
            int z = zeros[zOff + g] & 0xFF;
            float bias = ROUND_MAGIC + z;
            int c = g * groupSize;
            int end = c + groupSize;
            for (; c + 64 <= end; c += 64) {
                ByteVector bytes = ByteVector.fromArray(BYTES_128, packed, pOff + c / 4);
                for (int part = 0; part < 16 / lanes; part++) {
                    IntVector b = (IntVector) bytes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, part);
                    int o = outOff + c + 4 * part * lanes;
                    b.rearrange(QUAD_0)
                            .lanewise(VectorOperators.LSHR, CRUMB_SHIFTS)
                            .and(3)
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, o);
                    b.rearrange(QUAD_1)
                            .lanewise(VectorOperators.LSHR, CRUMB_SHIFTS)
                            .and(3)
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, o + lanes);
                    b.rearrange(QUAD_2)
                            .lanewise(VectorOperators.LSHR, CRUMB_SHIFTS)
                            .and(3)
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, o + 2 * lanes);
                    b.rearrange(QUAD_3)
                            .lanewise(VectorOperators.LSHR, CRUMB_SHIFTS)
                            .and(3)
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, o + 3 * lanes);
                }
            }
            // scalar tail of the group (fewer than 64 codes)
            for (; c < end; c++) {
                int code = (packed[pOff + c / 4] >>> ((c & 3) * 2)) & 3;
                out[outOff + c] = scale * (code - (float) z);
            }
        }
    }

    /**
     * For {@link #dequantizeGroups3} at 512 bits: lane {@code j} of step {@code s} (codes {@code 16s + j} of 32, the
     * bytes widened to int lanes) takes the byte holding the code's first bit, {@code 6s + (3j >> 3)}, the next one,
     * and shifts the 16-bit pair by {@code 3j & 7}.
     */
    private static final VectorShuffle<Integer> TRIPLE_LOW_0 = triple(0, 0);

    private static final VectorShuffle<Integer> TRIPLE_HIGH_0 = triple(0, 1);
    private static final VectorShuffle<Integer> TRIPLE_LOW_1 = triple(1, 0);
    private static final VectorShuffle<Integer> TRIPLE_HIGH_1 = triple(1, 1);
    private static final IntVector TRIPLE_SHIFTS = IntVector.zero(I).addIndex(3).and(7);

    private static VectorShuffle<Integer> triple(int step, int next) {
        return VectorShuffle.fromOp(I, j -> (6 * step + ((3 * j) >> 3) + next) & (I.length() - 1));
    }

    /**
     * {@link #dequantizeGroups} at 3 bits and 512 bits: 32 codes are 12 bytes; 16 bytes are widened to int lanes once,
     * and each half of the codes takes, per lane, the two bytes its 3 bits lie in (two lane shuffles), joins them as
     * a 16-bit value and shifts it by the code's bit offset. Groups of a multiple of 8 codes start on a byte.
     */
    private static void dequantizeGroups3(
            byte[] packed,
            int pOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff) {
        for (int g = 0; g < n / groupSize; g++) {
            float scale = scales[sOff + g];
            int z = zeros[zOff + g] & 0xFF;
            float bias = ROUND_MAGIC + z;
            int c = g * groupSize;
            int end = c + groupSize;
            // a step reads 16 bytes from byte 3c/8 and uses 12: the 4 beyond may belong to the next group or row, but
            // must be inside the array (only the tensor's very last step goes to the scalar loop)
            for (; c + 32 <= end && pOff + 3 * c / 8 + 16 <= packed.length; c += 32) {
                IntVector b = (IntVector) ByteVector.fromArray(BYTES_128, packed, pOff + 3 * c / 8)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                b.rearrange(TRIPLE_LOW_0)
                        .or(b.rearrange(TRIPLE_HIGH_0).lanewise(VectorOperators.LSHL, 8))
                        .lanewise(VectorOperators.LSHR, TRIPLE_SHIFTS)
                        .and(7)
                        .or(MAGIC_BITS)
                        .reinterpretAsFloats()
                        .sub(bias)
                        .mul(scale)
                        .intoArray(out, outOff + c);
                b.rearrange(TRIPLE_LOW_1)
                        .or(b.rearrange(TRIPLE_HIGH_1).lanewise(VectorOperators.LSHL, 8))
                        .lanewise(VectorOperators.LSHR, TRIPLE_SHIFTS)
                        .and(7)
                        .or(MAGIC_BITS)
                        .reinterpretAsFloats()
                        .sub(bias)
                        .mul(scale)
                        .intoArray(out, outOff + c + 16);
            }
            // scalar tail of the group: the bit stream from its byte (c is a multiple of 32); a call to the reference
            // here instead measured 10% slower for the whole kernel
            int p = pOff + 3 * c / 8;
            long acc = 0;
            int filled = 0;
            for (; c < end; c++) {
                if (filled < 3) {
                    acc |= (long) (packed[p++] & 0xFF) << filled;
                    filled += 8;
                }
                out[outOff + c] = scale * ((int) (acc & 7) - (float) z);
                acc >>>= 3;
                filled -= 3;
            }
        }
    }

    private static void dequantizeGroups8(
            byte[] packed,
            int pOff,
            int n,
            int groupSize,
            float[] scales,
            int sOff,
            byte[] zeros,
            int zOff,
            float[] out,
            int outOff) {
        int step = B.length();
        for (int g = 0; g < n / groupSize; g++) {
            float scale = scales[sOff + g];
            int z = zeros[zOff + g] & 0xFF;
            float bias = ROUND_MAGIC + z;
            int c = g * groupSize;
            int end = c + groupSize;
            for (; c + step <= end; c += step) {
                ByteVector bytes = ByteVector.fromArray(B, packed, pOff + c);
                for (int part = 0; part < BYTE_PARTS; part++) {
                    ((IntVector) bytes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, part))
                            .or(MAGIC_BITS)
                            .reinterpretAsFloats()
                            .sub(bias)
                            .mul(scale)
                            .intoArray(out, outOff + c + part * F.length());
                }
            }
            // scalar tail of the group
            for (; c < end; c++) {
                out[outOff + c] = scale * ((packed[pOff + c] & 0xFF) - (float) z);
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
            super.pack(codes, codesOff + done, n - done, bits, packed, packedOff + done / 8 * bits);
            return;
        }
        if (!LITTLE_ENDIAN) {
            super.pack(codes, codesOff, n, bits, packed, packedOff);
            return;
        }
        int i = packNibbles(codes, codesOff, n, packed, packedOff, false);
        // scalar tail
        super.pack(codes, codesOff + i, n - i, bits, packed, packedOff + i / 2);
    }

    /**
     * Packs whole vectors of code pairs, two per byte, and returns the number of codes done. Byte pairs are read as
     * little-endian shorts {@code s = c0 | c1 << 8}: the low byte of {@code s | s >>> 4} is {@code c0 | c1 << 4} (low
     * nibble first, quant4j's order), that of {@code s << 4 | s >>> 8} is {@code c0 << 4 | c1} (high nibble first,
     * bitsandbytes' order).
     */
    private static int packNibbles(byte[] codes, int codesOff, int n, byte[] packed, int packedOff, boolean highFirst) {
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
    public void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff) {
        if (!LITTLE_ENDIAN) {
            super.packHighFirst4(codes, codesOff, n, packed, packedOff);
            return;
        }
        int i = packNibbles(codes, codesOff, n, packed, packedOff, true);
        // scalar tail
        super.packHighFirst4(codes, codesOff + i, n - i, packed, packedOff + i / 2);
    }

    @Override
    public void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        if (bits == 8) {
            System.arraycopy(packed, packedOff, codes, codesOff, n);
            return;
        }
        if (bits != 4) {
            int done = SwarPacking.unpack(packed, packedOff, n, bits, codes, codesOff);
            super.unpack(packed, packedOff + done / 8 * bits, n - done, bits, codes, codesOff + done);
            return;
        }
        if (!LITTLE_ENDIAN) {
            super.unpack(packed, packedOff, n, bits, codes, codesOff);
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
        super.unpack(packed, packedOff + i / 2, n - i, bits, codes, codesOff + i);
    }

    @Override
    public float dot(float[] a, int aOff, float[] b, int bOff, int len) {
        // four accumulators, as Lucene's PanamaVectorUtilSupport: with two, FMA latency bounds an in-cache dot
        int i = 0;
        int step = F.length();
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        FloatVector acc3 = FloatVector.zero(F);
        FloatVector acc4 = FloatVector.zero(F);
        int bound4 = len - len % (4 * step);
        for (; i < bound4; i += 4 * step) {
            acc1 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc1);
            acc2 = FloatVector.fromArray(F, a, aOff + i + step).fma(FloatVector.fromArray(F, b, bOff + i + step), acc2);
            acc3 = FloatVector.fromArray(F, a, aOff + i + 2 * step)
                    .fma(FloatVector.fromArray(F, b, bOff + i + 2 * step), acc3);
            acc4 = FloatVector.fromArray(F, a, aOff + i + 3 * step)
                    .fma(FloatVector.fromArray(F, b, bOff + i + 3 * step), acc4);
        }
        int bound = F.loopBound(len);
        for (; i < bound; i += step) {
            acc1 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc1);
        }
        FloatVector fresh = FloatVector.zero(F); // the loop's variables are arguments only (class comment)
        float s = sumLanes(fresh.blend(acc1, ALL_LANES)
                .add(acc2)
                .add(fresh.blend(acc3, ALL_LANES).add(acc4)));
        // scalar tail
        for (; i < len; i++) {
            s = Math.fma(a[aOff + i], b[bOff + i], s);
        }
        return s;
    }

    /** Packed bytes read per step of {@link #dotNibbles}: one per float lane (their two nibbles make 2L codes). */
    private static final VectorSpecies<Byte> NIBBLE_BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));

    @Override
    public float dotNibbles(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, int groupSize, float[] scales, int sOff) {
        int lanes = F.length();
        if (lanes == 4) {
            return dotNibbles128(packed, byteOff, xPrepared, xOff, n, groupSize, scales, sOff);
        }
        if (groupSize == G128) {
            return dotNibblesG128(packed, byteOff, xPrepared, xOff, n, scales, sOff);
        }
        FloatVector total = FloatVector.zero(F);
        for (int g = 0; g < n / groupSize; g++) {
            // four independent accumulators (two chunks at a time, low and high nibbles): with fewer, the latency
            // of one FMA chain sets the pace
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            int c = g * groupSize;
            int end = c + groupSize;
            // two chunks per step, one pair of accumulators each (no branch in the loop)
            for (; c + 2 * NIBBLE_CHUNK <= end; c += 2 * NIBBLE_CHUNK) {
                for (int sub = 0; sub < 16; sub += lanes) {
                    int p0 = byteOff + c / 2 + sub;
                    int x0 = xOff + c + sub;
                    IntVector b = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, p0)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector d = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, p0 + 16)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    a0 = ((FloatVector) b.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0), a0);
                    a1 = ((FloatVector) b.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 16), a1);
                    a2 = ((FloatVector) d.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 32), a2);
                    a3 = ((FloatVector) d.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 48), a3);
                }
            }
            for (; c < end; c += NIBBLE_CHUNK) {
                for (int sub = 0; sub < 16; sub += lanes) {
                    IntVector b = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, byteOff + c / 2 + sub)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    a0 = ((FloatVector) b.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, xOff + c + sub), a0);
                    a1 = ((FloatVector) b.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, xOff + c + 16 + sub), a1);
                }
            }
            // a0 .. a3 are the inner loops' variables: added through fresh vectors (class comment)
            FloatVector fresh = FloatVector.zero(F);
            total = fresh.blend(a0, ALL_LANES)
                    .add(a1)
                    .add(fresh.blend(a2, ALL_LANES).add(a3))
                    .fma(FloatVector.broadcast(F, scales[sOff + g]), total);
        }
        return sumLanes(total);
    }

    /** The common group size, which gets kernels of constant trip counts. */
    private static final int G128 = 128;

    /**
     * {@link #dotNibbles} for groups of 128 at 256 bits and wider: the same operations in the same order as the
     * general loop, written with constant trip counts only, so the JIT unrolls the group into straight-line code
     * instead of setting up an inner loop per group (what the general loop costs at 32 groups per row).
     */
    private static float dotNibblesG128(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, float[] scales, int sOff) {
        int lanes = F.length();
        FloatVector total = FloatVector.zero(F);
        for (int g = 0; g < n / G128; g++) {
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            int pg = byteOff + g * (G128 / 2);
            int xg = xOff + g * G128;
            for (int c = 0; c < G128; c += 2 * NIBBLE_CHUNK) {
                for (int sub = 0; sub < 16; sub += lanes) {
                    int p0 = pg + c / 2 + sub;
                    int x0 = xg + c + sub;
                    IntVector b = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, p0)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector d = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, p0 + 16)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    a0 = ((FloatVector) b.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0), a0);
                    a1 = ((FloatVector) b.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 16), a1);
                    a2 = ((FloatVector) d.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 32), a2);
                    a3 = ((FloatVector) d.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 48), a3);
                }
            }
            // a0 .. a3 are the inner loops' variables: added through fresh vectors (class comment)
            FloatVector fresh = FloatVector.zero(F);
            total = fresh.blend(a0, ALL_LANES)
                    .add(a1)
                    .add(fresh.blend(a2, ALL_LANES).add(a3))
                    .fma(FloatVector.broadcast(F, scales[sOff + g]), total);
        }
        return sumLanes(total);
    }

    /**
     * {@link #dotNibbles} at 128 bits (4 float lanes, NEON's width): a step of four bytes would be below the smallest
     * byte vector, so each 8-byte load is widened in two parts.
     */
    private static float dotNibbles128(
            byte[] packed, int byteOff, float[] xPrepared, int xOff, int n, int groupSize, float[] scales, int sOff) {
        FloatVector total = FloatVector.zero(F);
        for (int g = 0; g < n / groupSize; g++) {
            FloatVector a0 = FloatVector.zero(F);
            FloatVector a1 = FloatVector.zero(F);
            FloatVector a2 = FloatVector.zero(F);
            FloatVector a3 = FloatVector.zero(F);
            for (int c = g * groupSize; c < (g + 1) * groupSize; c += NIBBLE_CHUNK) {
                for (int sub = 0; sub < 16; sub += 8) {
                    ByteVector bytes = ByteVector.fromArray(NIBBLE_BYTES, packed, byteOff + c / 2 + sub);
                    IntVector b0 = (IntVector) bytes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector b1 = (IntVector) bytes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 1);
                    int x0 = xOff + c + sub;
                    a0 = ((FloatVector) b0.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0), a0);
                    a1 = ((FloatVector) b0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 16), a1);
                    a2 = ((FloatVector) b1.and(0xF).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 4), a2);
                    a3 = ((FloatVector) b1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .fma(FloatVector.fromArray(F, xPrepared, x0 + 20), a3);
                }
            }
            // a0 .. a3 are the inner loops' variables: added through fresh vectors (class comment)
            FloatVector fresh = FloatVector.zero(F);
            total = fresh.blend(a0, ALL_LANES)
                    .add(a1)
                    .add(fresh.blend(a2, ALL_LANES).add(a3))
                    .fma(FloatVector.broadcast(F, scales[sOff + g]), total);
        }
        return sumLanes(total);
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
        if (groupSize == G128) {
            return dotNibblesInt8G128(packed, byteOff, xq, xOff, n, scales, sOff, xScales, dOff);
        }
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

    /**
     * At 512 bits, two weight rows against eight activation rows: sixteen accumulators, and each activation vector
     * loaded once for both rows (the eight activation rows do not fit in L1, so their loads set the pace of {@link
     * #dotNibbles8}). Narrower widths have too few registers for sixteen accumulators and use two {@link #dotNibbles8}
     * calls. The results equal two {@link #dotNibbles8} calls exactly (same operations per row, same order).
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
        int lanes = F.length();
        if (lanes != 16) {
            super.dotNibbles2x8(
                    packed, byteOff0, byteOff1, xPrepared, xOff, ldx, n, groupSize, scales, sOff0, sOff1, out, outOff);
            return;
        }
        FloatVector t00 = FloatVector.zero(F);
        FloatVector t01 = FloatVector.zero(F);
        FloatVector t02 = FloatVector.zero(F);
        FloatVector t03 = FloatVector.zero(F);
        FloatVector t04 = FloatVector.zero(F);
        FloatVector t05 = FloatVector.zero(F);
        FloatVector t06 = FloatVector.zero(F);
        FloatVector t07 = FloatVector.zero(F);
        FloatVector t10 = FloatVector.zero(F);
        FloatVector t11 = FloatVector.zero(F);
        FloatVector t12 = FloatVector.zero(F);
        FloatVector t13 = FloatVector.zero(F);
        FloatVector t14 = FloatVector.zero(F);
        FloatVector t15 = FloatVector.zero(F);
        FloatVector t16 = FloatVector.zero(F);
        FloatVector t17 = FloatVector.zero(F);
        // one flat loop over the chunks of the row (a group's scales are loaded when it starts): a loop of 4096 / 32
        // iterations, where the JIT hoists the activations' bounds checks, instead of one of groupSize / 32 per group
        int x0 = xOff;
        int x1 = xOff + ldx;
        int x2 = xOff + 2 * ldx;
        int x3 = xOff + 3 * ldx;
        int x4 = xOff + 4 * ldx;
        int x5 = xOff + 5 * ldx;
        int x6 = xOff + 6 * ldx;
        int x7 = xOff + 7 * ldx;
        FloatVector s0 = FloatVector.broadcast(F, scales[sOff0]);
        FloatVector s1 = FloatVector.broadcast(F, scales[sOff1]);
        int g = 0;
        int groupEnd = groupSize;
        for (int c = 0; c < n; c += NIBBLE_CHUNK) {
            if (c == groupEnd) {
                g++;
                groupEnd += groupSize;
                s0 = FloatVector.broadcast(F, scales[sOff0 + g]);
                s1 = FloatVector.broadcast(F, scales[sOff1 + g]);
            }
            IntVector b0 = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, byteOff0 + (c >> 1))
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            IntVector b1 = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, byteOff1 + (c >> 1))
                    .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
            FloatVector lo0 = ((FloatVector) b0.and(0xF).convert(VectorOperators.I2F, 0)).mul(s0);
            FloatVector hi0 =
                    ((FloatVector) b0.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).mul(s0);
            FloatVector lo1 = ((FloatVector) b1.and(0xF).convert(VectorOperators.I2F, 0)).mul(s1);
            FloatVector hi1 =
                    ((FloatVector) b1.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0)).mul(s1);
            FloatVector xl;
            FloatVector xh;
            xl = FloatVector.fromArray(F, xPrepared, x0 + c);
            xh = FloatVector.fromArray(F, xPrepared, x0 + c + 16);
            t00 = hi0.fma(xh, lo0.fma(xl, t00));
            t10 = hi1.fma(xh, lo1.fma(xl, t10));
            xl = FloatVector.fromArray(F, xPrepared, x1 + c);
            xh = FloatVector.fromArray(F, xPrepared, x1 + c + 16);
            t01 = hi0.fma(xh, lo0.fma(xl, t01));
            t11 = hi1.fma(xh, lo1.fma(xl, t11));
            xl = FloatVector.fromArray(F, xPrepared, x2 + c);
            xh = FloatVector.fromArray(F, xPrepared, x2 + c + 16);
            t02 = hi0.fma(xh, lo0.fma(xl, t02));
            t12 = hi1.fma(xh, lo1.fma(xl, t12));
            xl = FloatVector.fromArray(F, xPrepared, x3 + c);
            xh = FloatVector.fromArray(F, xPrepared, x3 + c + 16);
            t03 = hi0.fma(xh, lo0.fma(xl, t03));
            t13 = hi1.fma(xh, lo1.fma(xl, t13));
            xl = FloatVector.fromArray(F, xPrepared, x4 + c);
            xh = FloatVector.fromArray(F, xPrepared, x4 + c + 16);
            t04 = hi0.fma(xh, lo0.fma(xl, t04));
            t14 = hi1.fma(xh, lo1.fma(xl, t14));
            xl = FloatVector.fromArray(F, xPrepared, x5 + c);
            xh = FloatVector.fromArray(F, xPrepared, x5 + c + 16);
            t05 = hi0.fma(xh, lo0.fma(xl, t05));
            t15 = hi1.fma(xh, lo1.fma(xl, t15));
            xl = FloatVector.fromArray(F, xPrepared, x6 + c);
            xh = FloatVector.fromArray(F, xPrepared, x6 + c + 16);
            t06 = hi0.fma(xh, lo0.fma(xl, t06));
            t16 = hi1.fma(xh, lo1.fma(xl, t16));
            xl = FloatVector.fromArray(F, xPrepared, x7 + c);
            xh = FloatVector.fromArray(F, xPrepared, x7 + c + 16);
            t07 = hi0.fma(xh, lo0.fma(xl, t07));
            t17 = hi1.fma(xh, lo1.fma(xl, t17));
        }
        float[] lanesOut = LANES_SCRATCH.get();
        // stored straight from the loop's variables, the one exception to the class comment's rule: a blend into a
        // fresh vector first made this kernel 3-5% slower (one JVM, every offset; the alignment scan harness)
        t00.intoArray(lanesOut, 0 * 16);
        t01.intoArray(lanesOut, 1 * 16);
        t02.intoArray(lanesOut, 2 * 16);
        t03.intoArray(lanesOut, 3 * 16);
        t04.intoArray(lanesOut, 4 * 16);
        t05.intoArray(lanesOut, 5 * 16);
        t06.intoArray(lanesOut, 6 * 16);
        t07.intoArray(lanesOut, 7 * 16);
        t10.intoArray(lanesOut, 8 * 16);
        t11.intoArray(lanesOut, 9 * 16);
        t12.intoArray(lanesOut, 10 * 16);
        t13.intoArray(lanesOut, 11 * 16);
        t14.intoArray(lanesOut, 12 * 16);
        t15.intoArray(lanesOut, 13 * 16);
        t16.intoArray(lanesOut, 14 * 16);
        t17.intoArray(lanesOut, 15 * 16);
        sumLanesOfEach(lanesOut, 16, out, outOff);
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
        int lanes = F.length();
        if (lanes < 8) {
            super.dotNibbles8(packed, byteOff, xPrepared, xOff, ldx, n, groupSize, scales, sOff, out, outOff);
            return;
        }
        // the group's scale multiplies the codes once (not each row's sum): eight accumulators for the whole row
        // and few live vectors, so that C2 keeps every vector in a register (with a second set of eight per-group
        // sums, it boxed vectors on the heap: 16 MB per 4096 x 4096 product)
        FloatVector t0 = FloatVector.zero(F);
        FloatVector t1 = FloatVector.zero(F);
        FloatVector t2 = FloatVector.zero(F);
        FloatVector t3 = FloatVector.zero(F);
        FloatVector t4 = FloatVector.zero(F);
        FloatVector t5 = FloatVector.zero(F);
        FloatVector t6 = FloatVector.zero(F);
        FloatVector t7 = FloatVector.zero(F);
        for (int g = 0; g < n / groupSize; g++) {
            FloatVector s = FloatVector.broadcast(F, scales[sOff + g]);
            for (int c = g * groupSize; c < (g + 1) * groupSize; c += NIBBLE_CHUNK) {
                for (int sub = 0; sub < 16; sub += lanes) {
                    IntVector bytes = (IntVector) ByteVector.fromArray(NIBBLE_BYTES, packed, byteOff + c / 2 + sub)
                            .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    FloatVector lo = ((FloatVector) bytes.and(0xF).convert(VectorOperators.I2F, 0)).mul(s);
                    FloatVector hi = ((FloatVector)
                                    bytes.lanewise(VectorOperators.LSHR, 4).convert(VectorOperators.I2F, 0))
                            .mul(s);
                    int xo = xOff + c + sub;
                    t0 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 0 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 0 * ldx), t0));
                    t1 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 1 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 1 * ldx), t1));
                    t2 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 2 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 2 * ldx), t2));
                    t3 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 3 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 3 * ldx), t3));
                    t4 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 4 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 4 * ldx), t4));
                    t5 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 5 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 5 * ldx), t5));
                    t6 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 6 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 6 * ldx), t6));
                    t7 = hi.fma(
                            FloatVector.fromArray(F, xPrepared, xo + 7 * ldx + 16),
                            lo.fma(FloatVector.fromArray(F, xPrepared, xo + 7 * ldx), t7));
                }
            }
        }
        // eight calls of sumLanes are more than C2 inlines here (NodeCountInliningCutoff), and a vector passed to a
        // call that is not inlined is boxed on the heap: store the lanes and add them in sumLanes' order instead
        float[] lanesOut = LANES_SCRATCH.get();
        int l = F.length();
        // (straight from the loop's variables, as in dotNibbles2x8)
        t0.intoArray(lanesOut, 0);
        t1.intoArray(lanesOut, l);
        t2.intoArray(lanesOut, 2 * l);
        t3.intoArray(lanesOut, 3 * l);
        t4.intoArray(lanesOut, 4 * l);
        t5.intoArray(lanesOut, 5 * l);
        t6.intoArray(lanesOut, 6 * l);
        t7.intoArray(lanesOut, 7 * l);
        sumLanesOfEach(lanesOut, 8, out, outOff);
    }

    @Override
    public void dotMany(
            int m,
            int n,
            int len,
            float[] a,
            int aOff,
            int lda,
            float[] b,
            int bOff,
            int ldb,
            float[] c,
            int cOff,
            int cRowStride,
            int cColStride) {
        int bound = F.loopBound(len);
        int i = 0;
        for (; i + 2 <= m; i += 2) {
            int j = 0;
            for (; j + 4 <= n; j += 4) {
                // a 2 x 4 tile: 8 accumulators, 6 loads per 8 FMAs
                int a0 = aOff + i * lda;
                int a1 = a0 + lda;
                int b0 = bOff + j * ldb;
                FloatVector c00 = FloatVector.zero(F);
                FloatVector c01 = FloatVector.zero(F);
                FloatVector c02 = FloatVector.zero(F);
                FloatVector c03 = FloatVector.zero(F);
                FloatVector c10 = FloatVector.zero(F);
                FloatVector c11 = FloatVector.zero(F);
                FloatVector c12 = FloatVector.zero(F);
                FloatVector c13 = FloatVector.zero(F);
                for (int t = 0; t < bound; t += F.length()) {
                    FloatVector x0 = FloatVector.fromArray(F, a, a0 + t);
                    FloatVector x1 = FloatVector.fromArray(F, a, a1 + t);
                    FloatVector y = FloatVector.fromArray(F, b, b0 + t);
                    c00 = x0.fma(y, c00);
                    c10 = x1.fma(y, c10);
                    y = FloatVector.fromArray(F, b, b0 + ldb + t);
                    c01 = x0.fma(y, c01);
                    c11 = x1.fma(y, c11);
                    y = FloatVector.fromArray(F, b, b0 + 2 * ldb + t);
                    c02 = x0.fma(y, c02);
                    c12 = x1.fma(y, c12);
                    y = FloatVector.fromArray(F, b, b0 + 3 * ldb + t);
                    c03 = x0.fma(y, c03);
                    c13 = x1.fma(y, c13);
                }
                int c0 = cOff + i * cRowStride + j * cColStride;
                int c1 = c0 + cRowStride;
                c[c0] = tailDot(a, a0, b, b0, bound, len, sumLanes(c00));
                c[c0 + cColStride] = tailDot(a, a0, b, b0 + ldb, bound, len, sumLanes(c01));
                c[c0 + 2 * cColStride] = tailDot(a, a0, b, b0 + 2 * ldb, bound, len, sumLanes(c02));
                c[c0 + 3 * cColStride] = tailDot(a, a0, b, b0 + 3 * ldb, bound, len, sumLanes(c03));
                c[c1] = tailDot(a, a1, b, b0, bound, len, sumLanes(c10));
                c[c1 + cColStride] = tailDot(a, a1, b, b0 + ldb, bound, len, sumLanes(c11));
                c[c1 + 2 * cColStride] = tailDot(a, a1, b, b0 + 2 * ldb, bound, len, sumLanes(c12));
                c[c1 + 3 * cColStride] = tailDot(a, a1, b, b0 + 3 * ldb, bound, len, sumLanes(c13));
            }
            for (; j < n; j++) {
                for (int r = i; r < i + 2; r++) {
                    c[cOff + r * cRowStride + j * cColStride] = dot(a, aOff + r * lda, b, bOff + j * ldb, len);
                }
            }
        }
        for (; i < m; i++) {
            for (int j = 0; j < n; j++) {
                c[cOff + i * cRowStride + j * cColStride] = dot(a, aOff + i * lda, b, bOff + j * ldb, len);
            }
        }
    }

    /** {@code s} plus the scalar tail {@code [from, len)} of a dot product. */
    private static float tailDot(float[] a, int aOff, float[] b, int bOff, int from, int len, float s) {
        for (int t = from; t < len; t++) {
            s = Math.fma(a[aOff + t], b[bOff + t], s);
        }
        return s;
    }

    @Override
    public void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
        FloatVector va = FloatVector.broadcast(F, alpha);
        int i = 0;
        int bound = F.loopBound(len);
        for (; i < bound; i += F.length()) {
            FloatVector.fromArray(F, x, xOff + i)
                    .fma(va, FloatVector.fromArray(F, y, yOff + i))
                    .intoArray(y, yOff + i);
        }
        // scalar tail
        for (; i < len; i++) {
            y[yOff + i] = Math.fma(alpha, x[xOff + i], y[yOff + i]);
        }
    }

    /**
     * Columns of {@code B} per panel of {@link #gemmAcc}: six 4x3-vector tiles, so that a {@code k x GEMM_NC} strip of
     * {@code B} (288 KiB at 512 bits and k = 256) stays in L2 while every row strip of {@code A} sweeps it.
     */
    private static final int GEMM_NC = 18 * F.length();

    /**
     * Whether {@link #gemmAcc} uses 8-row tiles: 24 accumulators and 4 more registers need the 32 vector registers of
     * AVX-512; with 16 (AVX2) they would spill, so narrower species keep the 4-row tile (12 + 4 registers).
     */
    private static final boolean TALL_TILES = F.vectorBitSize() >= 512;

    @Override
    public void gemmAcc(
            int m,
            int n,
            int k,
            float[] a,
            int aOff,
            int aRowStride,
            int aColStride,
            float[] b,
            int bOff,
            int ldb,
            float[] c,
            int cOff,
            int ldc) {
        int lanes = F.length();
        for (int j0 = 0; j0 < n; j0 += GEMM_NC) {
            int j1 = Math.min(n, j0 + GEMM_NC);
            int i = 0;
            for (; TALL_TILES && i + 8 <= m; i += 8) {
                int a0 = aOff + i * aRowStride;
                int c0 = cOff + i * ldc;
                int j = j0;
                if (aRowStride == 1) {
                    for (; j + 3 * lanes <= j1; j += 3 * lanes) {
                        tile8x3Unit(k, a, a0, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                    }
                } else {
                    for (; j + 3 * lanes <= j1; j += 3 * lanes) {
                        tile8x3(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                    }
                }
                for (; j + lanes <= j1; j += lanes) {
                    tile4x1(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                    tile4x1(
                            k,
                            a,
                            a0 + 4 * aRowStride,
                            aRowStride,
                            aColStride,
                            b,
                            bOff + j,
                            ldb,
                            c,
                            c0 + 4 * ldc + j,
                            ldc);
                }
                // scalar tail: the last columns of the panel, for these eight rows
                for (int r = 0; r < 8; r++) {
                    scalarStrip(k, a, a0 + r * aRowStride, aColStride, b, bOff, ldb, c, c0 + r * ldc, j, j1);
                }
            }
            for (; i + 4 <= m; i += 4) {
                int a0 = aOff + i * aRowStride;
                int c0 = cOff + i * ldc;
                int j = j0;
                for (; j + 3 * lanes <= j1; j += 3 * lanes) {
                    tile4x3(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                }
                for (; j + lanes <= j1; j += lanes) {
                    tile4x1(k, a, a0, aRowStride, aColStride, b, bOff + j, ldb, c, c0 + j, ldc);
                }
                // scalar tail: the last columns of the panel, for these four rows
                for (int r = 0; r < 4; r++) {
                    scalarStrip(k, a, a0 + r * aRowStride, aColStride, b, bOff, ldb, c, c0 + r * ldc, j, j1);
                }
            }
            for (; i < m; i++) {
                int a0 = aOff + i * aRowStride;
                int c0 = cOff + i * ldc;
                int j = j0;
                for (; j + lanes <= j1; j += lanes) {
                    FloatVector acc = FloatVector.fromArray(F, c, c0 + j);
                    for (int t = 0; t < k; t++) {
                        acc = FloatVector.fromArray(F, b, bOff + t * ldb + j)
                                .fma(FloatVector.broadcast(F, a[a0 + t * aColStride]), acc);
                    }
                    // the accumulators are the loop's variables: stored through a fresh vector (class comment)
                    FloatVector fresh = FloatVector.zero(F);
                    fresh.blend(acc, ALL_LANES).intoArray(c, c0 + j);
                }
                scalarStrip(k, a, a0, aColStride, b, bOff, ldb, c, c0, j, j1);
            }
        }
    }

    /** Columns {@code [j, j1)} of one row of {@code C}: the scalar definition. */
    private static void scalarStrip(
            int k, float[] a, int a0, int acs, float[] b, int bOff, int ldb, float[] c, int c0, int j, int j1) {
        for (; j < j1; j++) {
            float acc = c[c0 + j];
            for (int t = 0; t < k; t++) {
                acc = Math.fma(a[a0 + t * acs], b[bOff + t * ldb + j], acc);
            }
            c[c0 + j] = acc;
        }
    }

    /**
     * An 8-row by 3-vector tile of {@code C}: 24 accumulators held in registers across the whole {@code k} loop, with
     * 3 loads of {@code B} and 8 broadcasts of {@code A} per 24 fused multiply-adds (measured about 150 GFLOP/s a core
     * at 512 bits on packed operands, against about 88 for a 4 x 3 tile).
     */
    private static void tile8x3(
            int k, float[] a, int a0, int ars, int acs, float[] b, int b0, int ldb, float[] c, int c0, int ldc) {
        int l = F.length();
        FloatVector c00 = FloatVector.fromArray(F, c, c0);
        FloatVector c01 = FloatVector.fromArray(F, c, c0 + l);
        FloatVector c02 = FloatVector.fromArray(F, c, c0 + 2 * l);
        FloatVector c10 = FloatVector.fromArray(F, c, c0 + ldc);
        FloatVector c11 = FloatVector.fromArray(F, c, c0 + ldc + l);
        FloatVector c12 = FloatVector.fromArray(F, c, c0 + ldc + 2 * l);
        FloatVector c20 = FloatVector.fromArray(F, c, c0 + 2 * ldc);
        FloatVector c21 = FloatVector.fromArray(F, c, c0 + 2 * ldc + l);
        FloatVector c22 = FloatVector.fromArray(F, c, c0 + 2 * ldc + 2 * l);
        FloatVector c30 = FloatVector.fromArray(F, c, c0 + 3 * ldc);
        FloatVector c31 = FloatVector.fromArray(F, c, c0 + 3 * ldc + l);
        FloatVector c32 = FloatVector.fromArray(F, c, c0 + 3 * ldc + 2 * l);
        FloatVector c40 = FloatVector.fromArray(F, c, c0 + 4 * ldc);
        FloatVector c41 = FloatVector.fromArray(F, c, c0 + 4 * ldc + l);
        FloatVector c42 = FloatVector.fromArray(F, c, c0 + 4 * ldc + 2 * l);
        FloatVector c50 = FloatVector.fromArray(F, c, c0 + 5 * ldc);
        FloatVector c51 = FloatVector.fromArray(F, c, c0 + 5 * ldc + l);
        FloatVector c52 = FloatVector.fromArray(F, c, c0 + 5 * ldc + 2 * l);
        FloatVector c60 = FloatVector.fromArray(F, c, c0 + 6 * ldc);
        FloatVector c61 = FloatVector.fromArray(F, c, c0 + 6 * ldc + l);
        FloatVector c62 = FloatVector.fromArray(F, c, c0 + 6 * ldc + 2 * l);
        FloatVector c70 = FloatVector.fromArray(F, c, c0 + 7 * ldc);
        FloatVector c71 = FloatVector.fromArray(F, c, c0 + 7 * ldc + l);
        FloatVector c72 = FloatVector.fromArray(F, c, c0 + 7 * ldc + 2 * l);
        for (int t = 0; t < k; t++) {
            int bt = b0 + t * ldb;
            FloatVector b0v = FloatVector.fromArray(F, b, bt);
            FloatVector b1v = FloatVector.fromArray(F, b, bt + l);
            FloatVector b2v = FloatVector.fromArray(F, b, bt + 2 * l);
            int at = a0 + t * acs;
            FloatVector av = FloatVector.broadcast(F, a[at]);
            c00 = b0v.fma(av, c00);
            c01 = b1v.fma(av, c01);
            c02 = b2v.fma(av, c02);
            av = FloatVector.broadcast(F, a[at + ars]);
            c10 = b0v.fma(av, c10);
            c11 = b1v.fma(av, c11);
            c12 = b2v.fma(av, c12);
            av = FloatVector.broadcast(F, a[at + 2 * ars]);
            c20 = b0v.fma(av, c20);
            c21 = b1v.fma(av, c21);
            c22 = b2v.fma(av, c22);
            av = FloatVector.broadcast(F, a[at + 3 * ars]);
            c30 = b0v.fma(av, c30);
            c31 = b1v.fma(av, c31);
            c32 = b2v.fma(av, c32);
            av = FloatVector.broadcast(F, a[at + 4 * ars]);
            c40 = b0v.fma(av, c40);
            c41 = b1v.fma(av, c41);
            c42 = b2v.fma(av, c42);
            av = FloatVector.broadcast(F, a[at + 5 * ars]);
            c50 = b0v.fma(av, c50);
            c51 = b1v.fma(av, c51);
            c52 = b2v.fma(av, c52);
            av = FloatVector.broadcast(F, a[at + 6 * ars]);
            c60 = b0v.fma(av, c60);
            c61 = b1v.fma(av, c61);
            c62 = b2v.fma(av, c62);
            av = FloatVector.broadcast(F, a[at + 7 * ars]);
            c70 = b0v.fma(av, c70);
            c71 = b1v.fma(av, c71);
            c72 = b2v.fma(av, c72);
        }
        // the accumulators are the loop's variables: stored through a fresh vector (class comment)
        FloatVector fresh = FloatVector.zero(F);
        fresh.blend(c00, ALL_LANES).intoArray(c, c0);
        fresh.blend(c01, ALL_LANES).intoArray(c, c0 + l);
        fresh.blend(c02, ALL_LANES).intoArray(c, c0 + 2 * l);
        fresh.blend(c10, ALL_LANES).intoArray(c, c0 + ldc);
        fresh.blend(c11, ALL_LANES).intoArray(c, c0 + ldc + l);
        fresh.blend(c12, ALL_LANES).intoArray(c, c0 + ldc + 2 * l);
        fresh.blend(c20, ALL_LANES).intoArray(c, c0 + 2 * ldc);
        fresh.blend(c21, ALL_LANES).intoArray(c, c0 + 2 * ldc + l);
        fresh.blend(c22, ALL_LANES).intoArray(c, c0 + 2 * ldc + 2 * l);
        fresh.blend(c30, ALL_LANES).intoArray(c, c0 + 3 * ldc);
        fresh.blend(c31, ALL_LANES).intoArray(c, c0 + 3 * ldc + l);
        fresh.blend(c32, ALL_LANES).intoArray(c, c0 + 3 * ldc + 2 * l);
        fresh.blend(c40, ALL_LANES).intoArray(c, c0 + 4 * ldc);
        fresh.blend(c41, ALL_LANES).intoArray(c, c0 + 4 * ldc + l);
        fresh.blend(c42, ALL_LANES).intoArray(c, c0 + 4 * ldc + 2 * l);
        fresh.blend(c50, ALL_LANES).intoArray(c, c0 + 5 * ldc);
        fresh.blend(c51, ALL_LANES).intoArray(c, c0 + 5 * ldc + l);
        fresh.blend(c52, ALL_LANES).intoArray(c, c0 + 5 * ldc + 2 * l);
        fresh.blend(c60, ALL_LANES).intoArray(c, c0 + 6 * ldc);
        fresh.blend(c61, ALL_LANES).intoArray(c, c0 + 6 * ldc + l);
        fresh.blend(c62, ALL_LANES).intoArray(c, c0 + 6 * ldc + 2 * l);
        fresh.blend(c70, ALL_LANES).intoArray(c, c0 + 7 * ldc);
        fresh.blend(c71, ALL_LANES).intoArray(c, c0 + 7 * ldc + l);
        fresh.blend(c72, ALL_LANES).intoArray(c, c0 + 7 * ldc + 2 * l);
    }

    /**
     * {@link #tile8x3} for an {@code A} whose rows are adjacent ({@code aRowStride == 1}: the packed or transposed
     * operands of the Hessian and of GPTQ's update), with constant offsets for the eight broadcasts (about 150 GFLOP/s
     * a core against 124 with a variable stride, measured at 512 bits).
     */
    private static void tile8x3Unit(
            int k, float[] a, int a0, int acs, float[] b, int b0, int ldb, float[] c, int c0, int ldc) {
        int l = F.length();
        FloatVector c00 = FloatVector.fromArray(F, c, c0);
        FloatVector c01 = FloatVector.fromArray(F, c, c0 + l);
        FloatVector c02 = FloatVector.fromArray(F, c, c0 + 2 * l);
        FloatVector c10 = FloatVector.fromArray(F, c, c0 + ldc);
        FloatVector c11 = FloatVector.fromArray(F, c, c0 + ldc + l);
        FloatVector c12 = FloatVector.fromArray(F, c, c0 + ldc + 2 * l);
        FloatVector c20 = FloatVector.fromArray(F, c, c0 + 2 * ldc);
        FloatVector c21 = FloatVector.fromArray(F, c, c0 + 2 * ldc + l);
        FloatVector c22 = FloatVector.fromArray(F, c, c0 + 2 * ldc + 2 * l);
        FloatVector c30 = FloatVector.fromArray(F, c, c0 + 3 * ldc);
        FloatVector c31 = FloatVector.fromArray(F, c, c0 + 3 * ldc + l);
        FloatVector c32 = FloatVector.fromArray(F, c, c0 + 3 * ldc + 2 * l);
        FloatVector c40 = FloatVector.fromArray(F, c, c0 + 4 * ldc);
        FloatVector c41 = FloatVector.fromArray(F, c, c0 + 4 * ldc + l);
        FloatVector c42 = FloatVector.fromArray(F, c, c0 + 4 * ldc + 2 * l);
        FloatVector c50 = FloatVector.fromArray(F, c, c0 + 5 * ldc);
        FloatVector c51 = FloatVector.fromArray(F, c, c0 + 5 * ldc + l);
        FloatVector c52 = FloatVector.fromArray(F, c, c0 + 5 * ldc + 2 * l);
        FloatVector c60 = FloatVector.fromArray(F, c, c0 + 6 * ldc);
        FloatVector c61 = FloatVector.fromArray(F, c, c0 + 6 * ldc + l);
        FloatVector c62 = FloatVector.fromArray(F, c, c0 + 6 * ldc + 2 * l);
        FloatVector c70 = FloatVector.fromArray(F, c, c0 + 7 * ldc);
        FloatVector c71 = FloatVector.fromArray(F, c, c0 + 7 * ldc + l);
        FloatVector c72 = FloatVector.fromArray(F, c, c0 + 7 * ldc + 2 * l);
        for (int t = 0; t < k; t++) {
            int bt = b0 + t * ldb;
            FloatVector b0v = FloatVector.fromArray(F, b, bt);
            FloatVector b1v = FloatVector.fromArray(F, b, bt + l);
            FloatVector b2v = FloatVector.fromArray(F, b, bt + 2 * l);
            int at = a0 + t * acs;
            FloatVector av = FloatVector.broadcast(F, a[at]);
            c00 = b0v.fma(av, c00);
            c01 = b1v.fma(av, c01);
            c02 = b2v.fma(av, c02);
            av = FloatVector.broadcast(F, a[at + 1]);
            c10 = b0v.fma(av, c10);
            c11 = b1v.fma(av, c11);
            c12 = b2v.fma(av, c12);
            av = FloatVector.broadcast(F, a[at + 2]);
            c20 = b0v.fma(av, c20);
            c21 = b1v.fma(av, c21);
            c22 = b2v.fma(av, c22);
            av = FloatVector.broadcast(F, a[at + 3]);
            c30 = b0v.fma(av, c30);
            c31 = b1v.fma(av, c31);
            c32 = b2v.fma(av, c32);
            av = FloatVector.broadcast(F, a[at + 4]);
            c40 = b0v.fma(av, c40);
            c41 = b1v.fma(av, c41);
            c42 = b2v.fma(av, c42);
            av = FloatVector.broadcast(F, a[at + 5]);
            c50 = b0v.fma(av, c50);
            c51 = b1v.fma(av, c51);
            c52 = b2v.fma(av, c52);
            av = FloatVector.broadcast(F, a[at + 6]);
            c60 = b0v.fma(av, c60);
            c61 = b1v.fma(av, c61);
            c62 = b2v.fma(av, c62);
            av = FloatVector.broadcast(F, a[at + 7]);
            c70 = b0v.fma(av, c70);
            c71 = b1v.fma(av, c71);
            c72 = b2v.fma(av, c72);
        }
        // the accumulators are the loop's variables: stored through a fresh vector (class comment)
        FloatVector fresh = FloatVector.zero(F);
        fresh.blend(c00, ALL_LANES).intoArray(c, c0);
        fresh.blend(c01, ALL_LANES).intoArray(c, c0 + l);
        fresh.blend(c02, ALL_LANES).intoArray(c, c0 + 2 * l);
        fresh.blend(c10, ALL_LANES).intoArray(c, c0 + ldc);
        fresh.blend(c11, ALL_LANES).intoArray(c, c0 + ldc + l);
        fresh.blend(c12, ALL_LANES).intoArray(c, c0 + ldc + 2 * l);
        fresh.blend(c20, ALL_LANES).intoArray(c, c0 + 2 * ldc);
        fresh.blend(c21, ALL_LANES).intoArray(c, c0 + 2 * ldc + l);
        fresh.blend(c22, ALL_LANES).intoArray(c, c0 + 2 * ldc + 2 * l);
        fresh.blend(c30, ALL_LANES).intoArray(c, c0 + 3 * ldc);
        fresh.blend(c31, ALL_LANES).intoArray(c, c0 + 3 * ldc + l);
        fresh.blend(c32, ALL_LANES).intoArray(c, c0 + 3 * ldc + 2 * l);
        fresh.blend(c40, ALL_LANES).intoArray(c, c0 + 4 * ldc);
        fresh.blend(c41, ALL_LANES).intoArray(c, c0 + 4 * ldc + l);
        fresh.blend(c42, ALL_LANES).intoArray(c, c0 + 4 * ldc + 2 * l);
        fresh.blend(c50, ALL_LANES).intoArray(c, c0 + 5 * ldc);
        fresh.blend(c51, ALL_LANES).intoArray(c, c0 + 5 * ldc + l);
        fresh.blend(c52, ALL_LANES).intoArray(c, c0 + 5 * ldc + 2 * l);
        fresh.blend(c60, ALL_LANES).intoArray(c, c0 + 6 * ldc);
        fresh.blend(c61, ALL_LANES).intoArray(c, c0 + 6 * ldc + l);
        fresh.blend(c62, ALL_LANES).intoArray(c, c0 + 6 * ldc + 2 * l);
        fresh.blend(c70, ALL_LANES).intoArray(c, c0 + 7 * ldc);
        fresh.blend(c71, ALL_LANES).intoArray(c, c0 + 7 * ldc + l);
        fresh.blend(c72, ALL_LANES).intoArray(c, c0 + 7 * ldc + 2 * l);
    }

    /** A 4-row by 3-vector tile of {@code C}: twelve accumulators held in registers across the whole {@code k} loop. */
    private static void tile4x3(
            int k, float[] a, int a0, int ars, int acs, float[] b, int b0, int ldb, float[] c, int c0, int ldc) {
        int l = F.length();
        FloatVector c00 = FloatVector.fromArray(F, c, c0);
        FloatVector c01 = FloatVector.fromArray(F, c, c0 + l);
        FloatVector c02 = FloatVector.fromArray(F, c, c0 + 2 * l);
        FloatVector c10 = FloatVector.fromArray(F, c, c0 + ldc);
        FloatVector c11 = FloatVector.fromArray(F, c, c0 + ldc + l);
        FloatVector c12 = FloatVector.fromArray(F, c, c0 + ldc + 2 * l);
        FloatVector c20 = FloatVector.fromArray(F, c, c0 + 2 * ldc);
        FloatVector c21 = FloatVector.fromArray(F, c, c0 + 2 * ldc + l);
        FloatVector c22 = FloatVector.fromArray(F, c, c0 + 2 * ldc + 2 * l);
        FloatVector c30 = FloatVector.fromArray(F, c, c0 + 3 * ldc);
        FloatVector c31 = FloatVector.fromArray(F, c, c0 + 3 * ldc + l);
        FloatVector c32 = FloatVector.fromArray(F, c, c0 + 3 * ldc + 2 * l);
        for (int t = 0; t < k; t++) {
            int bt = b0 + t * ldb;
            FloatVector b0v = FloatVector.fromArray(F, b, bt);
            FloatVector b1v = FloatVector.fromArray(F, b, bt + l);
            FloatVector b2v = FloatVector.fromArray(F, b, bt + 2 * l);
            int at = a0 + t * acs;
            FloatVector av = FloatVector.broadcast(F, a[at]);
            c00 = b0v.fma(av, c00);
            c01 = b1v.fma(av, c01);
            c02 = b2v.fma(av, c02);
            av = FloatVector.broadcast(F, a[at + ars]);
            c10 = b0v.fma(av, c10);
            c11 = b1v.fma(av, c11);
            c12 = b2v.fma(av, c12);
            av = FloatVector.broadcast(F, a[at + 2 * ars]);
            c20 = b0v.fma(av, c20);
            c21 = b1v.fma(av, c21);
            c22 = b2v.fma(av, c22);
            av = FloatVector.broadcast(F, a[at + 3 * ars]);
            c30 = b0v.fma(av, c30);
            c31 = b1v.fma(av, c31);
            c32 = b2v.fma(av, c32);
        }
        // the accumulators are the loop's variables: stored through a fresh vector (class comment)
        FloatVector fresh = FloatVector.zero(F);
        fresh.blend(c00, ALL_LANES).intoArray(c, c0);
        fresh.blend(c01, ALL_LANES).intoArray(c, c0 + l);
        fresh.blend(c02, ALL_LANES).intoArray(c, c0 + 2 * l);
        fresh.blend(c10, ALL_LANES).intoArray(c, c0 + ldc);
        fresh.blend(c11, ALL_LANES).intoArray(c, c0 + ldc + l);
        fresh.blend(c12, ALL_LANES).intoArray(c, c0 + ldc + 2 * l);
        fresh.blend(c20, ALL_LANES).intoArray(c, c0 + 2 * ldc);
        fresh.blend(c21, ALL_LANES).intoArray(c, c0 + 2 * ldc + l);
        fresh.blend(c22, ALL_LANES).intoArray(c, c0 + 2 * ldc + 2 * l);
        fresh.blend(c30, ALL_LANES).intoArray(c, c0 + 3 * ldc);
        fresh.blend(c31, ALL_LANES).intoArray(c, c0 + 3 * ldc + l);
        fresh.blend(c32, ALL_LANES).intoArray(c, c0 + 3 * ldc + 2 * l);
    }

    /** A 4-row by 1-vector tile of {@code C}. */
    private static void tile4x1(
            int k, float[] a, int a0, int ars, int acs, float[] b, int b0, int ldb, float[] c, int c0, int ldc) {
        FloatVector c0v = FloatVector.fromArray(F, c, c0);
        FloatVector c1v = FloatVector.fromArray(F, c, c0 + ldc);
        FloatVector c2v = FloatVector.fromArray(F, c, c0 + 2 * ldc);
        FloatVector c3v = FloatVector.fromArray(F, c, c0 + 3 * ldc);
        for (int t = 0; t < k; t++) {
            FloatVector bv = FloatVector.fromArray(F, b, b0 + t * ldb);
            int at = a0 + t * acs;
            c0v = bv.fma(FloatVector.broadcast(F, a[at]), c0v);
            c1v = bv.fma(FloatVector.broadcast(F, a[at + ars]), c1v);
            c2v = bv.fma(FloatVector.broadcast(F, a[at + 2 * ars]), c2v);
            c3v = bv.fma(FloatVector.broadcast(F, a[at + 3 * ars]), c3v);
        }
        // the accumulators are the loop's variables: stored through a fresh vector (class comment)
        FloatVector fresh = FloatVector.zero(F);
        fresh.blend(c0v, ALL_LANES).intoArray(c, c0);
        fresh.blend(c1v, ALL_LANES).intoArray(c, c0 + ldc);
        fresh.blend(c2v, ALL_LANES).intoArray(c, c0 + 2 * ldc);
        fresh.blend(c3v, ALL_LANES).intoArray(c, c0 + 3 * ldc);
    }

    @Override
    public float sumSquares(float[] x, int off, int len) {
        return dot(x, off, x, off, len);
    }

    @Override
    public void diffStats(float[] a, int aOff, float[] b, int bOff, int len, float[] out) {
        int i = 0;
        FloatVector sqDiff = FloatVector.zero(F);
        FloatVector absDiff = FloatVector.zero(F);
        FloatVector maxAbs = FloatVector.zero(F);
        FloatVector sqA = FloatVector.zero(F);
        FloatVector sqB = FloatVector.zero(F);
        FloatVector ab = FloatVector.zero(F);
        int bound = F.loopBound(len);
        for (; i < bound; i += F.length()) {
            FloatVector x = FloatVector.fromArray(F, a, aOff + i);
            FloatVector y = FloatVector.fromArray(F, b, bOff + i);
            FloatVector d = x.sub(y);
            FloatVector ad = d.abs();
            sqDiff = d.fma(d, sqDiff);
            absDiff = ad.add(absDiff);
            maxAbs = ad.blend(maxAbs, ad.compare(VectorOperators.GT, maxAbs).not());
            sqA = x.fma(x, sqA);
            sqB = y.fma(y, sqB);
            ab = x.fma(y, ab);
        }
        float[] tail = new float[6];
        // scalar tail
        super.diffStats(a, aOff + i, b, bOff + i, len - i, tail);
        out[SUM_SQ_DIFF] = sumLanes(sqDiff) + tail[SUM_SQ_DIFF];
        out[SUM_ABS_DIFF] = sumLanes(absDiff) + tail[SUM_ABS_DIFF];
        out[MAX_ABS_DIFF] =
                Math.max(FloatVector.zero(F).max(maxAbs).reduceLanes(VectorOperators.MAX), tail[MAX_ABS_DIFF]);
        out[SUM_SQ_A] = sumLanes(sqA) + tail[SUM_SQ_A];
        out[SUM_SQ_B] = sumLanes(sqB) + tail[SUM_SQ_B];
        out[SUM_AB] = sumLanes(ab) + tail[SUM_AB];
    }
}
