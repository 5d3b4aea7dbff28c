package dev.quant4j.bench;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.quant.CodebookTensor;
import dev.quant4j.scheme.Codebook;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * NF4/FP4 blockwise quantize and dequantize, one thread, scalar vs Vector API forks (as {@link LinearRtnBenchmark}).
 * {@code floatBytes}: bytes of float32 per second.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class CodebookBenchmark {

    @Param({"128x2048", "4096x4096"})
    public String shape;

    @Param({"NF4", "FP4"})
    public Codebook codebook;

    @Param({"64"})
    public int blockSize;

    FloatMatrix w;
    BlockwiseQuantizer quantizer;
    CodebookTensor q;
    float[] out;

    @Setup
    public void setUp() {
        String[] rc = shape.split("x", -1);
        w = Gaussian.matrix("w", 42, Integer.parseInt(rc[0]), Integer.parseInt(rc[1]), 1.0);
        quantizer = new BlockwiseQuantizer(new CodebookScheme(codebook, blockSize));
        q = quantizer.quantize(w);
        out = new float[Math.toIntExact(w.size())];
    }

    @Benchmark
    @Fork(jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Dquant4j.vector=false"})
    public CodebookTensor quantizeScalar(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += w.size() * 4;
        return quantizer.quantize(w);
    }

    @Benchmark
    public CodebookTensor quantizeVector(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += w.size() * 4;
        return quantizer.quantize(w);
    }

    @Benchmark
    public float[] dequantize(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += w.size() * 4;
        q.dequantizeInto(out, 0);
        return out;
    }

    // The kernels of the other widths and the scalar reference, each in its own JVM (the width is fixed per JVM).

    @Benchmark
    @Fork(jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Dquant4j.vector.bits=256"})
    public CodebookTensor quantizeVector256(LinearRtnBenchmark.Bytes b) {
        return quantizeVector(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Dquant4j.vector.bits=128"})
    public CodebookTensor quantizeVector128(LinearRtnBenchmark.Bytes b) {
        return quantizeVector(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Dquant4j.vector=false"})
    public float[] dequantizeScalar(LinearRtnBenchmark.Bytes b) {
        return dequantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Dquant4j.vector.bits=256"})
    public float[] dequantizeVector256(LinearRtnBenchmark.Bytes b) {
        return dequantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {LinearRtnBenchmark.VECTOR, "-Dquant4j.vector.bits=128"})
    public float[] dequantizeVector128(LinearRtnBenchmark.Bytes b) {
        return dequantize(b);
    }
}
