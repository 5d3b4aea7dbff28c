package dev.quant4j.bench;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.tensor.Gaussian;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The block product {@code C += A B} that GPTQ's Hessian, Cholesky and updates are made of, one thread, on packed
 * operands in cache as the Hessian accumulator calls it: {@code C [64, 288]}, {@code k = 256}, in 8-row tiles. One
 * fork per kernel implementation. The {@code flops} secondary result is floating-point operations per second ({@code
 * 2 m n k} per call); the FMA peak measured on this machine is about 95 GFLOP/s per core.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1)
@State(Scope.Thread)
public class GemmBenchmark {

    static final String VECTOR = "--add-modules=jdk.incubator.vector";
    static final int M = 64;
    static final int N = 288;
    static final int K = 256;

    QuantKernels k;
    float[] a;
    float[] b;
    float[] c;

    @State(Scope.Thread)
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    public static class Flops {
        public long flops;

        @Setup(Level.Iteration)
        public void reset() {
            flops = 0;
        }
    }

    @Setup
    public void setUp() {
        k = Kernels.get();
        a = Gaussian.samples(1, M * K, 0.01);
        b = Gaussian.samples(2, K * N, 0.01);
        c = new float[M * N];
    }

    private float[] run(Flops f) {
        for (int i = 0; i < M; i += 8) {
            // A packed as 8-row tiles (strides 1 and 8), B as a contiguous panel, as HessianAccumulator calls it
            k.gemmAcc(8, N, K, a, i * K, 1, 8, b, 0, N, c, i * N, N);
        }
        f.flops += 2L * M * N * K;
        return c;
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector=false"})
    public float[] gemmScalar(Flops f) {
        return run(f);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR})
    public float[] gemmVector(Flops f) {
        return run(f);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector.bits=256"})
    public float[] gemmVector256(Flops f) {
        return run(f);
    }

    @Benchmark
    @Fork(jvmArgsAppend = {VECTOR, "-Dquant4j.vector.bits=128"})
    public float[] gemmVector128(Flops f) {
        return run(f);
    }
}
