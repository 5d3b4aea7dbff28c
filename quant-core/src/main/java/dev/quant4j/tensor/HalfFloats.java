package dev.quant4j.tensor;

import dev.quant4j.kernel.ConversionKernels;

/**
 * Conversions between float32 and the bit patterns of IEEE half precision (FP16) and bfloat16 (BF16). To float32 both
 * are exact; from float32 both round to nearest even, as PyTorch's {@code tensor.to(torch.bfloat16)} and {@code
 * .half()} do.
 */
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

    /**
     * float32 to BF16 bits (the upper half of the float32), rounding to nearest even; NaN stays a quiet NaN of the same
     * sign, infinities stay infinite, and values that round past the largest BF16 become infinite.
     */
    public static short floatToBf16(float value) {
        return ConversionKernels.floatToBf16(value); // one definition, shared with the array kernels
    }

    /** BF16 bits (the upper half of a float32) to float32. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }
}
