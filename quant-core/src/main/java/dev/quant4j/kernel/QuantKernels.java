package dev.quant4j.kernel;

/**
 * Every kernel family the quantizers use, behind one object chosen once per JVM by {@link Kernels}: {@link
 * StatisticsKernels}, {@link LinearKernels}, {@link CodebookKernels}, {@link PackedProductKernels}, {@link
 * BlasKernels}, {@link ConversionKernels} and {@link AttentionKernels}. Each family has a scalar reference and a Vector API implementation; integer codes are identical, float
 * sums agree within the tolerances the tests state.
 *
 * <p>Arguments are trusted (checked by the public API), so kernels only {@code assert}. Float sums of one call are
 * accumulated in float; callers that sum many rows accumulate the per-row results in double.
 */
public interface QuantKernels
        extends StatisticsKernels,
                LinearKernels,
                CodebookKernels,
                PackedProductKernels,
                BlasKernels,
                ConversionKernels,
                AttentionKernels {

    /** Short name for logs and benchmarks, e.g. {@code scalar} or {@code vector-256}. */
    String name();
}
