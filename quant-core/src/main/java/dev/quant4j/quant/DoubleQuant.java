package dev.quant4j.quant;

import java.util.Objects;

/**
 * QLoRA's double quantization (Dettmers et al. 2023, section 3) of the block absmax values, as bitsandbytes'
 * {@code quantize_4bit(..., compress_statistics=True)}: {@code offset = mean(absmax)}; {@code absmax - offset} is
 * quantized blockwise with blocks of 256 onto the signed {@link DynamicMap} ({@code quantize_blockwise}: a float32
 * {@code absmax2} per block, codes {@code argmin |v * (1 / absmax2) - map|} after clamping to [-1, 1]). Restored:
 * {@code map[code] * absmax2 + offset}, in float32.
 *
 * <p>The mean is taken in double and rounded to float32; torch's float32 reduction may differ from it in the last bit.
 *
 * @param codes one 8-bit code per block absmax
 * @param absmax2 one float32 absmax per 256 codes
 * @param offset the mean that was subtracted
 */
public record DoubleQuant(byte[] codes, float[] absmax2, float offset) {

    /** Blocks of absmax values per second-level absmax. */
    public static final int BLOCK = 256;

    public DoubleQuant {
        Objects.requireNonNull(codes, "codes");
        Objects.requireNonNull(absmax2, "absmax2");
        if (absmax2.length != (codes.length + BLOCK - 1) / BLOCK) {
            throw new IllegalArgumentException("double quantization: " + absmax2.length + " second-level absmax for "
                    + codes.length + " codes, expected " + (codes.length + BLOCK - 1) / BLOCK);
        }
        for (int b = 0; b < absmax2.length; b++) {
            if (!(absmax2[b] >= 0f) || !Float.isFinite(absmax2[b])) {
                throw new IllegalArgumentException(
                        "double quantization: absmax2 " + b + " is " + absmax2[b] + ", must be >= 0");
            }
        }
        if (!Float.isFinite(offset)) {
            throw new IllegalArgumentException("double quantization: offset is " + offset);
        }
        codes = codes.clone();
        absmax2 = absmax2.clone();
    }

    /** Number of second-level scales ({@code absmax2}) for {@code blocks} absmax values: one per {@link #BLOCK}. */
    public static long groups(long blocks) {
        return (blocks + BLOCK - 1) / BLOCK;
    }

    /**
     * Quantizes block absmax values.
     *
     * @throws IllegalArgumentException for an empty array or a value that is negative, NaN or infinite (naming it)
     */
    public static DoubleQuant of(float[] absmax) {
        if (absmax.length == 0) {
            throw new IllegalArgumentException("double quantization: no absmax values");
        }
        double sum = 0;
        for (int i = 0; i < absmax.length; i++) {
            if (!(absmax[i] >= 0f) || !Float.isFinite(absmax[i])) {
                throw new IllegalArgumentException(
                        "double quantization: absmax " + i + " is " + absmax[i] + ", must be finite and >= 0");
            }
            sum += absmax[i];
        }
        float offset = (float) (sum / absmax.length);
        float[] map = DynamicMap.signed();
        byte[] codes = new byte[absmax.length];
        float[] absmax2 = new float[(absmax.length + BLOCK - 1) / BLOCK];
        for (int b = 0; b < absmax2.length; b++) {
            int start = b * BLOCK;
            int end = Math.min(absmax.length, start + BLOCK);
            float m = 0f;
            for (int i = start; i < end; i++) {
                m = Math.max(m, Math.abs(absmax[i] - offset));
            }
            absmax2[b] = m;
            float inv = 1 / m;
            for (int i = start; i < end; i++) {
                float scaled = Math.min(Math.max((absmax[i] - offset) * inv, -1f), 1f);
                codes[i] = (byte) DynamicMap.nearest(map, scaled);
            }
        }
        return new DoubleQuant(codes, absmax2, offset);
    }

    /** The block absmax values this stands for: {@code map[code] * absmax2 + offset}. */
    public float[] restore() {
        float[] map = DynamicMap.signed();
        float[] out = new float[codes.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = map[codes[i] & 0xFF] * absmax2[i / BLOCK] + offset;
        }
        return out;
    }

    @Override
    public byte[] codes() {
        return codes.clone();
    }

    @Override
    public float[] absmax2() {
        return absmax2.clone();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DoubleQuant d
                && java.util.Arrays.equals(codes, d.codes)
                && java.util.Arrays.equals(absmax2, d.absmax2)
                && Float.compare(offset, d.offset) == 0;
    }

    @Override
    public int hashCode() {
        return java.util.Arrays.hashCode(codes) * 31 + Float.hashCode(offset);
    }

    /** Bytes stored: codes, second-level absmax, offset. */
    public long storageBytes() {
        return codes.length + 4L * absmax2.length + 4;
    }
}
