package dev.quant4j.tensor;

/** Conversions of IEEE half precision (FP16) and bfloat16 (BF16) bit patterns to float32. Both are exact. */
public final class HalfFloats {

    private HalfFloats() {}

    /** FP16 bits (IEEE 754 binary16) to float32; NaN and infinities carry over. */
    public static float fp16ToFloat(short bits) {
        return Float.float16ToFloat(bits);
    }

    /** float32 to FP16 bits, rounding to nearest even. */
    public static short floatToFp16(float value) {
        return Float.floatToFloat16(value);
    }

    /** BF16 bits (the upper half of a float32) to float32. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }
}
