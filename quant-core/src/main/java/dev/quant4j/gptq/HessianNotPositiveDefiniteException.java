package dev.quant4j.gptq;

/**
 * The damped Hessian of a layer stayed not positive definite at every damping GPTQ tried. The message names the layer,
 * the dampings and the Hessian's diagnostics (diagonal range, dead columns, non-finite entries).
 */
public final class HessianNotPositiveDefiniteException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    private final transient GptqDiagnostics diagnostics;

    public HessianNotPositiveDefiniteException(String layer, GptqDiagnostics diagnostics) {
        super("Hessian of layer '" + layer + "' is not positive definite after damping " + diagnostics.dampings()
                + " x mean diag: " + diagnostics);
        this.diagnostics = diagnostics;
    }

    public GptqDiagnostics diagnostics() {
        return diagnostics;
    }
}
