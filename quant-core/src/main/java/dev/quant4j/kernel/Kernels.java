package dev.quant4j.kernel;

/**
 * Chooses the kernel implementation once per JVM, in the manner of Lucene's {@code VectorizationProvider}.
 *
 * <ul>
 *   <li>{@code -Dquant4j.vector=false} forces the scalar reference kernels.
 *   <li>{@code -Dquant4j.vector.bits=128|256} forces a vector width narrower than the CPU's preferred one (to test the
 *       128-bit NEON-width path on an AVX2 or AVX-512 machine). It never widens.
 *   <li>Without {@code --add-modules jdk.incubator.vector}, or when the preferred float vector is narrower than 128
 *       bits, the scalar kernels are used and one line says why. Nothing here throws for an unknown CPU.
 * </ul>
 *
 * <p>The width is fixed per JVM because the Vector API only compiles to SIMD instructions when the species is a
 * constant; tests of other widths run in their own JVMs (see the surefire executions of quant-core).
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

    /**
     * The kernels of ggml's block types this JVM uses: the vector ones whenever {@link #get()} is vector, of the same
     * width, else the scalar reference.
     */
    public static GgmlBlockKernels ggml() {
        return Holder.GGML;
    }

    /** The scalar reference kernels of ggml's block types. */
    public static GgmlBlockKernels ggmlScalar() {
        return Holder.GGML_SCALAR;
    }

    /** Whether the Vector API module is present in this JVM. */
    public static boolean vectorModulePresent() {
        return ModuleLayer.boot().findModule(VECTOR_MODULE).isPresent();
    }

    /** The preferred float vector width of this CPU in bits, or 0 when the Vector API module is absent. */
    public static int preferredBits() {
        if (!vectorModulePresent()) {
            return 0;
        }
        try {
            return VectorFactory.PREFERRED_BITS;
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
        try {
            QuantKernels k = VectorFactory.create();
            if (k != null) {
                return k;
            }
            LOG.log(
                    System.Logger.Level.INFO,
                    "quant4j: vector width below 128 bits (preferred " + VectorFactory.PREFERRED_BITS
                            + "), using scalar kernels");
        } catch (RuntimeException | LinkageError e) {
            LOG.log(System.Logger.Level.WARNING, "quant4j: Vector API unusable (" + e + "), using scalar kernels");
        }
        return scalar();
    }

    private static final class Holder {
        static final QuantKernels SCALAR = new ScalarKernelSet();
        static final QuantKernels INSTANCE = choose();
        static final GgmlBlockKernels GGML_SCALAR = new ScalarGgmlBlockKernels();
        static final GgmlBlockKernels GGML = INSTANCE == SCALAR ? GGML_SCALAR : VectorFactory.createGgml();
    }
}
