/**
 * The compute kernels every quantizer is built on, one family per interface: {@link
 * dev.quant4j.kernel.StatisticsKernels}, {@link dev.quant4j.kernel.LinearKernels}, {@link
 * dev.quant4j.kernel.CodebookKernels}, {@link dev.quant4j.kernel.PackedProductKernels}, {@link
 * dev.quant4j.kernel.BlasKernels}, {@link dev.quant4j.kernel.ConversionKernels} and {@link
 * dev.quant4j.kernel.AttentionKernels}, joined in {@link dev.quant4j.kernel.QuantKernels} and chosen once per JVM by {@link
 * dev.quant4j.kernel.Kernels} (scalar reference, or the Vector API at 512, 256 or 128 bits); and ggml's block types,
 * {@link dev.quant4j.kernel.GgmlBlockKernels}, chosen alike ({@link dev.quant4j.kernel.Kernels#ggml()}).
 *
 * <p>Exported for quant4j's own benchmarks and tools, which measure and name the kernels; not for applications, which
 * use the quantizers of the other packages. The contract is narrower than theirs: arguments are not checked (offsets,
 * lengths and bit widths are trusted, a kernel only {@code assert}s), the interfaces may gain or change methods in any
 * release, and only the interfaces, their constants and static helpers, and {@code Kernels} are public: the
 * implementations are not.
 */
package dev.quant4j.kernel;
