package dev.quant4j.kernel;

import static dev.quant4j.kernel.ScalarGgmlBlockKernels.getFp16;
import static dev.quant4j.kernel.ScalarGgmlBlockKernels.getInt;
import static dev.quant4j.kernel.ScalarGgmlBlockKernels.putInt;
import static dev.quant4j.kernel.VectorShapes.B;
import static dev.quant4j.kernel.VectorShapes.BYTE_PARTS;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.HALVES;
import static dev.quant4j.kernel.VectorShapes.I;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link GgmlBlockKernels} with the Vector API: the bytes and float bits of {@link ScalarGgmlBlockKernels} for every
 * input. A block of 32 values is {@code 32 / L} float vectors; its codes are {@code B.length()} bytes per store (16 at
 * 512 bits, 8 at 256 and 128, where two float vectors make one byte vector).
 *
 * <p>Dequantizing is data movement: bytes widened to float lanes ({@code B2F}: exact), masked and shifted in byte lanes
 * first, then the multiply (and add) of the reference, in its order and without fusing, so every float is the
 * reference's. Quantizing follows the reference's float operations one for one; what it does differently:
 *
 * <ul>
 *   <li>Extremes in the integer domain. {@code amax} is the signed integer maximum of the bits {@code |x|} (ordered as
 *       the floats are). For q8_0 ({@code MAX(amax, fabsf(v))}) a NaN, whose bits are the largest, comes out as
 *       ggml's does; q4_0 and q5_0 never take a NaN ({@code amax < fabsf(v)} is false for it), so a block whose
 *       maximum bits are those of an infinity or a NaN is left to the scalar loop. The value of the largest magnitude
 *       that q4_0 and q5_0 need with its sign is the first one in the block with those bits (ggml's strict {@code <}
 *       keeps the first of equal magnitudes, of either sign): a lane compare and {@code firstTrue}.
 *   <li>q4_1 and q5_1's minimum and maximum by compare-and-blend (a NaN lane never replaces a value, as ggml's {@code
 *       v < min} is false for it), reduced across lanes as integers ({@code b ^ (b >> 31 >>> 1)} orders the bits as the
 *       floats). Only a zero minimum or maximum can differ from ggml's in its bits: ggml keeps the first zero of the
 *       block, whichever its sign, and so does a scalar scan for that case.
 *   <li>{@code roundf} without a rounding instruction: {@code (int) (v + copysign(0.5 - 2^-25, v))} truncates to
 *       {@code roundf(v)} for every float {@code v} (0.5 itself would round {@code 0.5 - 2^-25} up to 1), infinities
 *       and NaN included, as Java's saturating conversion does for the reference's {@code (int) roundf(v)}.
 *   <li>{@code (int8_t)}: the vector {@code F2I} then {@code I2B} are Java's {@code (byte) (int)} (truncation,
 *       saturation, NaN to 0, then the low byte), ggml's conversions on the values it produces. Where {@code 1 / d}
 *       is finite no 4- or 5-bit code needs the narrowing ({@link #inBytes}): clamp and packing in int lanes.
 *   <li>Blocks go {@code L} at a time (one per float lane) through the extremes: a transposed reduction gives the
 *       {@code L} maxima (minima) in one vector, per-thread arrays ({@code KernelScratch}) hold them for the codes.
 * </ul>
 *
 * <p>The scale {@code d} and its FP16 bits are scalar, once per block ({@link Float#floatToFloat16} and {@link
 * Float#float16ToFloat} are single instructions where the CPU has them).
 */
final class VectorGgmlBlockKernels implements GgmlBlockKernels {

    private static final int SIGN = 0x80000000;
    private static final int ABS = 0x7FFFFFFF;
    private static final int INF_BITS = 0x7F800000;
    /** {@code 0.5 - 2^-25}, the float below 0.5: {@code (int) (|v| + ROUND_HALF)} is {@code floor(|v| + 0.5)}. */
    private static final int ROUND_HALF_BITS = Float.floatToRawIntBits(0.49999997f);

    /** Values per block of the 32-value types, and the bytes a store of codes writes. */
    private static final int QK = 32;

    private static final int BL = B.length();
    private static final int FL = F.length();

    @Override
    public String name() {
        return "vector-" + VectorFactory.BITS;
    }

    // ---------------------------------------------------------------- dequantize

    @Override
    public void dequantizeQ8_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int nb = k / QK;
        final int nv = vectorBlocks(x.length, xOff, nb, 34);
        for (int i = 0; i < nv; i++) {
            final int b = xOff + i * 34;
            final FloatVector d = FloatVector.broadcast(F, getFp16(x, b));
            final int o = yOff + i * QK;
            for (int j = 0; j < QK; j += FL) {
                ((FloatVector) ByteVector.fromArray(B, x, b + 2 + j).convertShape(VectorOperators.B2F, F, 0))
                        .mul(d)
                        .intoArray(y, o + j);
            }
        }
        ScalarGgmlBlockKernels.dequantize_row_q8_0(x, xOff + nv * 34, y, yOff + nv * QK, (nb - nv) * QK);
    }

    /**
     * The blocks of {@code size} bytes from {@code xOff} whose byte loads stay in the array. A step reads {@code
     * B.length()} bytes for {@code L} values: at 128 bits 8 for 4, so a block's last step reads 4 bytes past it, and
     * the row's last block is left to the scalar loop when they are past the array's end.
     */
    private static int vectorBlocks(int length, int xOff, int nb, int size) {
        return nb > 0 && (long) xOff + (long) nb * size + (BL - FL) > length ? nb - 1 : nb;
    }

    @Override
    public void dequantizeQ4_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantizeNibbles(x, xOff, y, yOff, k, 18, 2, false, 8);
    }

    @Override
    public void dequantizeQ4_1(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantizeNibbles(x, xOff, y, yOff, k, 20, 4, true, 0);
    }

    @Override
    public void dequantizeQ5_0(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantizeNibbles(x, xOff, y, yOff, k, 22, 6, false, 16);
    }

    @Override
    public void dequantizeQ5_1(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantizeNibbles(x, xOff, y, yOff, k, 24, 8, true, 0);
    }

    /**
     * q4_0, q4_1, q5_0, q5_1: blocks of {@code size} bytes, {@code qs[16]} at {@code qsAt}, the minimum {@code m} after
     * {@code d} when {@code withMin}, the 32 fifth bits {@code qh} just before {@code qs} when {@code qsAt > 4}; code
     * {@code q} stands for {@code (q - offset) * d} or {@code q * d + m}.
     */
    private static void dequantizeNibbles(
            byte[] x, int xOff, float[] y, int yOff, int k, int size, int qsAt, boolean withMin, int offset) {
        final boolean fifthBit = qsAt > 4;
        final byte off = (byte) offset;
        final int nb = k / QK;
        final int nv = vectorBlocks(x.length, xOff, nb, size);
        for (int i = 0; i < nv; i++) {
            final int b = xOff + i * size;
            final FloatVector d = FloatVector.broadcast(F, getFp16(x, b));
            final FloatVector m = FloatVector.broadcast(F, withMin ? getFp16(x, b + 2) : 0f);
            final int qh = fifthBit ? getInt(x, b + qsAt - 4) : 0;
            final int o = yOff + i * QK;
            for (int j = 0; j < QK / 2; j += FL) {
                ByteVector q = ByteVector.fromArray(B, x, b + qsAt + j);
                ByteVector x0 = q.and((byte) 0x0F);
                ByteVector x1 = q.lanewise(VectorOperators.LSHR, 4);
                if (fifthBit) {
                    // bit 4 of element j + l is bit j + l of qh, of element j + l + 16 bit j + l + 16
                    x0 = x0.or(ByteVector.zero(B).blend((byte) 0x10, VectorMask.fromLong(B, qh >>> j)));
                    x1 = x1.or(ByteVector.zero(B).blend((byte) 0x10, VectorMask.fromLong(B, qh >>> (j + 16))));
                }
                FloatVector f0 = (FloatVector) x0.sub(off).convertShape(VectorOperators.B2F, F, 0);
                FloatVector f1 = (FloatVector) x1.sub(off).convertShape(VectorOperators.B2F, F, 0);
                if (withMin) {
                    f0.mul(d).add(m).intoArray(y, o + j);
                    f1.mul(d).add(m).intoArray(y, o + QK / 2 + j);
                } else {
                    f0.mul(d).intoArray(y, o + j);
                    f1.mul(d).intoArray(y, o + QK / 2 + j);
                }
            }
        }
        int rest = (nb - nv) * QK;
        int xr = xOff + nv * size;
        int yr = yOff + nv * QK;
        switch (size) {
            case 18 -> ScalarGgmlBlockKernels.dequantize_row_q4_0(x, xr, y, yr, rest);
            case 20 -> ScalarGgmlBlockKernels.dequantize_row_q4_1(x, xr, y, yr, rest);
            case 22 -> ScalarGgmlBlockKernels.dequantize_row_q5_0(x, xr, y, yr, rest);
            default -> ScalarGgmlBlockKernels.dequantize_row_q5_1(x, xr, y, yr, rest);
        }
    }

    @Override
    public void dequantizeQ4_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantizeK4(x, xOff, y, yOff, k, false);
    }

    @Override
    public void dequantizeQ5_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        dequantizeK4(x, xOff, y, yOff, k, true);
    }

    /**
     * q4_K (144 bytes: d, dmin, scales[12], qs[128]) and q5_K (176: d, dmin, scales[12], qh[32], qs[128]): per 64
     * values, 32 bytes of {@code qs} whose low nibbles are the first 32 values ({@code d1 * q - m1}), high nibbles the
     * next 32 ({@code d2 * q - m2}); q5_K adds 16 where bit {@code 2c} (low) or {@code 2c + 1} (high) of {@code qh[l]}
     * is set, {@code c} the 64-value chunk. The 8 scales and minimums of {@code get_scale_min_k4} are decoded four
     * bytes at a time ({@link #scalesMinsK4}) and multiplied by {@code d} and {@code dmin} in lanes, once per block.
     */
    private static void dequantizeK4(byte[] x, int xOff, float[] y, int yOff, int k, boolean fifthBit) {
        final int size = fifthBit ? 176 : 144;
        final int nb = k / 256;
        final int nv = vectorBlocks(x.length, xOff, nb, size);
        final byte[] sm = KernelScratch.stepCodes(16 + BL);
        final float[] dm = KernelScratch.lanes(16);
        for (int i = 0; i < nv; i++) {
            final int b = xOff + i * size;
            final int qh = b + 16;
            int q = b + (fifthBit ? 48 : 16);
            final float d = getFp16(x, b);
            final float min = getFp16(x, b + 2);
            scalesMinsK4(x, b + 4, sm);
            // dm[j] = d * sc_j, dm[8 + j] = min * m_j: the reference's d1, m1, d2, m2
            if (FL == 16) {
                ((FloatVector) ByteVector.fromArray(B, sm, 0).convertShape(VectorOperators.B2F, F, 0))
                        .mul(FloatVector.broadcast(F, d).blend(min, MINS_16))
                        .intoArray(dm, 0);
            } else {
                for (int p = 0; p < 16; p += FL) {
                    ((FloatVector) ByteVector.fromArray(B, sm, p).convertShape(VectorOperators.B2F, F, 0))
                            .mul(p < 8 ? d : min)
                            .intoArray(dm, p);
                }
            }
            int o = yOff + i * 256;
            for (int c = 0; c < 4; c++) {
                final FloatVector d1 = FloatVector.broadcast(F, dm[2 * c]);
                final FloatVector m1 = FloatVector.broadcast(F, dm[8 + 2 * c]);
                final FloatVector d2 = FloatVector.broadcast(F, dm[2 * c + 1]);
                final FloatVector m2 = FloatVector.broadcast(F, dm[9 + 2 * c]);
                for (int l = 0; l < 32; l += FL) {
                    // nibbles in int lanes (native shifts; x86 has none for bytes), exact as floats
                    IntVector qs = (IntVector)
                            ByteVector.fromArray(B, x, q + l).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                    IntVector x0 = qs.and(0x0F);
                    IntVector x1 = qs.lanewise(VectorOperators.LSHR, 4);
                    if (fifthBit) {
                        // bits 2c and 2c + 1 of qh[l] to bit 4 of the low and the high value
                        IntVector h = ((IntVector) ByteVector.fromArray(B, x, qh + l)
                                        .convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0))
                                .lanewise(VectorOperators.LSHR, 2 * c);
                        x0 = h.lanewise(VectorOperators.LSHL, 4).and(0x10).or(x0);
                        x1 = h.lanewise(VectorOperators.LSHL, 3).and(0x10).or(x1);
                    }
                    FloatVector f0 = (FloatVector) x0.convert(VectorOperators.I2F, 0);
                    FloatVector f1 = (FloatVector) x1.convert(VectorOperators.I2F, 0);
                    d1.mul(f0).sub(m1).intoArray(y, o + l);
                    d2.mul(f1).sub(m2).intoArray(y, o + 32 + l);
                }
                q += 32;
                o += 64;
            }
        }
        int xr = xOff + nv * size;
        int yr = yOff + nv * 256;
        if (fifthBit) {
            ScalarGgmlBlockKernels.dequantize_row_q5_K(x, xr, y, yr, (nb - nv) * 256);
        } else {
            ScalarGgmlBlockKernels.dequantize_row_q4_K(x, xr, y, yr, (nb - nv) * 256);
        }
    }

    /** Lanes 8 to 15 of a 16-lane float vector (the minimums of {@link #scalesMinsK4}); unused at other widths. */
    private static final VectorMask<Float> MINS_16 = VectorMask.fromLong(F, 0xFF00L & ((1L << FL) - 1));

    private static final VarHandle INT_LE = MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);
    private static final VarHandle LONG_LE =
            MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    /**
     * {@code get_scale_min_k4} of the 8 sub-blocks from the 12 bytes {@code q[qOff]}: scale {@code j} to {@code
     * sm[j]}, minimum {@code j} to {@code sm[8 + j]}, four bytes per int. For {@code j < 4}: {@code q[j] & 63} and
     * {@code q[j + 4] & 63}; for {@code j = 4 + t}: {@code (q[8 + t] & 0xF) | (q[t] >> 6) << 4} and {@code (q[8 + t]
     * >> 4) | (q[4 + t] >> 6) << 4} ({@code (v >>> 2) & 0x30} is {@code (v >> 6) << 4} in each byte).
     */
    private static void scalesMinsK4(byte[] q, int qOff, byte[] sm) {
        final int a = (int) INT_LE.get(q, qOff);
        final int b = (int) INT_LE.get(q, qOff + 4);
        final int c = (int) INT_LE.get(q, qOff + 8);
        final int sc0 = a & 0x3F3F3F3F;
        final int sc1 = (c & 0x0F0F0F0F) | ((a >>> 2) & 0x30303030);
        final int m0 = b & 0x3F3F3F3F;
        final int m1 = ((c >>> 4) & 0x0F0F0F0F) | ((b >>> 2) & 0x30303030);
        LONG_LE.set(sm, 0, (sc0 & 0xFFFFFFFFL) | (long) sc1 << 32);
        LONG_LE.set(sm, 8, (m0 & 0xFFFFFFFFL) | (long) m1 << 32);
    }

    /**
     * q6_K (210 bytes: ql[128], qh[64], scales[16], d): per 128 values, {@code ql[l]} and {@code ql[l + 32]} hold the
     * low nibbles of values {@code l, l + 64} and {@code l + 32, l + 96}, {@code qh[l]} their two high bits; value
     * {@code l} is {@code d * scales[l / 16] * (q - 32)}.
     */
    @Override
    public void dequantizeQ6_K(byte[] x, int xOff, float[] y, int yOff, int k) {
        final int nb = k / 256;
        for (int i = 0; i < nb; i++) {
            final int b = xOff + i * 210;
            final float d = getFp16(x, b + 208);
            for (int n = 0; n < 2; n++) {
                final int ql = b + 64 * n;
                final int qh = b + 128 + 32 * n;
                final int sc = b + 192 + 8 * n;
                final int o = yOff + i * 256 + 128 * n;
                for (int l = 0; l < 32; l += FL) {
                    final int is = l / 16;
                    // ggml's d * sc * q: (d * sc) first, then times q
                    final FloatVector s1 = FloatVector.broadcast(F, d * x[sc + is]);
                    final FloatVector s2 = FloatVector.broadcast(F, d * x[sc + is + 2]);
                    final FloatVector s3 = FloatVector.broadcast(F, d * x[sc + is + 4]);
                    final FloatVector s4 = FloatVector.broadcast(F, d * x[sc + is + 6]);
                    ByteVector a = ByteVector.fromArray(B, x, ql + l);
                    ByteVector c = ByteVector.fromArray(B, x, ql + l + 32);
                    ByteVector h = ByteVector.fromArray(B, x, qh + l);
                    ByteVector q1 = a.and((byte) 0x0F)
                            .or(h.and((byte) 3).lanewise(VectorOperators.LSHL, 4))
                            .sub((byte) 32);
                    ByteVector q2 = c.and((byte) 0x0F)
                            .or(h.lanewise(VectorOperators.LSHR, 2)
                                    .and((byte) 3)
                                    .lanewise(VectorOperators.LSHL, 4))
                            .sub((byte) 32);
                    ByteVector q3 = a.lanewise(VectorOperators.LSHR, 4)
                            .or(h.lanewise(VectorOperators.LSHR, 4)
                                    .and((byte) 3)
                                    .lanewise(VectorOperators.LSHL, 4))
                            .sub((byte) 32);
                    ByteVector q4 = c.lanewise(VectorOperators.LSHR, 4)
                            .or(h.lanewise(VectorOperators.LSHR, 6).lanewise(VectorOperators.LSHL, 4))
                            .sub((byte) 32);
                    final int at = o + l;
                    s1.mul((FloatVector) q1.convertShape(VectorOperators.B2F, F, 0))
                            .intoArray(y, at);
                    s2.mul((FloatVector) q2.convertShape(VectorOperators.B2F, F, 0))
                            .intoArray(y, at + 32);
                    s3.mul((FloatVector) q3.convertShape(VectorOperators.B2F, F, 0))
                            .intoArray(y, at + 64);
                    s4.mul((FloatVector) q4.convertShape(VectorOperators.B2F, F, 0))
                            .intoArray(y, at + 96);
                }
            }
        }
    }

    // ---------------------------------------------------------------- quantize

    @Override
    public void quantizeQ4_K(float[] x, int xOff, byte[] y, int yOff, int k) {
        VectorGgmlKQuants.quantizeK(x, xOff, y, yOff, k, false);
    }

    @Override
    public void quantizeQ5_K(float[] x, int xOff, byte[] y, int yOff, int k) {
        VectorGgmlKQuants.quantizeK(x, xOff, y, yOff, k, true);
    }

    @Override
    public void makeQxQuantsQ6_K(float[] x, int xOff, byte[] L, int lOff, float[] scales, int sOff) {
        VectorGgmlKQuants.makeQxQuantsQ6_K(x, xOff, L, lOff, scales, sOff);
    }

    @Override
    public void quantizeQ8_0(float[] x, int xOff, byte[] y, int yOff, int k) {
        final int nb = k / QK;
        final int[] amax = KernelScratch.get(FL).withLaneStats(FL * FL / 2).signedMax;
        for (int i0 = 0; i0 < nb; i0 += FL) {
            final int count = Math.min(FL, nb - i0);
            batchAbsMaxBits(x, xOff + i0 * QK, count, amax);
            for (int i = i0; i < i0 + count; i++) {
                final int o = xOff + i * QK;
                final int b = yOff + i * 34;
                final float d = Float.intBitsToFloat(amax[i - i0]) / ((1 << 7) - 1);
                final float id = d != 0 ? 1.0f / d : 0.0f;
                putFp16(y, b, d);
                final FloatVector idv = FloatVector.broadcast(F, id);
                for (int j = 0; j < QK; j += BL) {
                    // roundf(v): v + copysign(0.5 - 2^-25, v), truncated
                    FloatVector v = FloatVector.fromArray(F, x, o + j).mul(idv);
                    FloatVector half =
                            v.reinterpretAsInts().and(SIGN).or(ROUND_HALF_BITS).reinterpretAsFloats();
                    IntVector r = (IntVector) v.add(half).convert(VectorOperators.F2I, 0);
                    ByteVector q = (ByteVector) r.convertShape(VectorOperators.I2B, B, 0);
                    if (BYTE_PARTS == 2) {
                        FloatVector w = FloatVector.fromArray(F, x, o + j + FL).mul(idv);
                        FloatVector whalf = w.reinterpretAsInts()
                                .and(SIGN)
                                .or(ROUND_HALF_BITS)
                                .reinterpretAsFloats();
                        IntVector t = (IntVector) w.add(whalf).convert(VectorOperators.F2I, 0);
                        q = ((ByteVector) t.convertShape(VectorOperators.I2B, B, -1)).or(q);
                    }
                    q.intoArray(y, b + 2 + j);
                }
            }
        }
    }

    @Override
    public void quantizeQ4_0(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantizeSigned(x, xOff, y, yOff, k, false);
    }

    @Override
    public void quantizeQ5_0(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantizeSigned(x, xOff, y, yOff, k, true);
    }

    /**
     * q4_0 ({@code d = max / -8}) and q5_0 ({@code d = max / -16}), {@code max} the first value of the largest
     * magnitude; a block whose largest magnitude bits are those of an infinity or a NaN goes to the scalar loop.
     */
    private static void quantizeSigned(float[] x, int xOff, byte[] y, int yOff, int k, boolean five) {
        final int nb = k / QK;
        final int size = five ? 22 : 18;
        final KernelScratch s = KernelScratch.get(FL).withLaneStats(FL * FL / 2);
        final int[] amax = s.signedMax;
        for (int i0 = 0; i0 < nb; i0 += FL) {
            final int count = Math.min(FL, nb - i0);
            batchAbsMaxBits(x, xOff + i0 * QK, count, amax);
            for (int i = i0; i < i0 + count; i++) {
                final int o = xOff + i * QK;
                final int b = yOff + i * size;
                final int amaxBits = amax[i - i0];
                if (amaxBits >= INF_BITS) {
                    // an infinity or a NaN: ggml's comparisons decide
                    if (five) {
                        ScalarGgmlBlockKernels.quantize_row_q5_0_ref(x, o, y, b, QK);
                    } else {
                        ScalarGgmlBlockKernels.quantize_row_q4_0_ref(x, o, y, b, QK);
                    }
                    continue;
                }
                final float max = firstWithAbsBits(x, o, amaxBits);
                if (five) {
                    final float d = max / -16;
                    final float id = d != 0 ? 1.0f / d : 0.0f;
                    putFp16(y, b, d);
                    putInt(
                            y,
                            b + 2,
                            inBytes(id)
                                    ? fiveBitCodes(x, o, y, b + 6, id, 0f, 16.5f, false)
                                    : codes(x, o, y, b + 6, id, 0f, 16.5f, (byte) 31, false, true));
                } else {
                    final float d = max / -8;
                    final float id = d != 0 ? 1.0f / d : 0.0f;
                    putFp16(y, b, d);
                    if (inBytes(id)) {
                        fourBitCodes(x, o, y, b + 2, id, 0f, 8.5f, false);
                    } else {
                        codes(x, o, y, b + 2, id, 0f, 8.5f, (byte) 15, false, false);
                    }
                }
            }
        }
    }

    @Override
    public void quantizeQ4_1(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantizeWithMin(x, xOff, y, yOff, k, false);
    }

    @Override
    public void quantizeQ5_1(float[] x, int xOff, byte[] y, int yOff, int k) {
        quantizeWithMin(x, xOff, y, yOff, k, true);
    }

    /** q4_1 ({@code d = (max - min) / 15}) and q5_1 ({@code d = (max - min) / 31}), {@code m = min}. */
    private static void quantizeWithMin(float[] x, int xOff, byte[] y, int yOff, int k, boolean five) {
        final int nb = k / QK;
        final int size = five ? 24 : 20;
        final KernelScratch s = KernelScratch.get(FL).withLaneStats(FL * FL / 2).withCodeParams(FL);
        final float[] mins = s.mins;
        final float[] maxs = s.maxs;
        final float[] ids = s.invs;
        final float[] ds = s.negs;
        for (int i0 = 0; i0 < nb; i0 += FL) {
            final int count = Math.min(FL, nb - i0);
            batchMinMax(x, xOff + i0 * QK, count, s.signedMax, s.unsignedMax, mins, maxs);
            FloatVector min = FloatVector.fromArray(F, mins, 0);
            FloatVector max = FloatVector.fromArray(F, maxs, 0);
            FloatVector d = max.sub(min).div((float) ((five ? 1 << 5 : 1 << 4) - 1));
            FloatVector id = FloatVector.broadcast(F, 1.0f).div(d).blend(0.0f, d.compare(VectorOperators.EQ, 0));
            d.intoArray(ds, 0);
            id.intoArray(ids, 0);
            for (int i = i0; i < i0 + count; i++) {
                final int o = xOff + i * QK;
                final int b = yOff + i * size;
                final float m = mins[i - i0];
                putFp16(y, b, ds[i - i0]);
                putFp16(y, b + 2, m);
                final float idi = ids[i - i0];
                if (five) {
                    // (int) (x0 + 0.5f) & 0xFF: no clamp, the low byte
                    putInt(
                            y,
                            b + 4,
                            inBytes(idi)
                                    ? fiveBitCodes(x, o, y, b + 8, idi, m, 0.5f, true)
                                    : codes(x, o, y, b + 8, idi, m, 0.5f, Byte.MAX_VALUE, true, true));
                } else {
                    if (inBytes(idi)) {
                        fourBitCodes(x, o, y, b + 4, idi, m, 0.5f, true);
                    } else {
                        codes(x, o, y, b + 4, idi, m, 0.5f, (byte) 15, true, false);
                    }
                }
            }
        }
    }

    /**
     * The largest bits of {@code |x|} of each of {@code count <= L} blocks from {@code x[o]}, as signed integers (the
     * bits of the largest magnitude, those of a NaN when there is one), into {@code amax[0 .. count)}: a transposed
     * reduction ({@link VectorShapes#HALVES}), {@code L - 1} combinations of two {@code selectFrom} and a maximum for
     * the batch instead of a cross-lane reduction per block. Uses {@code amax[0 .. L * L / 2)}.
     */
    private static void batchAbsMaxBits(float[] x, int o, int count, int[] amax) {
        IntVector left = IntVector.fromArray(I, HALVES, 0);
        IntVector right = IntVector.fromArray(I, HALVES, FL);
        for (int p = 0; p < FL / 2; p++) {
            final int a = 2 * p;
            // a missing block is a copy of its pair's first (ignored), or of block 0 when both are missing
            final int oa = o + (a < count ? a : 0) * QK;
            final int oc = a + 1 < count ? oa + QK : oa;
            IntVector ma = FloatVector.fromArray(F, x, oa).reinterpretAsInts().and(ABS);
            IntVector mc = FloatVector.fromArray(F, x, oc).reinterpretAsInts().and(ABS);
            for (int j = FL; j < QK; j += FL) {
                ma = FloatVector.fromArray(F, x, oa + j)
                        .reinterpretAsInts()
                        .and(ABS)
                        .max(ma);
                mc = FloatVector.fromArray(F, x, oc + j)
                        .reinterpretAsInts()
                        .and(ABS)
                        .max(mc);
            }
            left.selectFrom(ma, mc).max(right.selectFrom(ma, mc)).intoArray(amax, p * FL);
        }
        for (int level = 1, n = FL / 2; n > 1; level++, n >>= 1) {
            IntVector l = IntVector.fromArray(I, HALVES, level * 2 * FL);
            IntVector r = IntVector.fromArray(I, HALVES, level * 2 * FL + FL);
            for (int p = 0; p < n / 2; p++) {
                IntVector s0 = IntVector.fromArray(I, amax, 2 * p * FL);
                IntVector s1 = IntVector.fromArray(I, amax, 2 * p * FL + FL);
                l.selectFrom(s0, s1).max(r.selectFrom(s0, s1)).intoArray(amax, p * FL);
            }
        }
    }

    /**
     * ggml's {@code min} and {@code max} of each of {@code count <= L} blocks from {@code x[o]} ({@code if (v < min)
     * min = v; if (v > max) max = v;} from {@code FLT_MAX} and {@code -FLT_MAX}) into {@code mins} and {@code maxs[0
     * .. count)}, bit for bit: per block, compare-and-blend lane-wise (a NaN lane never replaces a value, as ggml's
     * {@code v < min} is false for it); then a transposed reduction of the lanes as integers ordered as the floats
     * ({@code b ^ (b >> 31 >>> 1)}, its own inverse; -0 below +0) in {@code sn} and {@code sx[0 .. L * L / 2)}. Only
     * a zero extreme can differ from ggml's in its bits: ggml keeps the block's first zero, whichever its sign, and so
     * does a scalar scan for that case.
     */
    private static void batchMinMax(float[] x, int o, int count, int[] sn, int[] sx, float[] mins, float[] maxs) {
        IntVector left = IntVector.fromArray(I, HALVES, 0);
        IntVector right = IntVector.fromArray(I, HALVES, FL);
        for (int p = 0; p < FL / 2; p++) {
            final int a = 2 * p;
            final int oa = o + (a < count ? a : 0) * QK;
            final int oc = a + 1 < count ? oa + QK : oa;
            FloatVector na = FloatVector.broadcast(F, Float.MAX_VALUE);
            FloatVector xa = FloatVector.broadcast(F, -Float.MAX_VALUE);
            FloatVector nc = FloatVector.broadcast(F, Float.MAX_VALUE);
            FloatVector xc = FloatVector.broadcast(F, -Float.MAX_VALUE);
            for (int j = 0; j < QK; j += FL) {
                // keep the old value unless v is smaller (larger): never a NaN
                FloatVector va = FloatVector.fromArray(F, x, oa + j);
                na = va.blend(na, va.compare(VectorOperators.LT, na).not());
                xa = va.blend(xa, va.compare(VectorOperators.GT, xa).not());
                FloatVector vc = FloatVector.fromArray(F, x, oc + j);
                nc = vc.blend(nc, vc.compare(VectorOperators.LT, nc).not());
                xc = vc.blend(xc, vc.compare(VectorOperators.GT, xc).not());
            }
            IntVector ina =
                    FloatVector.zero(F).blend(na, VectorShapes.ALL_LANES).reinterpretAsInts();
            IntVector ixa =
                    FloatVector.zero(F).blend(xa, VectorShapes.ALL_LANES).reinterpretAsInts();
            IntVector inc =
                    FloatVector.zero(F).blend(nc, VectorShapes.ALL_LANES).reinterpretAsInts();
            IntVector ixc =
                    FloatVector.zero(F).blend(xc, VectorShapes.ALL_LANES).reinterpretAsInts();
            ina = ina.lanewise(VectorOperators.ASHR, 31)
                    .lanewise(VectorOperators.LSHR, 1)
                    .lanewise(VectorOperators.XOR, ina);
            ixa = ixa.lanewise(VectorOperators.ASHR, 31)
                    .lanewise(VectorOperators.LSHR, 1)
                    .lanewise(VectorOperators.XOR, ixa);
            inc = inc.lanewise(VectorOperators.ASHR, 31)
                    .lanewise(VectorOperators.LSHR, 1)
                    .lanewise(VectorOperators.XOR, inc);
            ixc = ixc.lanewise(VectorOperators.ASHR, 31)
                    .lanewise(VectorOperators.LSHR, 1)
                    .lanewise(VectorOperators.XOR, ixc);
            left.selectFrom(ina, inc).min(right.selectFrom(ina, inc)).intoArray(sn, p * FL);
            left.selectFrom(ixa, ixc).max(right.selectFrom(ixa, ixc)).intoArray(sx, p * FL);
        }
        for (int level = 1, n = FL / 2; n > 1; level++, n >>= 1) {
            IntVector l = IntVector.fromArray(I, HALVES, level * 2 * FL);
            IntVector r = IntVector.fromArray(I, HALVES, level * 2 * FL + FL);
            for (int p = 0; p < n / 2; p++) {
                IntVector n0 = IntVector.fromArray(I, sn, 2 * p * FL);
                IntVector n1 = IntVector.fromArray(I, sn, 2 * p * FL + FL);
                l.selectFrom(n0, n1).min(r.selectFrom(n0, n1)).intoArray(sn, p * FL);
                IntVector x0 = IntVector.fromArray(I, sx, 2 * p * FL);
                IntVector x1 = IntVector.fromArray(I, sx, 2 * p * FL + FL);
                l.selectFrom(x0, x1).max(r.selectFrom(x0, x1)).intoArray(sx, p * FL);
            }
        }
        IntVector bn = IntVector.fromArray(I, sn, 0);
        IntVector bx = IntVector.fromArray(I, sx, 0);
        FloatVector min = bn.lanewise(VectorOperators.ASHR, 31)
                .lanewise(VectorOperators.LSHR, 1)
                .lanewise(VectorOperators.XOR, bn)
                .reinterpretAsFloats();
        FloatVector max = bx.lanewise(VectorOperators.ASHR, 31)
                .lanewise(VectorOperators.LSHR, 1)
                .lanewise(VectorOperators.XOR, bx)
                .reinterpretAsFloats();
        min.intoArray(mins, 0);
        max.intoArray(maxs, 0);
        if (min.compare(VectorOperators.EQ, 0)
                .or(max.compare(VectorOperators.EQ, 0))
                .anyTrue()) {
            for (int i = 0; i < count; i++) {
                if (mins[i] == 0 || maxs[i] == 0) {
                    // a zero extreme is ggml's first zero of the block, +0 or -0
                    for (int j = 0; j < QK; j++) {
                        final float v = x[o + i * QK + j];
                        if (v == 0) {
                            if (mins[i] == 0) {
                                mins[i] = v;
                            }
                            if (maxs[i] == 0) {
                                maxs[i] = v;
                            }
                            break;
                        }
                    }
                }
            }
        }
    }

    /**
     * The first value of the block whose magnitude has the bits {@code absBits} (finite), or {@code 0.0f} when they
     * are those of zero: ggml's {@code if (amax < fabsf(v)) { amax = fabsf(v); max = v; }} from {@code amax = max =
     * 0}.
     */
    private static float firstWithAbsBits(float[] x, int o, int absBits) {
        if (absBits == 0) {
            return 0.0f;
        }
        for (int j = 0; j < QK; j += FL) {
            VectorMask<Integer> hit = FloatVector.fromArray(F, x, o + j)
                    .reinterpretAsInts()
                    .and(ABS)
                    .compare(VectorOperators.EQ, absBits);
            if (hit.anyTrue()) {
                return x[o + j + hit.firstTrue()];
            }
        }
        throw new AssertionError("no value of magnitude bits " + Integer.toHexString(absBits));
    }

    /**
     * Whether every code of a block quantized with {@code id} is {@code (int) v} itself, no saturation and {@code
     * (int8_t)} changing nothing, so the clamp and the packing can stay in int lanes: when {@code id} is finite. Then
     * {@code d} is 0 ({@code id = 0}: codes {@code (int) add}, or 0 from a NaN) or at least {@code 2^-128}, where its
     * rounding error is at most {@code 2^-22} of it; {@code |x| <= |max|} (q4_0, q5_0) and {@code 0 <= x - min <= max
     * - min} (q4_1, q5_1) bound {@code |x * id|} by {@code 8}, {@code 16}, {@code 15} or {@code 31} times {@code 1 +
     * 2^-20}: codes in {@code [0, 32]}. At 128 bits a store of codes is two float vectors: {@link #codes}.
     */
    private static boolean inBytes(float id) {
        return BYTE_PARTS == 1 && Float.isFinite(id);
    }

    /**
     * q4_0 and q4_1's codes when {@link #inBytes}: {@code MIN(15, (int) ((v - min) * id + add))} (no {@code - min}
     * unless {@code withMin}), element {@code j} low and {@code j + 16} high in byte {@code j}. Small, so that C2
     * inlines it (a call per block measured 1.5 to 2 times slower).
     */
    private static void fourBitCodes(
            float[] x, int o, byte[] y, int q, float id, float min, float add, boolean withMin) {
        final FloatVector idv = FloatVector.broadcast(F, id);
        final FloatVector minv = FloatVector.broadcast(F, min);
        final FloatVector addv = FloatVector.broadcast(F, add);
        for (int j = 0; j < QK / 2; j += FL) {
            FloatVector v0 = FloatVector.fromArray(F, x, o + j);
            FloatVector v1 = FloatVector.fromArray(F, x, o + QK / 2 + j);
            if (withMin) {
                v0 = v0.sub(minv);
                v1 = v1.sub(minv);
            }
            IntVector r0 = (IntVector) v0.mul(idv).add(addv).convert(VectorOperators.F2I, 0);
            IntVector r1 = (IntVector) v1.mul(idv).add(addv).convert(VectorOperators.F2I, 0);
            ((ByteVector) r1.min(15)
                            .lanewise(VectorOperators.LSHL, 4)
                            .or(r0.min(15))
                            .convertShape(VectorOperators.I2B, B, 0))
                    .intoArray(y, q + j);
        }
    }

    /**
     * q5_0 ({@code MIN(31, (int) (v * id + 16.5f))}) and q5_1's ({@code (int) ((v - min) * id + 0.5f)}, no clamp)
     * codes when {@link #inBytes}: the low nibbles as {@link #fourBitCodes}, returns {@code qh}.
     */
    private static int fiveBitCodes(
            float[] x, int o, byte[] y, int q, float id, float min, float add, boolean withMin) {
        final FloatVector idv = FloatVector.broadcast(F, id);
        final FloatVector minv = FloatVector.broadcast(F, min);
        final FloatVector addv = FloatVector.broadcast(F, add);
        int qh = 0;
        for (int j = 0; j < QK / 2; j += FL) {
            FloatVector v0 = FloatVector.fromArray(F, x, o + j);
            FloatVector v1 = FloatVector.fromArray(F, x, o + QK / 2 + j);
            IntVector r0;
            IntVector r1;
            if (withMin) {
                r0 = (IntVector) v0.sub(minv).mul(idv).add(addv).convert(VectorOperators.F2I, 0);
                r1 = (IntVector) v1.sub(minv).mul(idv).add(addv).convert(VectorOperators.F2I, 0);
            } else {
                r0 = ((IntVector) v0.mul(idv).add(addv).convert(VectorOperators.F2I, 0)).min(31);
                r1 = ((IntVector) v1.mul(idv).add(addv).convert(VectorOperators.F2I, 0)).min(31);
            }
            long h0 = r0.and(0x10).compare(VectorOperators.NE, 0).toLong();
            long h1 = r1.and(0x10).compare(VectorOperators.NE, 0).toLong();
            qh |= (int) (h0 << j) | (int) (h1 << (j + QK / 2));
            ((ByteVector) r1.lanewise(VectorOperators.LSHL, 4).or(r0.and(0x0F)).convertShape(VectorOperators.I2B, B, 0))
                    .intoArray(y, q + j);
        }
        return qh;
    }

    /**
     * The codes of q4_0, q4_1, q5_0 and q5_1: {@code xi = MIN(max, (int8_t) ((v - min) * id + add))} (without {@code
     * - min} unless {@code withMin}), element {@code j}'s low nibble in the low nibble of byte {@code j}, element {@code
     * j + 16}'s in its high nibble, 16 bytes to {@code y[q]}; returns {@code qh}, bit 4 of element {@code j}'s code at
     * bit {@code j}, when {@code fifthBit}.
     */
    private static int codes(
            float[] x,
            int o,
            byte[] y,
            int q,
            float id,
            float min,
            float add,
            byte max,
            boolean withMin,
            boolean fifthBit) {
        final FloatVector idv = FloatVector.broadcast(F, id);
        final FloatVector minv = FloatVector.broadcast(F, min);
        final FloatVector addv = FloatVector.broadcast(F, add);
        int qh = 0;
        for (int j = 0; j < QK / 2; j += BL) {
            // a store of codes is one float vector (512, 256 bits) or two (128 bits: parts 0 and -1 of the bytes)
            FloatVector v0 = FloatVector.fromArray(F, x, o + j);
            FloatVector v1 = FloatVector.fromArray(F, x, o + QK / 2 + j);
            if (withMin) {
                v0 = v0.sub(minv);
                v1 = v1.sub(minv);
            }
            IntVector r0 = (IntVector) v0.mul(idv).add(addv).convert(VectorOperators.F2I, 0);
            IntVector r1 = (IntVector) v1.mul(idv).add(addv).convert(VectorOperators.F2I, 0);
            ByteVector c0 = (ByteVector) r0.convertShape(VectorOperators.I2B, B, 0);
            ByteVector c1 = (ByteVector) r1.convertShape(VectorOperators.I2B, B, 0);
            if (BYTE_PARTS == 2) {
                FloatVector w0 = FloatVector.fromArray(F, x, o + j + FL);
                FloatVector w1 = FloatVector.fromArray(F, x, o + QK / 2 + j + FL);
                if (withMin) {
                    w0 = w0.sub(minv);
                    w1 = w1.sub(minv);
                }
                IntVector s0 = (IntVector) w0.mul(idv).add(addv).convert(VectorOperators.F2I, 0);
                IntVector s1 = (IntVector) w1.mul(idv).add(addv).convert(VectorOperators.F2I, 0);
                c0 = ((ByteVector) s0.convertShape(VectorOperators.I2B, B, -1)).or(c0);
                c1 = ((ByteVector) s1.convertShape(VectorOperators.I2B, B, -1)).or(c1);
            }
            c0 = c0.min(max);
            c1 = c1.min(max);
            if (fifthBit) {
                long h0 = c0.and((byte) 0x10)
                        .compare(VectorOperators.NE, (byte) 0)
                        .toLong();
                long h1 = c1.and((byte) 0x10)
                        .compare(VectorOperators.NE, (byte) 0)
                        .toLong();
                qh |= (int) (h0 << j) | (int) (h1 << (j + 16));
                c0 = c0.and((byte) 0x0F);
            }
            c1.lanewise(VectorOperators.LSHL, 4).or(c0).intoArray(y, q + j);
        }
        return qh;
    }

    private static void putFp16(byte[] y, int off, float v) {
        short h = GgmlBlockKernels.fp32ToFp16(v);
        y[off] = (byte) h;
        y[off + 1] = (byte) (h >> 8);
    }
}
