package dev.quant4j.tensor;

/**
 * Reproducible normal samples: SplitMix64 (Steele, Lea and Flood 2014) feeding the Box-Muller transform, cosine
 * branch only: {@code u1 = 1 - (a >>> 11) 2^-53} (in (0, 1], so the logarithm is finite), {@code u2} likewise from the
 * next draw, {@code z = sqrt(-2 ln u1) cos(2 pi u2)}. With seed 42 the first values are 0.8822489 and -0.4508499, the
 * same stream the benchmarks and docs use to line up with llama.cpp's published error per type.
 */
public final class Gaussian {

    private long state;

    public Gaussian(long seed) {
        this.state = seed;
    }

    /** Next SplitMix64 output. */
    public long nextLong() {
        long z = (state += 0x9E3779B97F4A7C15L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** Next standard normal sample, in double. */
    public double nextGaussian() {
        double u1 = 1.0 - (nextLong() >>> 11) * 0x1.0p-53;
        double u2 = 1.0 - (nextLong() >>> 11) * 0x1.0p-53;
        return Math.sqrt(-2.0 * Math.log(u1)) * Math.cos(2.0 * Math.PI * u2);
    }

    /** {@code n} samples of N(0, sigma^2) as float32, from seed {@code seed}. */
    public static float[] samples(long seed, int n, double sigma) {
        Gaussian g = new Gaussian(seed);
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (sigma * g.nextGaussian());
        }
        return out;
    }

    /** A {@code [rows, cols]} matrix of N(0, sigma^2) samples. */
    public static FloatMatrix matrix(String name, long seed, int rows, int cols, double sigma) {
        return FloatMatrix.of(name, rows, cols, samples(seed, Math.multiplyExact(rows, cols), sigma), 0);
    }
}
