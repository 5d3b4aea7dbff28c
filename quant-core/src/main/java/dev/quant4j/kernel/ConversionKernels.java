package dev.quant4j.kernel;

import java.lang.foreign.MemorySegment;

/**
 * Conversions between float32 and the 16-bit BF16 format, straight between float arrays and memory (a mapped file, a
 * direct or heap buffer, a byte array as a segment), as the readers and writers of checkpoints need them. Implemented
 * by {@link ScalarConversionKernels} (the reference) and {@code VectorConversionKernels}; both give the same bits for
 * every input, NaN payloads included.
 */
public interface ConversionKernels {

    /**
     * {@code dst[dstOff + i]} = the BF16 value whose little-endian 16 bits are at byte {@code offset + 2i} of {@code
     * src}, for {@code i < n}: the float32 whose upper half is those bits and whose lower half is zero (exact: every
     * BF16 value is a float32).
     */
    void bf16ToFloat(MemorySegment src, long offset, int n, float[] dst, int dstOff);

    /**
     * Writes {@code src[srcOff + i]}, {@code i < n}, as little-endian BF16 at byte {@code offset + 2i} of {@code dst}:
     * {@link #floatToBf16(float)} (round to nearest even; a NaN stays a quiet NaN of its sign and
     * upper payload; values that round past the largest BF16 become infinite).
     */
    void floatToBf16(float[] src, int srcOff, int n, MemorySegment dst, long offset);

    /**
     * float32 to BF16 bits (the upper half of the float32), rounding to nearest even; NaN stays a quiet NaN of the same
     * sign, infinities stay infinite, and values that round past the largest BF16 become infinite.
     */
    static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounded = bits + 0x7FFF + ((bits >>> 16) & 1);
        return (short) (rounded >>> 16);
    }
}
