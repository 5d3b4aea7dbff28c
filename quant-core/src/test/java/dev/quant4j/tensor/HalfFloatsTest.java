package dev.quant4j.tensor;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** float32 to BF16 against the definition: the nearer of the two neighbouring BF16 values, ties to the even one. */
class HalfFloatsTest {

    /**
     * The definition, on magnitudes in double arithmetic (exact here): the BF16 value below (truncation) or the next
     * one up, whichever is nearer, ties to the even one. Past the largest BF16 the next one up is infinity, which
     * IEEE rounding treats as 2^128.
     */
    private static short nearestBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        int down = bits & 0xFFFF0000;
        int up = down + 0x10000;
        double mag = Math.abs((double) f);
        double below = Math.abs((double) Float.intBitsToFloat(down));
        float upValue = Float.intBitsToFloat(up);
        double above = Float.isInfinite(upValue) ? Math.scalb(1.0, 128) : Math.abs((double) upValue);
        double dDown = mag - below;
        double dUp = above - mag;
        if (dDown < dUp || (dDown == dUp && ((down >>> 16) & 1) == 0)) {
            return (short) (down >>> 16);
        }
        return (short) (up >>> 16);
    }

    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void floatToBf16RoundsToNearestEven(long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        for (int i = 0; i < 1_000_000; i++) {
            // random bit patterns cover every exponent; every fourth has a tie (low half exactly 0x8000)
            int bits = rnd.nextInt();
            if ((i & 3) == 0) {
                bits = (bits & 0xFFFF0000) | 0x8000;
            }
            float f = Float.intBitsToFloat(bits);
            if (Float.isNaN(f)) {
                short h = HalfFloats.floatToBf16(f);
                assertThat(Float.isNaN(HalfFloats.bf16ToFloat(h))).isTrue();
                assertThat(h & 0x8000).isEqualTo((bits >>> 16) & 0x8000);
                continue;
            }
            assertThat(HalfFloats.floatToBf16(f)).as("0x%08x", bits).isEqualTo(nearestBf16(f));
        }
    }

    @ParameterizedTest
    @ValueSource(floats = {0f, -0f, 1f, -2.5f, Float.MIN_VALUE, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY})
    void exactValuesAndInfinitiesRoundTrip(float f) {
        assertThat(Float.floatToRawIntBits(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(f))))
                .isEqualTo(Float.floatToRawIntBits(f) & 0xFFFF0000); // MIN_VALUE rounds to +0
    }
}
