package dev.quant4j.kernel;

import jdk.incubator.vector.FloatVector;

/**
 * The entry to the {@code Vector*} classes, the only ones that touch {@code jdk.incubator.vector}; loaded only when
 * the module is present. Fixes the vector width of this JVM once: the CPU's preferred width, or the narrower one asked for with
 * {@code -Dquant4j.vector.bits}, rounded down to 512, 256 or 128 bits; 0 when even 128 bits are unavailable.
 */
final class VectorFactory {

    static final int PREFERRED_BITS = FloatVector.SPECIES_PREFERRED.vectorBitSize();

    static final int BITS = chooseBits(System.getProperty("quant4j.vector.bits"));

    private VectorFactory() {}

    static int chooseBits(String forced) {
        int bits = PREFERRED_BITS;
        if (forced != null) {
            try {
                bits = Math.min(bits, Integer.parseInt(forced.trim()));
            } catch (NumberFormatException e) {
                System.getLogger(Kernels.class.getName())
                        .log(System.Logger.Level.WARNING, "quant4j: ignoring quant4j.vector.bits=" + forced);
            }
        }
        // The kernels pair float vectors with byte and short vectors of a fixed fraction of their size, which exist
        // for these shapes on every platform; a wider or odd (SVE) width uses the largest of them that fits.
        for (int b : new int[] {512, 256, 128}) {
            if (b <= bits) {
                return b;
            }
        }
        return 0;
    }

    /** The vector kernels of every family, or null when the width is below 128 bits. */
    static QuantKernels create() {
        if (BITS == 0) {
            return null;
        }
        return new VectorKernelSet();
    }

    /** The vector kernels of ggml's block types, at {@link #BITS} (at least 128: called once {@link #create} was not null). */
    static GgmlBlockKernels createGgml() {
        return new VectorGgmlBlockKernels();
    }
}
