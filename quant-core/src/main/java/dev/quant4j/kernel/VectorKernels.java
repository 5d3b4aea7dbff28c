package dev.quant4j.kernel;

import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
    private static float sumLanes(FloatVector v) {
        for (VectorShuffle<Float> x : XOR) {
            v = v.add(v.rearrange(x));
        }
        return v.lane(0);
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
            p1 = p1.add(FloatVector.fromArray(F, x, off + i).mul(0f));
            p2 = p2.add(FloatVector.fromArray(F, x, off + i + step).mul(0f));
        }
        boolean finite = p1.add(p2).reduceLanes(VectorOperators.ADD) == 0f;
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
                lo = lo.blend(v, v.compare(VectorOperators.LT, lo));
                hi = hi.blend(v, v.compare(VectorOperators.GT, hi));
            }
            // lower half: min of lo and its upper half; upper half: max of hi and its lower half
            FloatVector c = lo.blend(hi, UPPER);
            FloatVector r = lo.blend(hi, LOWER).rearrange(XOR[0]);
            c = c.blend(r, towards(c, r));
            for (int k = 1; k < XOR.length; k++) {
                r = c.rearrange(XOR[k]);
                c = c.blend(r, towards(c, r));
            }
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

    /** Lanes where {@code r} should replace {@code c}: smaller in the lower half, larger in the upper half. */
    private static VectorMask<Float> towards(FloatVector c, FloatVector r) {
        return r.compare(VectorOperators.LT, c)
                .and(LOWER)
                .or(r.compare(VectorOperators.GT, c).and(UPPER));
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
                acc = acc.blend(v, v.compare(VectorOperators.GT, acc));
            }
            // all lanes are >= 0, so MAX is exact whatever its rules for NaN and signed zeros
            m = acc.reduceLanes(VectorOperators.MAX);
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
        int i = 0;
        if (BYTE_PARTS == 1) {
            // 256 bits and wider: one float vector fills one byte vector
            int bound = F.loopBound(len);
            for (; i < bound; i += F.length()) {
                storeBytes(codes(FloatVector.fromArray(F, x, off + i), scale, lo, hi, bias), codes, codesOff + i);
            }
        } else {
            // 128 bits: two float vectors of 4 lanes fill the 8 lanes of the smallest byte vector
            int step = B.length();
            int bound = len - len % step;
            for (; i < bound; i += step) {
                storeBytes(
                        codes(FloatVector.fromArray(F, x, off + i), scale, lo, hi, bias),
                        codes(FloatVector.fromArray(F, x, off + i + F.length()), scale, lo, hi, bias),
                        codes,
                        codesOff + i);
            }
        }
        // scalar tail
        super.quantize(x, off + i, len - i, scale, zero, qmin, qmax, codes, codesOff + i);
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
        int i = 0;
        if (BYTE_PARTS == 1) {
            int bound = F.loopBound(len);
            for (; i < bound; i += F.length()) {
                storeBytes(
                        codebookCodes(FloatVector.fromArray(F, x, off + i), inv, thresholds, signMagnitude),
                        codes,
                        codesOff + i);
            }
        } else {
            int step = B.length();
            int bound = len - len % step;
            for (; i < bound; i += step) {
                storeBytes(
                        codebookCodes(FloatVector.fromArray(F, x, off + i), inv, thresholds, signMagnitude),
                        codebookCodes(
                                FloatVector.fromArray(F, x, off + i + F.length()), inv, thresholds, signMagnitude),
                        codes,
                        codesOff + i);
            }
        }
        // scalar tail
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
                    r = r.blend(part, in);
                }
                r.intoArray(out, outOff + i + j);
            }
        }
        // scalar tail
        super.decode4(packed, byteOff + i / 2, n - i, table, out, outOff + i);
    }

    /**
     * Codebook codes of one vector: count the thresholds below each lane (NaN lanes count none). The count is summed
     * in float lanes (blend of 1 or 0, exact for small integers) and converted once, which keeps the loop over the
     * thresholds to plain float operations.
     */
    private static IntVector codebookCodes(FloatVector v, float inv, float[] thresholds, boolean signMagnitude) {
        FloatVector q = v.mul(inv);
        FloatVector a = signMagnitude ? q.abs() : q;
        FloatVector count = FloatVector.zero(F);
        FloatVector one = FloatVector.broadcast(F, 1f);
        for (int j = 0; j < thresholds.length; j++) {
            count = count.add(one, a.compare(VectorOperators.GT, thresholds[j]));
        }
        IntVector c = (IntVector) count.convert(VectorOperators.F2I, 0);
        if (signMagnitude) {
            c = c.lanewise(VectorOperators.XOR, c.and(2).lanewise(VectorOperators.LSHL, 1))
                    .lanewise(
                            VectorOperators.OR,
                            8,
                            q.compare(VectorOperators.LT, 0f).cast(I));
        }
        return c;
    }

    /** Stores the low byte of each lane (256 bits and wider: one vector of codes fills one byte vector). */
    private static void storeBytes(IntVector c, byte[] dst, int off) {
        ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(dst, off);
    }

    /** 128 bits: the codes of two 4-lane vectors fill the 8 lanes of the smallest byte vector. */
    private static void storeBytes(IntVector c0, IntVector c1, byte[] dst, int off) {
        ByteVector b0 = (ByteVector) c0.convertShape(VectorOperators.I2B, B, 0);
        ByteVector b1 = (ByteVector) c1.convertShape(VectorOperators.I2B, B, -1);
        b0.or(b1).intoArray(dst, off);
    }

    /** Codes of one vector: divide, round by the magic add, clamp the bits to [lo, hi], remove the bias. */
    private static IntVector codes(FloatVector v, float scale, int lo, int hi, int bias) {
        return v.div(scale).add(ROUND_MAGIC).reinterpretAsInts().max(lo).min(hi).sub(bias);
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
        float s = sumLanes(acc1.add(acc2).add(acc3.add(acc4)));
        // scalar tail
        for (; i < len; i++) {
            s = Math.fma(a[aOff + i], b[bOff + i], s);
        }
        return s;
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
            absDiff = absDiff.add(ad);
            maxAbs = maxAbs.blend(ad, ad.compare(VectorOperators.GT, maxAbs));
            sqA = x.fma(x, sqA);
            sqB = y.fma(y, sqB);
            ab = x.fma(y, ab);
        }
        float[] tail = new float[6];
        // scalar tail
        super.diffStats(a, aOff + i, b, bOff + i, len - i, tail);
        out[SUM_SQ_DIFF] = sqDiff.reduceLanes(VectorOperators.ADD) + tail[SUM_SQ_DIFF];
        out[SUM_ABS_DIFF] = absDiff.reduceLanes(VectorOperators.ADD) + tail[SUM_ABS_DIFF];
        out[MAX_ABS_DIFF] = Math.max(maxAbs.reduceLanes(VectorOperators.MAX), tail[MAX_ABS_DIFF]);
        out[SUM_SQ_A] = sqA.reduceLanes(VectorOperators.ADD) + tail[SUM_SQ_A];
        out[SUM_SQ_B] = sqB.reduceLanes(VectorOperators.ADD) + tail[SUM_SQ_B];
        out[SUM_AB] = ab.reduceLanes(VectorOperators.ADD) + tail[SUM_AB];
    }
}
