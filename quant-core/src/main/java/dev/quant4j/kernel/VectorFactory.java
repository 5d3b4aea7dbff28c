package dev.quant4j.kernel;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/** The only class besides {@link VectorKernels} that touches {@code jdk.incubator.vector}; loaded only when present. */
final class VectorFactory {

    private VectorFactory() {}

    static int preferredBits() {
        return FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    static QuantKernels create(int bits) {
        VectorSpecies<Float> species = VectorSpecies.of(float.class, VectorShape.forBitSize(bits));
        return new VectorKernels(species);
    }
}
