package dev.quant4j.bench;

import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * Round-to-nearest quantize and dequantize, one thread, group size 128, asymmetric, per bit width and matrix size.
 * Each kernel implementation runs in its own fork, selected the way users select it (system properties):
 * {@code scalar}, {@code vector} (the CPU's preferred width), {@code vector256} and {@code vector128}.
 *
 * <p>The {@code floatBytes} secondary result is bytes of float32 data (input of quantize, output of dequantize) per
 * second: divide by 2^30 for GiB/s.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class LinearRtnBenchmark {

    static final String VECTOR = "--add-modules=jdk.incubator.vector";

    /** {@code rows x cols}: 128x2048 (1 MiB of floats, L2-resident) and 4096x4096 (64 MiB). */
    @Param({"128x2048", "4096x4096"})
    public String shape;

    @Param({"2", "3", "4", "8"})
    public int bits;

    @Param({"128"})
    public int groupSize;

    FloatMatrix w;
    QuantizedTensor q;
    RtnQuantizer quantizer;
    ForkJoinPool pool;
    float[] out;

    /** Counts float32 bytes processed, reported as a rate (the secondary result of every benchmark in this module). */
    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Bytes {
        public long floatBytes;

        @Setup(Level.Iteration)
        public void reset() {
            floatBytes = 0;
        }
    }

    @Setup
    public void setUp() {
        String[] rc = shape.split("x");
        w = Gaussian.matrix("w", 42, Integer.parseInt(rc[0]), Integer.parseInt(rc[1]), 0.15);
        pool = new ForkJoinPool(1);
        quantizer = new RtnQuantizer(LinearScheme.asym(bits, groupSize), pool);
        q = quantizer.quantize(w);
        out = new float[Math.toIntExact(w.size())];
    }

    @TearDown
    public void tearDown() {
        pool.shutdown();
    }

    private QuantizedTensor quantize(Bytes b) {
        b.floatBytes += w.size() * 4;
        return quantizer.quantize(w);
    }

    private float[] dequantize(Bytes b) {
        b.floatBytes += w.size() * 4;
        q.dequantizeInto(out, 0);
        return out;
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector=false"})
    public QuantizedTensor quantizeScalar(Bytes b) {
        return quantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR})
    public QuantizedTensor quantizeVector(Bytes b) {
        return quantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector.bits=256"})
    public QuantizedTensor quantizeVector256(Bytes b) {
        return quantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector.bits=128"})
    public QuantizedTensor quantizeVector128(Bytes b) {
        return quantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector=false"})
    public float[] dequantizeScalar(Bytes b) {
        return dequantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR})
    public float[] dequantizeVector(Bytes b) {
        return dequantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector.bits=256"})
    public float[] dequantizeVector256(Bytes b) {
        return dequantize(b);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector.bits=128"})
    public float[] dequantizeVector128(Bytes b) {
        return dequantize(b);
    }
}
