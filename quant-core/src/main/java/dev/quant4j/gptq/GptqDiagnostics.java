package dev.quant4j.gptq;

import java.util.List;

/**
 * What GPTQ saw in a layer's Hessian and did about it.
 *
 * @param diagMin smallest {@code H[i][i]} before damping (0 when there are dead columns)
 * @param diagMax largest {@code H[i][i]}
 * @param deadColumns input features with {@code H[i][i] == 0} (never activated): their weights are set to 0, as the
 *     reference does, and {@code H[i][i]} to 1
 * @param nonFinite NaN or infinite entries of {@code H} (always 0 for a result: such a Hessian is rejected)
 * @param dampings the fractions of the mean diagonal tried, in order; the last one succeeded
 * @param hinvSeconds time spent on damping, Cholesky and inverse
 * @param quantizeSeconds time spent on the column loop
 */
public record GptqDiagnostics(
        float diagMin,
        float diagMax,
        int deadColumns,
        long nonFinite,
        List<Double> dampings,
        double hinvSeconds,
        double quantizeSeconds) {

    public GptqDiagnostics {
        dampings = List.copyOf(dampings);
    }

    /** The damping that succeeded, as a fraction of the mean diagonal. */
    public double damping() {
        return dampings.get(dampings.size() - 1);
    }

    @Override
    public String toString() {
        return "diag(H) min " + diagMin + " max " + diagMax + ", " + deadColumns + " dead columns, " + nonFinite
                + " non-finite entries, dampings tried " + dampings;
    }
}
