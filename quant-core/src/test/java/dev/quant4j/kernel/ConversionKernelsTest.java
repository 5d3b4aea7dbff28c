package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The conversion kernels of this JVM (run once per vector width by the surefire executions) against the scalar
 * reference and against the definition (a BF16 value is the upper half of its float32), bit for bit: every odd length,
 * unaligned offsets, native and heap segments, and every class of value including NaN payloads, infinities,
 * subnormals and both zeros.
 */
class ConversionKernelsTest {

    private static final ValueLayout.OfShort LE_SHORT =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** {@code n} BF16 words from seed: random bits, with the special values placed among them. */
    private static short[] words(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        short[] w = new short[n];
        short[] special = {
            0x0000,
            (short) 0x8000,
            0x7F80,
            (short) 0xFF80,
            0x7FC0,
            0x7F81,
            (short) 0xFFFF,
            0x0001,
            (short) 0x8001,
            0x007F,
            0x3F80,
            (short) 0xBF80,
            0x7F7F
        };
        for (int i = 0; i < n; i++) {
            w[i] = i % 5 == 0 ? special[(i / 5) % special.length] : (short) r.nextInt(1 << 16);
        }
        return w;
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 4099})
    void bf16ToFloatEqualsTheReferenceAndTheDefinitionBitForBit(int n) {
        short[] w = words(n, 17L + n);
        for (int skew : new int[] {0, 1, 6}) {
            // the words start at an odd byte for skew 1: unaligned reads
            byte[] bytes = new byte[skew + 2 * n];
            MemorySegment heap = MemorySegment.ofArray(bytes);
            for (int i = 0; i < n; i++) {
                heap.set(LE_SHORT, skew + 2L * i, w[i]);
            }
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment nativeSeg = arena.allocate(bytes.length + 1);
                MemorySegment.copy(heap, 0, nativeSeg, 0, bytes.length);
                for (MemorySegment seg : new MemorySegment[] {heap, nativeSeg}) {
                    float[] got = new float[n + 3];
                    float[] ref = new float[n + 3];
                    got[0] = 42f;
                    got[n + 2] = 43f;
                    Kernels.get().bf16ToFloat(seg, skew, n, got, 2);
                    Kernels.scalar().bf16ToFloat(seg, skew, n, ref, 2);
                    for (int i = 0; i < n; i++) {
                        int want = (w[i] & 0xFFFF) << 16;
                        assertThat(Float.floatToRawIntBits(got[2 + i]))
                                .as("%s n=%d skew=%d i=%d", Kernels.get().name(), n, skew, i)
                                .isEqualTo(want);
                        assertThat(Float.floatToRawIntBits(ref[2 + i])).isEqualTo(want);
                    }
                    assertThat(got[0]).as("before the range").isEqualTo(42f);
                    assertThat(got[1]).as("before the range").isZero();
                    assertThat(got[n + 2]).as("after the range").isEqualTo(43f);
                }
            }
        }
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {5, 64, 257})
    void aSegmentOverAnotherArrayTypeTakesTheScalarLoopWithTheSameBits(int n) {
        // the Vector API reads heap segments over byte[] only; a short[] segment must still convert
        short[] w = words(n, 5L * n);
        if (!ByteOrder.nativeOrder().equals(ByteOrder.LITTLE_ENDIAN)) {
            return; // the segment's shorts are in native order; the kernel reads little-endian
        }
        float[] got = new float[n];
        Kernels.get().bf16ToFloat(MemorySegment.ofArray(w), 0, n, got, 0);
        for (int i = 0; i < n; i++) {
            assertThat(Float.floatToRawIntBits(got[i])).isEqualTo((w[i] & 0xFFFF) << 16);
        }
    }

    /** Floats from seed: random bits, with ties, roundings past the largest BF16 and every special class among them. */
    private static float[] floats(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int[] special = {
            0x00000000, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0xFF812345, 0x7FBFFFFF,
            0x00000001, 0x807FFFFF, 0x3F808000, 0x3F818000, 0x3F808001, 0xBF80FFFF, 0x7F7FFFFF, 0x7F7F8000,
            0xFF7F7FFF, 0x3F7FFFFF
        };
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = Float.intBitsToFloat(i % 3 == 0 ? special[(i / 3) % special.length] : r.nextInt());
        }
        return x;
    }

    @ParameterizedTest(name = "n={0}")
    @ValueSource(ints = {0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 33, 64, 65, 129, 1000, 4099})
    void floatToBf16EqualsTheReferenceBitForBit(int n) {
        float[] x = floats(n + 2, 31L + n);
        for (int skew : new int[] {0, 1, 6}) {
            byte[] got = new byte[skew + 2 * n + 2];
            byte[] ref = new byte[got.length];
            got[got.length - 1] = 9;
            ref[ref.length - 1] = 9;
            Kernels.get().floatToBf16(x, 1, n, MemorySegment.ofArray(got), skew);
            Kernels.scalar().floatToBf16(x, 1, n, MemorySegment.ofArray(ref), skew);
            assertThat(got).as("%s n=%d skew=%d", Kernels.get().name(), n, skew).isEqualTo(ref);
            MemorySegment seg = MemorySegment.ofArray(got);
            for (int i = 0; i < n; i++) {
                assertThat(seg.get(LE_SHORT, skew + 2L * i)).isEqualTo(ConversionKernels.floatToBf16(x[1 + i]));
            }
            assertThat(got[got.length - 1]).as("past the range").isEqualTo((byte) 9);
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment out = arena.allocate(got.length);
                Kernels.get().floatToBf16(x, 1, n, out, skew);
                assertThat(out.asSlice(0, got.length - 1).toArray(ValueLayout.JAVA_BYTE))
                        .isEqualTo(java.util.Arrays.copyOf(ref, ref.length - 1));
            }
        }
    }

    @org.junit.jupiter.api.Test
    void floatToBf16RoundsAsTheDefinitionSays() {
        // ties to even, the quiet bit of a signalling NaN, overflow to infinity, signed zero, subnormals
        assertThat(ConversionKernels.floatToBf16(Float.intBitsToFloat(0x3F808000)))
                .isEqualTo((short) 0x3F80);
        assertThat(ConversionKernels.floatToBf16(Float.intBitsToFloat(0x3F818000)))
                .isEqualTo((short) 0x3F82);
        assertThat(ConversionKernels.floatToBf16(Float.intBitsToFloat(0x3F808001)))
                .isEqualTo((short) 0x3F81);
        assertThat(ConversionKernels.floatToBf16(Float.intBitsToFloat(0x7F800001)))
                .isEqualTo((short) 0x7FC0);
        assertThat(ConversionKernels.floatToBf16(Float.intBitsToFloat(0xFF812345)))
                .isEqualTo((short) 0xFFC1);
        assertThat(ConversionKernels.floatToBf16(Float.MAX_VALUE)).isEqualTo((short) 0x7F80);
        assertThat(ConversionKernels.floatToBf16(-0f)).isEqualTo((short) 0x8000);
        assertThat(ConversionKernels.floatToBf16(Float.MIN_VALUE)).isEqualTo((short) 0x0000);
        // a subnormal tie above an odd BF16 goes up to the even one
        assertThat(ConversionKernels.floatToBf16(Float.intBitsToFloat(0x00018000)))
                .isEqualTo((short) 0x0002);
    }
}
