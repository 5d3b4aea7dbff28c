package dev.quant4j.model;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.linalg.Parallel;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.tensor.FloatMatrix;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;

/**
 * A linear layer of a model, {@code Y = X W^T + b} for activations {@code X [tokens, in]}: FP32 ({@link #dense}) or
 * quantized ({@link #quantized}, any format {@link QuantizedLinear} takes). The model calls it; quantizing a model
 * replaces its linears.
 */
public interface Linear {

    /** The layer's name in the model, e.g. {@code encoder.layer.0.attention.self.query}. */
    String name();

    int inFeatures();

    int outFeatures();

    /** {@code Y = X W^T + b}: {@code x [tokens, in]} to a new {@code [tokens, out]}. */
    FloatMatrix forward(FloatMatrix x);

    /** An FP32 layer: {@code weight [out, in]} (row {@code o} holds the input weights of output {@code o}). */
    static Linear dense(String name, FloatMatrix weight, float[] bias, ForkJoinPool pool) {
        return new Dense(name, weight, bias, pool);
    }

    /** A quantized layer. */
    static Linear quantized(String name, QuantizedLinear layer) {
        Objects.requireNonNull(layer);
        return new Linear() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public int inFeatures() {
                return layer.inFeatures();
            }

            @Override
            public int outFeatures() {
                return layer.outFeatures();
            }

            @Override
            public FloatMatrix forward(FloatMatrix x) {
                return layer.forward(x);
            }

            @Override
            public String toString() {
                return "Linear[" + name + ", " + layer + "]";
            }
        };
    }

    /** FP32: dot products of weight rows with activation rows, in register tiles ({@link QuantKernels#dotMany}). */
    final class Dense implements Linear {
        private static final int ROW_CHUNK = 64;
        /** From this many tokens on, a blocked matrix product ({@link #gemm}); fewer take row-by-row dot products. */
        static final int GEMM_TOKENS = 16;

        private static final int GEMM_ROWS = 128;
        private static final int K_STRIP = 256;
        /** Tile edge of the transposes around {@link #gemm}, in elements. */
        private static final int TILE = 64;
        /**
         * Tokens per packed panel of {@code X^T} in {@link #gemm}: three vectors of 16 floats, six of 8, twelve of 4
         * (the kernels' widest register tile is three vectors wide).
         */
        private static final int PANEL = 48;

        private final String name;
        private final FloatMatrix weight;
        private final float[] w;
        private final float[] bias;
        private final ForkJoinPool pool;
        private final QuantKernels k = Kernels.get();

        Dense(String name, FloatMatrix weight, float[] bias, ForkJoinPool pool) {
            if (bias != null && bias.length != weight.rows()) {
                throw new IllegalArgumentException("layer '" + name + "': bias has " + bias.length
                        + " values, the weight has " + weight.rows() + " rows");
            }
            this.name = name;
            this.weight = weight;
            this.w = weight.toArray();
            this.bias = bias == null ? null : bias.clone();
            this.pool = Objects.requireNonNull(pool);
        }

        /** The FP32 weight {@code [out, in]}. */
        public FloatMatrix weight() {
            return weight;
        }

        /** A copy of the bias, or null. */
        public float[] bias() {
            return bias == null ? null : bias.clone();
        }

        @Override
        public String name() {
            return name;
        }

        @Override
        public int inFeatures() {
            return weight.cols();
        }

        @Override
        public int outFeatures() {
            return weight.rows();
        }

        @Override
        public FloatMatrix forward(FloatMatrix x) {
            int in = weight.cols();
            int out = weight.rows();
            if (x.cols() != in) {
                throw new IllegalArgumentException("layer '" + name + "' [" + out + ", " + in + "]: activations '"
                        + x.name() + "' have " + x.cols() + " columns, needs " + in);
            }
            float[] xs = x.array();
            int x0 = x.rowOffset(0);
            int tokens = x.rows();
            float[] y = new float[tokens * out];
            if (tokens >= GEMM_TOKENS) {
                gemm(xs, x0, tokens, in, out, y);
                return FloatMatrix.of(name, tokens, out, y, 0);
            }
            Parallel.forEach(pool, (out + ROW_CHUNK - 1) / ROW_CHUNK, ch -> {
                int r0 = ch * ROW_CHUNK;
                int m = Math.min(ROW_CHUNK, out - r0);
                k.dotMany(m, tokens, in, w, r0 * in, in, xs, x0, in, y, r0, 1, out);
            });
            if (bias != null) {
                for (int t = 0; t < tokens; t++) {
                    for (int o = 0; o < out; o++) {
                        y[t * out + o] += bias[o];
                    }
                }
            }
            return FloatMatrix.of(name, tokens, out, y, 0);
        }

        /**
         * {@code y = x W^T + b} for many tokens as a blocked matrix product: {@code Y^T [out, tokens] = W X^T}, the
         * weight rows in chunks of {@link #GEMM_ROWS} across the pool, the input width in strips of {@link #K_STRIP}
         * and the tokens in panels of {@link #PANEL}, so that one strip of one panel of {@code X^T}, packed
         * contiguously (as GotoBLAS packs its operands), stays in cache while a chunk's row tiles pass over it ({@link
         * QuantKernels#gemmAcc}). Each element is one chain of fused multiply-adds over the input in increasing
         * order, then the bias added once, whatever the pool. Every pass is parallel: the panels are packed across
         * the pool, and each chunk writes its block of {@code Y^T} into {@code y}'s columns while the block is still
         * in cache.
         */
        private void gemm(float[] xs, int x0, int tokens, int in, int out, float[] y) {
            // X^T in panels of PANEL tokens, each [in, PANEL] contiguous: a strip of K_STRIP inputs of one panel is
            // one block of consecutive memory that the row tiles of a chunk pass over, where rows of the whole X^T
            // (tokens floats apart) fell into a few sets of the L1 cache
            int panels = (tokens + PANEL - 1) / PANEL;
            float[] xp = new float[panels * in * PANEL];
            Parallel.forEach(pool, panels, p -> {
                int t0 = p * PANEL;
                int width = Math.min(PANEL, tokens - t0);
                packPanel(xs, x0, in, t0, width, xp, p * in * PANEL);
            });
            Parallel.forEach(pool, (out + GEMM_ROWS - 1) / GEMM_ROWS, ch -> {
                int r0 = ch * GEMM_ROWS;
                int m = Math.min(GEMM_ROWS, out - r0);
                float[] yt = new float[m * tokens];
                for (int k0 = 0; k0 < in; k0 += K_STRIP) {
                    int kc = Math.min(K_STRIP, in - k0);
                    for (int p = 0; p < panels; p++) {
                        int t0 = p * PANEL;
                        int width = Math.min(PANEL, tokens - t0);
                        k.gemmAcc(
                                m,
                                width,
                                kc,
                                w,
                                r0 * in + k0,
                                in,
                                1,
                                xp,
                                p * in * PANEL + k0 * width,
                                width,
                                yt,
                                t0,
                                tokens);
                    }
                }
                for (int t0 = 0; t0 < tokens; t0 += TILE) {
                    int t1 = Math.min(tokens, t0 + TILE);
                    for (int t = t0; t < t1; t++) {
                        int row = t * out + r0;
                        for (int r = 0; r < m; r++) {
                            float v = yt[r * tokens + t];
                            y[row + r] = bias == null ? v : v + bias[r0 + r];
                        }
                    }
                }
            });
        }

        /**
         * Tokens {@code [t0, t0 + width)} of row-major {@code x [tokens, in]} (token {@code t} at {@code x0 + t * in})
         * transposed into {@code p [in, width]} at {@code p0}, in strips of {@link #TILE} inputs.
         */
        private static void packPanel(float[] x, int x0, int in, int t0, int width, float[] p, int p0) {
            for (int c0 = 0; c0 < in; c0 += TILE) {
                int c1 = Math.min(in, c0 + TILE);
                for (int t = 0; t < width; t++) {
                    int base = x0 + (t0 + t) * in;
                    for (int c = c0; c < c1; c++) {
                        p[p0 + c * width + t] = x[base + c];
                    }
                }
            }
        }

        @Override
        public String toString() {
            return "Linear[" + name + ", FP32 " + weight.rows() + "x" + weight.cols() + "]";
        }
    }
}
