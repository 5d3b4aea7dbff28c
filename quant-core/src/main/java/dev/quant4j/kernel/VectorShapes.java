package dev.quant4j.kernel;

import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * The species, lane constants and lane reductions every {@code Vector*Kernels} class shares, fixed once per JVM by
 * {@link VectorFactory#BITS}. Loaded only when the Vector API module is present.
 *
 * <p>Species are {@code static final}: the JIT only turns Vector API calls into SIMD instructions when the species is a
 * compile-time constant (an instance field is not). Constants of any class are, so the kernels read them from here.
 *
 * <p>Two rules keep C2 from boxing vectors on the heap (a kernel 2-5x slower with the same results; {@code
 * KernelAllocationTest} watches for it). No helper of ours takes or returns a vector: one the JIT does not inline
 * boxes every vector that crosses it (the exception is {@link #sumLanes}, small, called once per call after a loop).
 * And a vector carried around a loop is not the receiver of a Vector API call inside the loop (nor after it where that
 * costs nothing): {@code x = fresh.add(x)}, not {@code x = x.add(fresh)}. When C2 parses the loop it types the loop
 * variable as {@code FloatVector}, not the species' final class, so a call on it is virtual and inlines only through
 * its type profile, which is absent when tiered compilation compiled the Vector API method without profiling (at tier
 * 2, when the compile queue is long); {@code -XX:+PrintInlining} then reports "FloatVector::lanewise failed to inline:
 * virtual call" and every vector of the loop is boxed.
 */
final class VectorShapes {

    private VectorShapes() {}

    /** {@code 1.5 * 2^23}: adding and subtracting it rounds any |v| <= 2^22 to an integer, half to even. */
    static final float ROUND_MAGIC = 12582912f;
    /** Float bits of {@link #ROUND_MAGIC}, 0x4B400000: the bits of {@code ROUND_MAGIC + k} are {@code MAGIC_BITS + k}. */
    static final int MAGIC_BITS = Float.floatToRawIntBits(ROUND_MAGIC);

    static final boolean LITTLE_ENDIAN = ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN;

    /** Float lanes: 4, 8 or 16. */
    static final VectorSpecies<Float> F = VectorSpecies.of(float.class, VectorShape.forBitSize(VectorFactory.BITS));

    static final VectorSpecies<Integer> I = VectorSpecies.of(int.class, F.vectorShape());
    /** Byte species with {@code max(8, F.length())} lanes: holds the codes of {@code BYTE_PARTS} float vectors. */
    static final VectorSpecies<Byte> B =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(8, F.length()) * 8));

    static final int BYTE_PARTS = B.length() / F.length();
    /** 4-bit packing: {@code PACK_BYTES} codes (as shorts in {@code PACK_SHORTS}) become {@code HALF_BYTES} bytes. */
    static final VectorSpecies<Byte> PACK_BYTES = VectorSpecies.of(byte.class, F.vectorShape());

    static final VectorSpecies<Short> PACK_SHORTS = VectorSpecies.of(short.class, F.vectorShape());
    static final VectorSpecies<Byte> HALF_BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(F.vectorBitSize() / 2));
    /** Packed bytes one step of the float nibble products reads: one per float lane (their nibbles make 2L codes). */
    static final VectorSpecies<Byte> NIBBLE_BYTES =
            VectorSpecies.of(byte.class, VectorShape.forBitSize(Math.max(64, F.length() * 8)));

    /** Eight packed bytes (sixteen 4-bit codes), and their codes one per byte as shorts. */
    static final VectorSpecies<Byte> BYTES_64 = ByteVector.SPECIES_64;

    static final VectorSpecies<Short> SHORTS_128 = ShortVector.SPECIES_128;
    /** Sixteen packed bytes: one step of the 2-, 3- and 4-bit decoders. */
    static final VectorSpecies<Byte> BYTES_128 = ByteVector.SPECIES_128;

    /** Every lane: {@code zero.blend(v, ALL_LANES)} is {@code v} as a fresh vector (see the class comment). */
    static final VectorMask<Float> ALL_LANES = F.maskAll(true);
    /** Lanes of the upper half and of the lower half, for reductions that take a minimum and a maximum at once. */
    static final VectorMask<Float> UPPER = VectorMask.fromLong(F, ((1L << F.length()) - 1) & -(1L << (F.length() / 2)));

    static final VectorMask<Float> LOWER = UPPER.not();

    /** {@code i -> i ^ d} for the unrolled lane trees; {@code d} capped at half the lanes (unused beyond). */
    static final VectorShuffle<Float> XOR_HALF = xor(F.length() / 2);

    static final VectorShuffle<Float> XOR_8 = xor(Math.min(8, F.length() / 2));
    static final VectorShuffle<Float> XOR_4 = xor(Math.min(4, F.length() / 2));
    static final VectorShuffle<Float> XOR_2 = xor(2);
    static final VectorShuffle<Float> XOR_1 = xor(1);

    /** The same permutations for int lanes (absmax in the integer domain). */
    static final VectorShuffle<Integer> XOR_8_INT = XOR_8.cast(I);

    static final VectorShuffle<Integer> XOR_4_INT = XOR_4.cast(I);
    static final VectorShuffle<Integer> XOR_2_INT = XOR_2.cast(I);
    static final VectorShuffle<Integer> XOR_1_INT = XOR_1.cast(I);

    /** Lanes {@code 0, 2, 4, ...} of two int vectors side by side: the low ints of their long lanes. */
    static final IntVector EVEN_LANES = IntVector.zero(I).addIndex(2);

    /**
     * Per level of a transposed reduction ({@link #sumLanesOfEach}, the linear kernels' group maxima): the lanes that
     * meet, as two index vectors for {@code selectFrom}.
     */
    static final int[] HALVES = halvingIndexes();

    private static VectorShuffle<Float> xor(int d) {
        return VectorShuffle.fromOp(F, lane -> lane ^ d);
    }

    /**
     * Lane indexes for the transposed reductions: before level {@code k} a vector holds {@code 2^k} groups of {@code s
     * = L / 2^k} lanes; its result takes the first halves of every group of the pair (left) and the second halves
     * (right).
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
     * The sum of the lanes by a fixed tree of exact lane permutations and IEEE additions ({@code i ^ L/2}, then {@code
     * i ^ L/4}, ... {@code i ^ 1}). Unlike {@code reduceLanes(ADD)}, whose order the JIT's intrinsic and the
     * interpreter's Java fallback choose differently, this gives the same float in every compilation tier, so results
     * do not depend on which thread ran warm code.
     */
    static float sumLanes(FloatVector sum) {
        // the argument is usually a loop's accumulator: copied into a fresh vector first, so that no call has the
        // loop variable as its receiver (class comment)
        FloatVector v = FloatVector.zero(F).blend(sum, ALL_LANES);
        // unrolled over constant shuffles (F.length() folds): small enough that C2 inlines it even into the
        // eight-row kernel, where a loop over an array of shuffles made it box vectors on the heap
        if (F.length() >= 16) {
            v = v.add(v.rearrange(XOR_8));
        }
        if (F.length() >= 8) {
            v = v.add(v.rearrange(XOR_4));
        }
        v = v.add(v.rearrange(XOR_2));
        return v.add(v.rearrange(XOR_1)).lane(0);
    }

    /**
     * {@link #sumLanes} of each of {@code count <= L} vectors stored one after the other at {@code lanes[0 ...]}, into
     * {@code out[outOff ... outOff + count)}, for all of them at once: a transposed reduction, {@code L - 1}
     * combinations of two {@code selectFrom} and one add instead of {@code count} trees of {@code L - 1} dependent
     * scalar additions. Each lane still adds {@code a[i] + a[i + d]} for {@code d = L/2 ... 1}, the tree of {@link
     * #sumLanes}, so each sum is the same float. Vectors past {@code count} are zeroed first; overwrites {@code
     * lanes}. Takes and returns no vector (a call the JIT does not inline boxes nothing).
     */
    static void sumLanesOfEach(float[] lanes, int count, float[] out, int outOff) {
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
}
