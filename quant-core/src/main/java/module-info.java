/**
 * quant4j core: quantizers, packed formats and compute kernels.
 *
 * <p>The Vector API module is optional at run time: without {@code --add-modules jdk.incubator.vector} every
 * kernel runs on the scalar reference path.
 */
module dev.quant4j.core {
    requires static jdk.incubator.vector;

    exports dev.quant4j.tensor;
    exports dev.quant4j.quant;
    exports dev.quant4j.scheme;
    exports dev.quant4j.linear;
    exports dev.quant4j.codebook;
    exports dev.quant4j.gptq;
    exports dev.quant4j.awq;
    exports dev.quant4j.matmul;
    exports dev.quant4j.io;
    exports dev.quant4j.ggml;
    exports dev.quant4j.model;
    exports dev.quant4j.pipeline;
    exports dev.quant4j.study;
    // for quant4j's benchmarks and tools only: unchecked arguments, no compatibility promise (see its package-info)
    exports dev.quant4j.kernel;
}
