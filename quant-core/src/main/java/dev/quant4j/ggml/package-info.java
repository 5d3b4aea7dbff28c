/**
 * ggml's tensor types (the ones GGUF files hold), quantized and dequantized byte for byte as ggml's reference code does.
 *
 * <p>{@link dev.quant4j.ggml.GgmlType} lists every type with its block size and bytes per block; {@link
 * dev.quant4j.ggml.GgmlQuants} quantizes float32 rows to q4_0, q4_1, q5_0, q5_1, q8_0, q4_K, q5_K, q6_K, f16, bf16 and
 * f32 and back. The code follows ggml's {@code src/ggml-quants.c} at commit
 * {@code d99724f2b141fed9e1a9f402213506c081433465} function by function (same names, same variable names), and the
 * tests compare its bytes and floats with files ggml itself wrote ({@code src/test/resources/ggml/README.md}).
 */
package dev.quant4j.ggml;
