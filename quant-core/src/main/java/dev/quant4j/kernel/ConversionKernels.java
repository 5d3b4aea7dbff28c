package dev.quant4j.kernel;

import java.lang.foreign.MemorySegment;

/**
 * Widening of stored 16-bit floats to float32, read straight from memory (a mapped file, a direct buffer, or a byte
 * array as a segment), as the readers of checkpoints need it. Implemented by {@link ScalarConversionKernels} (the
 * reference) and {@code VectorConversionKernels}; both give the same bits for every input, NaN payloads included.
 */
public interface ConversionKernels {

    /**
     * {@code dst[dstOff + i]} = the BF16 value whose little-endian 16 bits are at byte {@code offset + 2i} of {@code
     * src}, for {@code i < n}: the float32 whose upper half is those bits and whose lower half is zero (exact: every
     * BF16 value is a float32).
     */
    void bf16ToFloat(MemorySegment src, long offset, int n, float[] dst, int dstOff);
}
