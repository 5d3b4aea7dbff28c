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

    private static volatile Factory factory;

    private TrustedConstruction() {}

    public static void register(Factory f) {
        factory = f;
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
        Factory f = factory;
        if (f == null) {
            try {
                // runs QuantizedTensor's static initializer, which registers the factory
                Class.forName(QuantizedTensor.class.getName(), true, QuantizedTensor.class.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException(e);
            }
            f = factory;
        }
        return f.create(name, scheme, rows, cols, packOrder, packed, scales, zeros, gIdx);
    }
}
