package dev.quant4j.internal;

import dev.quant4j.quant.LinearScheme;
import dev.quant4j.quant.PackOrder;
import dev.quant4j.quant.QuantizedTensor;

/**
 * Lets quantizers in other packages hand freshly built arrays to a {@link QuantizedTensor} without the defensive copy
 * of its public constructor (the JDK's "shared secrets" pattern). Internal: not exported from the module.
 */
public final class TrustedConstruction {

    /** Builds a tensor that takes ownership of the arrays; set by {@link QuantizedTensor}'s static initializer. */
    public interface Factory {
        QuantizedTensor create(
                String name,
                LinearScheme scheme,
                int rows,
                int cols,
                PackOrder packOrder,
                byte[] packed,
                float[] scales,
                byte[] zeros,
                int[] gIdx);
    }

    /** Read access to a tensor's internal arrays, for the library's own kernels; set like {@link Factory}. */
    public interface Access {
        byte[] packed(QuantizedTensor t);

        float[] scales(QuantizedTensor t);

        byte[] zeros(QuantizedTensor t);
    }

    private static volatile Factory factory;
    private static volatile Access access;

    private TrustedConstruction() {}

    public static void register(Factory f) {
        factory = f;
    }

    public static void register(Access a) {
        access = a;
    }

    /**
     * The internal arrays of {@code t}, not copied: the caller must not modify them (the matrix-vector kernels read
     * the packed codes in place instead of copying megabytes per layer).
     */
    public static Access access() {
        if (access == null) {
            initialize();
        }
        return access;
    }

    private static void initialize() {
        try {
            // runs QuantizedTensor's static initializer, which registers the factory and the access
            Class.forName(QuantizedTensor.class.getName(), true, QuantizedTensor.class.getClassLoader());
        } catch (ClassNotFoundException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Validates like the public constructor, but takes ownership of the arrays, which the caller must not keep. */
    public static QuantizedTensor quantizedTensor(
            String name,
            LinearScheme scheme,
            int rows,
            int cols,
            PackOrder packOrder,
            byte[] packed,
            float[] scales,
            byte[] zeros) {
        return quantizedTensor(name, scheme, rows, cols, packOrder, packed, scales, zeros, null);
    }

    /** As above, with a group index per column (or null for the natural order). */
    public static QuantizedTensor quantizedTensor(
            String name,
            LinearScheme scheme,
            int rows,
            int cols,
            PackOrder packOrder,
            byte[] packed,
            float[] scales,
            byte[] zeros,
            int[] gIdx) {
        if (factory == null) {
            initialize();
        }
        return factory.create(name, scheme, rows, cols, packOrder, packed, scales, zeros, gIdx);
    }
}
