package dev.quant4j.model;

import java.util.Map;

/** How a model's {@code withLinears} swaps layers by name: shared by every model. */
final class Replacements {

    private Replacements() {}

    /**
     * {@code old}, or the replacement {@code left} holds under its name (removed from {@code left}, so that what is
     * left at the end names no layer), which must have {@code old}'s shape.
     */
    static Linear pick(Linear old, Map<String, Linear> left) {
        Linear r = left.remove(old.name());
        if (r == null) {
            return old;
        }
        if (r.inFeatures() != old.inFeatures() || r.outFeatures() != old.outFeatures()) {
            throw new IllegalArgumentException("replacement for '" + old.name() + "' is " + r.outFeatures() + "x"
                    + r.inFeatures() + ", the layer is " + old.outFeatures() + "x" + old.inFeatures());
        }
        return r;
    }
}
