package dev.quant4j.kernel;

import java.nio.ByteOrder;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * {@code jdk.incubator.vector} kernels for any float species of at least 128 bits (128, 256, 512 and wider).
 *
 * <p>Loaded only through {@link Kernels} when the module is present. Every method has a vector body over
 * {@code species.loopBound(len)} followed by a scalar tail that computes exactly what {@link ScalarKernels} does, so
 * integer results are identical. Float sums use several accumulators and differ from the scalar order by rounding
 * only.
 */
final class VectorKernels extends ScalarKernels {

    /** {@code 1.5 * 2^23}: adding and subtracting it rounds any |v| <= 2^22 to an integer, half to even. */
    private static final float ROUND_MAGIC = 12582912f;
    /** Clamp bound before the magic rounding; anything this large is clamped to the code range anyway. */
    private static final float ROUND_LIMIT = 4194304f;

    private final VectorSpecies<Float> F;
    private final VectorSpecies<Integer> I;
    /** Byte species with {@code max(8, F.length())} lanes: holds the codes of {@code byteParts} float vectors. */
    private final VectorSpecies<Byte> B;

    private final int byteParts;
    /** 4-bit packing: {@code packBytes} codes (as shorts in {@code packShorts}) become {@code halfBytes} bytes. */
    private final VectorSpecies<Byte> packBytes;

    private final VectorSpecies<Short> packShorts;
    private final VectorSpecies<Byte> halfBytes;
    private final boolean littleEndian = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    VectorKernels(VectorSpecies<Float> species) {
        if (species.vectorBitSize() < 128) {
            throw new IllegalArgumentException("vector kernels need at least 128-bit vectors, got " + species);
        }
        this.F = species;
        this.I = IntVector.SPECIES_128.withShape(species.vectorShape());
        int byteLanes = Math.max(8, species.length());
        this.B = ByteVector.SPECIES_64.withShape(VectorShape.forBitSize(byteLanes * 8));
        this.byteParts = B.length() / F.length();
        this.packBytes = ByteVector.SPECIES_64.withShape(species.vectorShape());
        this.packShorts = ShortVector.SPECIES_64.withShape(species.vectorShape());
        this.halfBytes = ByteVector.SPECIES_64.withShape(VectorShape.forBitSize(species.vectorBitSize() / 2));
    }

    @Override
    public String name() {
        return "vector-" + F.vectorBitSize();
    }

    @Override
    public float min(float[] x, int off, int len) {
        int i = 0;
        float m = x[off];
        int bound = F.loopBound(len);
        if (bound > 0) {
            FloatVector acc = FloatVector.fromArray(F, x, off);
            for (i = F.length(); i < bound; i += F.length()) {
                acc = acc.min(FloatVector.fromArray(F, x, off + i));
            }
            m = Math.min(m, acc.reduceLanes(VectorOperators.MIN));
        }
        // scalar tail
        for (; i < len; i++) {
            m = Math.min(m, x[off + i]);
        }
        return m;
    }

    @Override
    public float max(float[] x, int off, int len) {
        int i = 0;
        float m = x[off];
        int bound = F.loopBound(len);
        if (bound > 0) {
            FloatVector acc = FloatVector.fromArray(F, x, off);
            for (i = F.length(); i < bound; i += F.length()) {
                acc = acc.max(FloatVector.fromArray(F, x, off + i));
            }
            m = Math.max(m, acc.reduceLanes(VectorOperators.MAX));
        }
        // scalar tail
        for (; i < len; i++) {
            m = Math.max(m, x[off + i]);
        }
        return m;
    }

    @Override
    public float absMax(float[] x, int off, int len) {
        int i = 0;
        float m = 0f;
        int bound = F.loopBound(len);
        if (bound > 0) {
            FloatVector acc = FloatVector.zero(F);
            for (; i < bound; i += F.length()) {
                acc = acc.max(FloatVector.fromArray(F, x, off + i).abs());
            }
            m = acc.reduceLanes(VectorOperators.MAX);
        }
        // scalar tail
        for (; i < len; i++) {
            m = Math.max(m, Math.abs(x[off + i]));
        }
        return m;
    }

    @Override
    public void quantize(
            float[] x, int off, int len, float scale, float zero, int qmin, int qmax, byte[] codes, int codesOff) {
        int step = B.length();
        int bound = len - len % step;
        int i = 0;
        float lo = qmin;
        float hi = qmax;
        for (; i < bound; i += step) {
            ByteVector packed = null;
            for (int part = 0; part < byteParts; part++) {
                FloatVector v = FloatVector.fromArray(F, x, off + i + part * F.length())
                        .div(scale)
                        .max(-ROUND_LIMIT)
                        .min(ROUND_LIMIT)
                        .add(ROUND_MAGIC)
                        .sub(ROUND_MAGIC)
                        .add(zero)
                        .max(lo)
                        .min(hi);
                ByteVector b = (ByteVector) v.convertShape(VectorOperators.F2B, B, -part);
                packed = packed == null ? b : packed.or(b);
            }
            packed.intoArray(codes, codesOff + i);
        }
        // scalar tail
        super.quantize(x, off + i, len - i, scale, zero, qmin, qmax, codes, codesOff + i);
    }

    @Override
    public void dequantize(byte[] codes, int codesOff, int len, float scale, float zero, float[] out, int outOff) {
        int step = B.length();
        int bound = len - len % step;
        int i = 0;
        for (; i < bound; i += step) {
            ByteVector b = ByteVector.fromArray(B, codes, codesOff + i);
            for (int part = 0; part < byteParts; part++) {
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
        if (bits != 4 || !littleEndian) {
            super.pack(codes, codesOff, n, bits, packed, packedOff);
            return;
        }
        // Two codes per byte, code 2k in the low nibble: read byte pairs as little-endian shorts s = c0 | c1 << 8;
        // the low byte of (s | s >>> 4) is c0 | c1 << 4.
        int step = packBytes.length();
        int bound = n - n % step;
        int i = 0;
        for (; i < bound; i += step) {
            ShortVector s = ByteVector.fromArray(packBytes, codes, codesOff + i).reinterpretAsShorts();
            ((ByteVector) s.or(s.lanewise(VectorOperators.LSHR, 4)).convertShape(VectorOperators.S2B, halfBytes, 0))
                    .intoArray(packed, packedOff + i / 2);
        }
        // scalar tail
        super.pack(codes, codesOff + i, n - i, bits, packed, packedOff + i / 2);
    }

    @Override
    public void unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        if (bits != 4 || !littleEndian) {
            super.unpack(packed, packedOff, n, bits, codes, codesOff);
            return;
        }
        // Each packed byte p becomes the short (p & 0xF) | (p >>> 4) << 8, i.e. the byte pair [low, high nibble].
        int step = packBytes.length();
        int bound = n - n % step;
        int i = 0;
        for (; i < bound; i += step) {
            ShortVector s = (ShortVector) ByteVector.fromArray(halfBytes, packed, packedOff + i / 2)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, packShorts, 0);
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
        int i = 0;
        int step = F.length();
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        int bound2 = len - len % (2 * step);
        for (; i < bound2; i += 2 * step) {
            acc1 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc1);
            acc2 = FloatVector.fromArray(F, a, aOff + i + step).fma(FloatVector.fromArray(F, b, bOff + i + step), acc2);
        }
        int bound = F.loopBound(len);
        for (; i < bound; i += step) {
            acc1 = FloatVector.fromArray(F, a, aOff + i).fma(FloatVector.fromArray(F, b, bOff + i), acc1);
        }
        float s = acc1.add(acc2).reduceLanes(VectorOperators.ADD);
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
    public float sumSquaredDiff(float[] a, int aOff, float[] b, int bOff, int len) {
        int i = 0;
        int step = F.length();
        FloatVector acc1 = FloatVector.zero(F);
        FloatVector acc2 = FloatVector.zero(F);
        int bound2 = len - len % (2 * step);
        for (; i < bound2; i += 2 * step) {
            FloatVector d1 = FloatVector.fromArray(F, a, aOff + i).sub(FloatVector.fromArray(F, b, bOff + i));
            FloatVector d2 =
                    FloatVector.fromArray(F, a, aOff + i + step).sub(FloatVector.fromArray(F, b, bOff + i + step));
            acc1 = d1.fma(d1, acc1);
            acc2 = d2.fma(d2, acc2);
        }
        int bound = F.loopBound(len);
        for (; i < bound; i += step) {
            FloatVector d = FloatVector.fromArray(F, a, aOff + i).sub(FloatVector.fromArray(F, b, bOff + i));
            acc1 = d.fma(d, acc1);
        }
        float s = acc1.add(acc2).reduceLanes(VectorOperators.ADD);
        // scalar tail
        for (; i < len; i++) {
            float d = a[aOff + i] - b[bOff + i];
            s = Math.fma(d, d, s);
        }
        return s;
    }

    @Override
    public float sumAbsDiff(float[] a, int aOff, float[] b, int bOff, int len) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F);
        int bound = F.loopBound(len);
        for (; i < bound; i += F.length()) {
            acc = acc.add(FloatVector.fromArray(F, a, aOff + i)
                    .sub(FloatVector.fromArray(F, b, bOff + i))
                    .abs());
        }
        float s = acc.reduceLanes(VectorOperators.ADD);
        // scalar tail
        for (; i < len; i++) {
            s += Math.abs(a[aOff + i] - b[bOff + i]);
        }
        return s;
    }

    @Override
    public float maxAbsDiff(float[] a, int aOff, float[] b, int bOff, int len) {
        int i = 0;
        FloatVector acc = FloatVector.zero(F);
        int bound = F.loopBound(len);
        for (; i < bound; i += F.length()) {
            acc = acc.max(FloatVector.fromArray(F, a, aOff + i)
                    .sub(FloatVector.fromArray(F, b, bOff + i))
                    .abs());
        }
        float m = acc.reduceLanes(VectorOperators.MAX);
        // scalar tail
        for (; i < len; i++) {
            m = Math.max(m, Math.abs(a[aOff + i] - b[bOff + i]));
        }
        return m;
    }
}
