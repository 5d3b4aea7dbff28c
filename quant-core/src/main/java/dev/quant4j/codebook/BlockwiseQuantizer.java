package dev.quant4j.codebook;

import dev.quant4j.quant.CodebookScheme;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;

/**
 * bitsandbytes' {@code quantize_4bit} (blockwise absmax onto NF4 or FP4), scalar reference.
 *
 * <p>The matrix is flattened in row-major order and cut into blocks; for each block, as the CUDA kernel {@code
 * kQuantizeBlockwise} does: {@code absmax = max |v|}, {@code inv = 1 / absmax} in float32, and each value gets
 * {@code codebook.encode(v * inv)}. An all-zero block has {@code inv = +Inf} and {@code 0 * Inf = NaN}, which the
 * encoders map to code 0: it dequantizes to (signed) zeros, as in bitsandbytes.
 */
public final class BlockwiseQuantizer {

    private final CodebookScheme scheme;

    public BlockwiseQuantizer(CodebookScheme scheme) {
        this.scheme = Objects.requireNonNull(scheme, "scheme");
    }

    public CodebookScheme scheme() {
        return scheme;
    }

    /**
     * Quantizes {@code w}.
     *
     * @throws IllegalArgumentException if {@code w} holds NaN or an infinity (naming the index)
     */
    public CodebookTensor quantize(FloatMatrix w) {
        Objects.requireNonNull(w, "w");
        w.requireFinite();
        Codebook book = scheme.codebook();
        long n = w.size();
        int bs = scheme.blockSize();
        float[] absmax = new float[Math.toIntExact(scheme.blocks(n))];
        byte[] packed = new byte[Math.toIntExact((n + 1) / 2)];
        float[] x = w.toArray();
        for (int b = 0; b < absmax.length; b++) {
            int start = b * bs;
            int end = (int) Math.min(n, start + (long) bs);
            float m = 0f;
            for (int i = start; i < end; i++) {
                m = Math.max(m, Math.abs(x[i]));
            }
            absmax[b] = m;
            float inv = 1.0f / m;
            for (int i = start; i < end; i++) {
                int code = book.encode(x[i] * inv);
                packed[i >>> 1] |= (byte) ((i & 1) == 0 ? code << 4 : code);
            }
            if (end == n && (n & 1) == 1) {
                // bitsandbytes' kernel loads 0 past the end of the tensor: the pad nibble is the code of 0 * inv
                packed[(int) (n >>> 1)] |= (byte) book.encode(0f * inv);
            }
        }
        return new CodebookTensor(w.name(), scheme, w.rows(), w.cols(), packed, absmax);
    }
}
