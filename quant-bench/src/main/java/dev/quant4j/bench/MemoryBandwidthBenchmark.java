package dev.quant4j.bench;

import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;
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
 * The limits the quantizers run against, one thread: reading a float array (a vectorized sum) and writing one (a
 * vectorized scale from a small source, as dequantization writes far more than it reads). {@code floatBytes}: bytes
 * of the big array per second.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class MemoryBandwidthBenchmark {

    private static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;

    /** 1 MiB (L2-resident) and 64 MiB (the 4096x4096 matrices of the other benchmarks). */
    @Param({"262144", "16777216"})
    public int floats;

    float[] big;
    float[] small;

    @Setup
    public void setUp() {
        big = new float[floats];
        small = new float[4096];
        for (int i = 0; i < floats; i++) {
            big[i] = i & 1023;
        }
        for (int i = 0; i < small.length; i++) {
            small[i] = i;
        }
    }

    @Benchmark
    public float read(LinearRtnBenchmark.Bytes b) {
        b.floatBytes += 4L * floats;
        return sum(big, 0, floats);
    }

    /**
     * The sum of {@code a[from, to)} with two vector accumulators and no multiply: a read of memory at its limit (also
     * {@code GemvBenchmark.streamRead}). {@code to - from} must be a multiple of two vectors.
     */
    static float sum(float[] a, int from, int to) {
        FloatVector a1 = FloatVector.zero(F);
        FloatVector a2 = FloatVector.zero(F);
        for (int i = from; i < to; i += 2 * F.length()) {
            a1 = a1.add(FloatVector.fromArray(F, a, i));
            a2 = a2.add(FloatVector.fromArray(F, a, i + F.length()));
        }
        return a1.add(a2).reduceLanes(VectorOperators.ADD);
    }

    @Benchmark
    public float[] write(LinearRtnBenchmark.Bytes b) {
        for (int i = 0; i < floats; i += small.length) {
            for (int j = 0; j < small.length; j += F.length()) {
                FloatVector.fromArray(F, small, j).mul(0.5f).intoArray(big, i + j);
            }
        }
        b.floatBytes += 4L * floats;
        return big;
    }
}
