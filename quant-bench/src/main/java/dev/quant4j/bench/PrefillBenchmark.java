package dev.quant4j.bench;

import dev.quant4j.model.Linear;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.TimeUnit;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
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
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

/**
 * A decoder's prefill product beside the machine's limit, in one run: {@link Linear#dense} on {@code tokens} rows of
 * activations through a {@code [out, in]} FP32 weight on a pool of every core (what calibration runs per layer), and
 * {@code peakFma}, twelve independent chains of fused multiply-adds per core at the preferred vector width on every
 * core (JMH threads), the floating-point peak the product is measured against. The {@code flops} secondary result is
 * floating-point operations per second ({@code 2 tokens out in} per product, 2 per lane per FMA).
 *
 * <pre>
 * java --sun-misc-unsafe-memory-access=allow -jar quant-bench/target/benchmarks.jar PrefillBenchmark -wi 3 -i 5 -f 1
 * </pre>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {GemmBenchmark.VECTOR, "-Xmx4g"})
public class PrefillBenchmark {

    static final VectorSpecies<Float> F = FloatVector.SPECIES_PREFERRED;
    static final int CHAINS = 12;
    static final int FMA_STEPS = 1 << 16;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public long flops;

        @Setup(Level.Iteration)
        public void reset() {
            flops = 0;
        }
    }

    @State(Scope.Benchmark)
    public static class Product {
        @Param({"512"})
        public int tokens;

        @Param({"4096x4096"})
        public String shape;

        ForkJoinPool pool;
        Linear linear;
        FloatMatrix x;
        long flopsPerProduct;

        @Setup
        public void setUp() {
            String[] s = shape.split("x");
            int out = Integer.parseInt(s[0]);
            int in = Integer.parseInt(s[1]);
            pool = new ForkJoinPool(Runtime.getRuntime().availableProcessors());
            linear =
                    Linear.dense("w", FloatMatrix.of("w", out, in, Gaussian.samples(1, out * in, 0.02), 0), null, pool);
            x = FloatMatrix.of("x", tokens, in, Gaussian.samples(2, tokens * in, 1), 0);
            flopsPerProduct = 2L * tokens * out * in;
        }

        @TearDown
        public void tearDown() {
            pool.shutdown();
        }
    }

    @Benchmark
    @Threads(1)
    public FloatMatrix denseForward(Product p, Flops f) {
        f.flops += p.flopsPerProduct;
        return p.linear.forward(p.x);
    }

    /** Twelve independent FMA chains per thread; one JMH thread per core. */
    @Benchmark
    @Threads(Threads.MAX)
    public float peakFma(Flops f) {
        FloatVector a = FloatVector.broadcast(F, 0.999f);
        FloatVector b = FloatVector.broadcast(F, 0.001f);
        FloatVector c0 = FloatVector.broadcast(F, 1f);
        FloatVector c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0, c7 = c0, c8 = c0, c9 = c0, c10 = c0, c11 = c0;
        for (int i = 0; i < FMA_STEPS; i++) {
            c0 = c0.fma(a, b);
            c1 = c1.fma(a, b);
            c2 = c2.fma(a, b);
            c3 = c3.fma(a, b);
            c4 = c4.fma(a, b);
            c5 = c5.fma(a, b);
            c6 = c6.fma(a, b);
            c7 = c7.fma(a, b);
            c8 = c8.fma(a, b);
            c9 = c9.fma(a, b);
            c10 = c10.fma(a, b);
            c11 = c11.fma(a, b);
        }
        f.flops += 2L * F.length() * CHAINS * FMA_STEPS;
        return c0.add(c1)
                .add(c2)
                .add(c3)
                .add(c4)
                .add(c5)
                .add(c6)
                .add(c7)
                .add(c8)
                .add(c9)
                .add(c10)
                .add(c11)
                .reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }
}
