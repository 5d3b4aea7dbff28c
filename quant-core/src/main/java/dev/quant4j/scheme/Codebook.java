package dev.quant4j.scheme;

import java.util.Arrays;

/**
 * The 4-bit codebooks of bitsandbytes, value for value and with its rounding rule, so that codes match
 * bitsandbytes' {@code quantize_4bit} on the same normalized inputs.
 *
 * <p>Sources (bitsandbytes-foundation/bitsandbytes): the tables of {@code functional.py}, {@code get_4bit_type("nf4")}
 * and {@code get_4bit_type("fp4")}; the encoders {@code dQuantizeNF4} and {@code dQuantizeFP4} of {@code
 * csrc/kernels.cu}, binary decision trees over the midpoints between neighbouring values, written as float literals
 * and compared with {@code x > t}: a value exactly on a midpoint takes the lower code.
 *
 * <p>Inputs are block-normalized values {@code x = v * (1 / absmax)} in {@code [-1, 1]}. NaN encodes to code 0, as
 * the comparisons of the reference's trees all fail for NaN.
 */
public enum Codebook {
    /**
     * NormalFloat4 (QLoRA, Dettmers et al. 2023, section 3): 16 values, asymmetric (8 positive, 7 negative, and an
     * exact zero), from quantiles of N(0, 1) normalized to [-1, 1]. Code {@code i} is the {@code i}-th value in
     * ascending order.
     */
    NF4(
            new float[] {
                -1.0f,
                -0.6961928009986877f,
                -0.5250730514526367f,
                -0.39491748809814453f,
                -0.28444138169288635f,
                -0.18477343022823334f,
                -0.09105003625154495f,
                0.0f,
                0.07958029955625534f,
                0.16093020141124725f,
                0.24611230194568634f,
                0.33791524171829224f,
                0.44070982933044434f,
                0.5626170039176941f,
                0.7229568362236023f,
                1.0f
            },
            // dQuantizeNF4's midpoints: code = number of thresholds t with x > t
            new float[] {
                -0.8480964004993439f,
                -0.6106329262256622f,
                -0.4599952697753906f,
                -0.33967943489551544f,
                -0.23460740596055984f,
                -0.13791173323988914f,
                -0.045525018125772476f,
                0.03979014977812767f,
                0.1202552504837513f,
                0.2035212516784668f,
                0.2920137718319893f,
                0.3893125355243683f,
                0.5016634166240692f,
                0.6427869200706482f,
                0.8614784181118011f
            }),
    /**
     * bitsandbytes' FP4 (1 sign bit, 2 exponent bits, 1 mantissa bit, bias 3): code bit 3 is the sign, the low three
     * bits select the magnitude 0, 0.0625, 8, 12, 4, 6, 2, 3, all divided by 12.
     */
    FP4(
            new float[] {
                0.0f,
                5.208333333e-03f,
                0.66666667f,
                1.0f,
                0.33333333f,
                0.5f,
                0.16666667f,
                0.25f,
                -0.0f,
                -5.208333333e-03f,
                -0.66666667f,
                -1.0f,
                -0.33333333f,
                -0.5f,
                -0.16666667f,
                -0.25f
            },
            // dQuantizeFP4's pivots on |x|, ascending; the magnitude codes in that order are 0, 1, 6, 7, 4, 5, 2, 3
            new float[] {0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f});

    /** FP4 magnitude code for each count of pivots exceeded. */
    private static final int[] FP4_MAGNITUDE_CODE = {0b000, 0b001, 0b110, 0b111, 0b100, 0b101, 0b010, 0b011};

    private final float[] values;
    private final float[] thresholds;

    Codebook(float[] values, float[] thresholds) {
        this.values = values;
        this.thresholds = thresholds;
    }

    /** The 16 values, indexed by code (a copy). */
    public float[] table() {
        return values.clone();
    }

    /** The value code {@code code} (0..15) stands for, before multiplying by the block's absmax. */
    public float value(int code) {
        return values[code & 0xF];
    }

    /**
     * The code of a normalized value, exactly as bitsandbytes' CUDA encoder: the nearest value, ties to the lower
     * code (NF4) or to the smaller magnitude (FP4).
     */
    public int encode(float x) {
        if (this == NF4) {
            int code = 0;
            for (float t : thresholds) {
                if (x > t) {
                    code++;
                }
            }
            return code;
        }
        int sign = x < 0 ? 0b1000 : 0;
        float a = Math.abs(x);
        int above = 0;
        for (float t : thresholds) {
            if (a > t) {
                above++;
            }
        }
        return sign | FP4_MAGNITUDE_CODE[above];
    }

    /** The decision thresholds (a copy): NF4's 15 midpoints, or FP4's 7 pivots on the magnitude. */
    public float[] thresholds() {
        return Arrays.copyOf(thresholds, thresholds.length);
    }
}
