package dev.quant4j.kernel;

import java.util.Optional;

/**
 * Chooses the kernel implementation once per JVM, in the manner of Lucene's {@code VectorizationProvider}.
 *
 * <ul>
 *   <li>{@code -Dquant4j.vector=false} forces the scalar reference kernels.
 *   <li>{@code -Dquant4j.vector.bits=128|256|512} forces a vector width no wider than the CPU's preferred one (to test
 *       the 128-bit NEON-width path on an AVX2 or AVX-512 machine).
 *   <li>Without {@code --add-modules jdk.incubator.vector}, or when the preferred float vector is narrower than 128
 *       bits, the scalar kernels are used and one line says why. Nothing here throws for an unknown CPU.
 * </ul>
 */
public final class Kernels {

    private static final System.Logger LOG = System.getLogger(Kernels.class.getName());
    private static final String VECTOR_MODULE = "jdk.incubator.vector";

    private Kernels() {}

    /** The kernels this JVM uses. */
    public static QuantKernels get() {
        return Holder.INSTANCE;
    }

    /** The scalar reference kernels. */
    public static QuantKernels scalar() {
        return Holder.SCALAR;
    }

    /** Whether the Vector API module is present in this JVM. */
    public static boolean vectorModulePresent() {
        return ModuleLayer.boot().findModule(VECTOR_MODULE).isPresent();
    }

    /**
     * Vector kernels of the given float vector width in bits, or empty when the module is absent or the width is not
     * supported by this CPU (wider than the preferred species or narrower than 128 bits).
     */
    public static Optional<QuantKernels> vector(int bits) {
        if (!vectorModulePresent() || bits < 128 || bits > preferredBits()) {
            return Optional.empty();
        }
        try {
            return Optional.of(VectorFactory.create(bits));
        } catch (IllegalArgumentException | LinkageError e) {
            return Optional.empty();
        }
    }

    /** The preferred float vector width of this CPU in bits, or 0 when the Vector API module is absent. */
    public static int preferredBits() {
        if (!vectorModulePresent()) {
            return 0;
        }
        try {
            return VectorFactory.preferredBits();
        } catch (LinkageError e) {
            return 0;
        }
    }

    private static QuantKernels choose() {
        if (!Boolean.parseBoolean(System.getProperty("quant4j.vector", "true"))) {
            return scalar();
        }
        if (!vectorModulePresent()) {
            LOG.log(
                    System.Logger.Level.INFO,
                    "quant4j: Java Vector API not enabled, using scalar kernels; pass --add-modules "
                            + VECTOR_MODULE
                            + " to enable it");
            return scalar();
        }
        int preferred = preferredBits();
        int bits = preferred;
        String forced = System.getProperty("quant4j.vector.bits");
        if (forced != null) {
            try {
                bits = Math.min(Integer.parseInt(forced.trim()), preferred);
            } catch (NumberFormatException e) {
                LOG.log(System.Logger.Level.WARNING, "quant4j: ignoring quant4j.vector.bits=" + forced);
            }
        }
        Optional<QuantKernels> vector = vector(bits);
        if (vector.isEmpty()) {
            LOG.log(
                    System.Logger.Level.INFO,
                    "quant4j: no usable vector width (preferred " + preferred + " bits, asked " + bits
                            + "), using scalar kernels");
            return scalar();
        }
        return vector.get();
    }

    private static final class Holder {
        static final QuantKernels SCALAR = new ScalarKernels();
        static final QuantKernels INSTANCE = choose();
    }
}
