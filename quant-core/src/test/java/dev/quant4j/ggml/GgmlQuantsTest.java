package dev.quant4j.ggml;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * quant4j's ggml block types against ggml's own output: {@code TYPE.bin} is {@code ggml_quantize_chunk} of {@code
 * input.f32} (16 rows of 256, with an all-zero row, a constant row, huge and tiny magnitudes, one outlier, a negative
 * maximum, one-signed blocks and ties), {@code TYPE.dequant.f32} ggml's {@code to_float} of it.
 */
class GgmlQuantsTest {

    static final float[] INPUT = GgmlFixtures.floats("input.f32");

    @ParameterizedTest
    @EnumSource(
            value = GgmlType.class,
            names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"})
    void quantizesToGgmlsBytes(GgmlType type) {
        byte[] expected = GgmlFixtures.bytes(type.ggmlName() + ".bin");
        byte[] actual = GgmlQuants.quantize(type, INPUT, GgmlFixtures.ROWS, GgmlFixtures.COLS);
        assertThat(actual).hasSize(expected.length);
        int rowSize = (int) type.rowSize(GgmlFixtures.COLS);
        for (int r = 0; r < GgmlFixtures.ROWS; r++) {
            assertThat(Arrays.copyOfRange(actual, r * rowSize, (r + 1) * rowSize))
                    .as("%s row %d", type, r)
                    .isEqualTo(Arrays.copyOfRange(expected, r * rowSize, (r + 1) * rowSize));
        }
    }

    @ParameterizedTest
    @EnumSource(
            value = GgmlType.class,
            names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K", "F16", "BF16"})
    void dequantizesToGgmlsFloats(GgmlType type) {
        float[] expected = GgmlFixtures.floats(type.ggmlName() + ".dequant.f32");
        float[] actual = GgmlQuants.dequantize(
                type, GgmlFixtures.bytes(type.ggmlName() + ".bin"), GgmlFixtures.ROWS, GgmlFixtures.COLS);
        for (int i = 0; i < expected.length; i++) {
            if (Float.floatToIntBits(actual[i]) != Float.floatToIntBits(expected[i])) {
                throw new AssertionError(type + " value " + i + " (row " + i / GgmlFixtures.COLS + "): " + actual[i]
                        + " != ggml's " + expected[i]);
            }
        }
    }

    @Test
    void f32IsStoredAsItIs() {
        byte[] b = GgmlQuants.quantize(GgmlType.F32, INPUT, GgmlFixtures.ROWS, GgmlFixtures.COLS);
        assertThat(GgmlQuants.dequantize(GgmlType.F32, b, GgmlFixtures.ROWS, GgmlFixtures.COLS))
                .containsExactly(INPUT);
    }

    /** Dequantizing then quantizing again reproduces the codes: each block type's grid is a fixed point. */
    @ParameterizedTest
    @ValueSource(longs = {1, 2, 3})
    void requantizingQ8AndQ4GivesTheSameBytes(long seed) {
        Random rnd = new Random(seed);
        float[] x = new float[4 * 256];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) rnd.nextGaussian() * (i % 7 + 1);
        }
        for (GgmlType t : new GgmlType[] {GgmlType.Q8_0, GgmlType.Q4_0}) {
            byte[] q = GgmlQuants.quantize(t, x, 4, 256);
            byte[] again = GgmlQuants.quantize(t, GgmlQuants.dequantize(t, q, 4, 256), 4, 256);
            assertThat(again).as("%s seed %d", t, seed).isEqualTo(q);
        }
    }

    @Test
    void fp16RoundsLikeGgml() {
        // ties to even, overflow to infinity, subnormals, NaN to 0x7E00
        assertThat(GgmlFloats.fp32ToFp16(1.0f + 0x1p-11f)).isEqualTo((short) 0x3C00);
        assertThat(GgmlFloats.fp32ToFp16(1.0f + 3 * 0x1p-11f)).isEqualTo((short) 0x3C02);
        assertThat(GgmlFloats.fp32ToFp16(65520f)).isEqualTo((short) 0x7C00);
        assertThat(GgmlFloats.fp32ToFp16(0x1p-24f)).isEqualTo((short) 0x0001);
        assertThat(GgmlFloats.fp32ToFp16(-0.0f)).isEqualTo((short) 0x8000);
        assertThat(GgmlFloats.fp32ToFp16(Float.intBitsToFloat(0xFFC12345))).isEqualTo((short) 0xFE00);
        assertThat(GgmlFloats.fp32ToBf16(Float.intBitsToFloat(0x3F808000))).isEqualTo((short) 0x3F80);
        assertThat(GgmlFloats.fp32ToBf16(Float.intBitsToFloat(0x3F818000))).isEqualTo((short) 0x3F82);
    }

    @Test
    void rejectsWhatItCannotQuantize() {
        assertThatThrownBy(() -> GgmlQuants.quantize(GgmlType.Q4_K, new float[128], 1, 128))
                .hasMessageContaining("128")
                .hasMessageContaining("q4_K block size 256");
        assertThatThrownBy(() -> GgmlQuants.quantize(GgmlType.IQ2_XS, new float[256], 1, 256))
                .hasMessageContaining("iq2_xs")
                .hasMessageContaining("q4_0|q4_1");
        float[] nan = new float[32];
        nan[3] = Float.NaN;
        assertThatThrownBy(() -> GgmlQuants.quantize(GgmlType.Q8_0, nan, 1, 32))
                .hasMessageContaining("row 0, column 3");
        assertThat(GgmlType.byName("Q4_k")).isEqualTo(GgmlType.Q4_K);
        assertThat(GgmlType.byId(4)).isNull();
        assertThat(GgmlType.byId(12)).isEqualTo(GgmlType.Q4_K);
    }
}
