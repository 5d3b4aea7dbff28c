package dev.quant4j.bench;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.kernel.StatisticsKernels;
import dev.quant4j.linear.LinearParams;
import dev.quant4j.scheme.LinearScheme;
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
 * The kernels one at a time, on an L2-resident block of 256 Ki floats processed in groups, as the quantizers call
 * them. Score: passes over the block per second; one pass is 1 MiB of float32 data. The kernel
 * implementation is chosen per fork with {@code -Dquant4j.vector=false} or {@code -Dquant4j.vector.bits=N}, e.g.
 * {@code -jvmArgsAppend -Dquant4j.vector=false}.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class KernelBenchmark {

    static final int N = 1 << 18;

    @Param({"128"})
    public int group;

    @Param({"4"})
    public int bits;

    static final LinearScheme ASYM4 = LinearScheme.asym(4, 128);

    QuantKernels k;
    float[] mins;
    float[] scales = new float[4096];
    byte[] zeros = new byte[4096];
    float[] maxs;
    float[] x;
    float[] out;
    byte[] codes;
    byte[] packed;

    @Setup
    public void setUp() {
        k = Kernels.get();
        x = Gaussian.samples(42, N, 0.15);
        out = new float[N];
        codes = new byte[N];
        packed = new byte[N];
        k.quantize(x, 0, N, 0.02f, 8f, 0, (1 << bits) - 1, codes, 0);
        mins = new float[N / group];
        maxs = new float[N / group];
        for (int j = 0; j < mins.length; j++) {
            long mm = k.minMax(x, j * group, group);
            mins[j] = StatisticsKernels.min(mm);
            maxs[j] = StatisticsKernels.max(mm);
        }
    }

    @Benchmark
    public boolean allFinite() {
        boolean ok = true;
        for (int g = 0; g < N; g += 4096) {
            ok &= k.allFinite(x, g, 4096);
        }
        return ok;
    }

    @Benchmark
    public long minMax() {
        long acc = 0;
        for (int g = 0; g < N; g += group) {
            acc += k.minMax(x, g, group);
        }
        return acc;
    }

    @Benchmark
    public byte[] quantize() {
        int maxq = (1 << bits) - 1;
        for (int g = 0; g < N; g += group) {
            k.quantize(x, g, group, 0.02f, 8f, 0, maxq, codes, g);
        }
        return codes;
    }

    /** As {@link #quantize()}, with a different scale and zero-point per group, as real groups have. */
    @Benchmark
    public byte[] quantizeVaryingScale() {
        int maxq = (1 << bits) - 1;
        for (int g = 0, j = 0; g < N; g += group, j++) {
            k.quantize(x, g, group, 0.02f + (j & 7) * 1e-3f, j & maxq, 0, maxq, codes, g);
        }
        return codes;
    }

    @Benchmark
    public float[] dequantize() {
        for (int g = 0; g < N; g += group) {
            k.dequantize(codes, g, group, 0.02f, 8f, out, g);
        }
        return out;
    }

    /** What the RTN quantizer does per row of 4096, with fixed parameters: the kernels' share of its time. */
    @Benchmark
    public byte[] rowPipeline() {
        int maxq = (1 << bits) - 1;
        long sink = 0;
        for (int r = 0; r < N; r += 4096) {
            sink += k.allFinite(x, r, 4096) ? 1 : 0;
            for (int g = r; g < r + 4096; g += group) {
                sink += k.minMax(x, g, group);
                k.quantize(x, g, group, 0.02f, 8f, 0, maxq, codes, g);
            }
            k.pack(codes, r, 4096, bits, packed, r / 2);
        }
        packed[0] += (byte) sink;
        return packed;
    }

    /** As {@link #rowPipeline()} with RTN's two phases: parameters of all groups of the row, then the codes. */
    @Benchmark
    public byte[] rowPipelineTwoPhase() {
        int maxq = (1 << bits) - 1;
        int gpr = 4096 / group;
        for (int r = 0; r < N; r += 4096) {
            if (!k.allFinite(x, r, 4096)) {
                throw new IllegalStateException();
            }
            for (int g = 0; g < gpr; g++) {
                long mm = k.minMax(x, r + g * group, group);
                float min = StatisticsKernels.min(mm);
                float max = StatisticsKernels.max(mm);
                float scale = LinearParams.scale(ASYM4, min, max);
                scales[g] = scale;
                zeros[g] = (byte) LinearParams.zero(ASYM4, min, max, scale);
            }
            for (int g = 0; g < gpr; g++) {
                k.quantize(x, r + g * group, group, scales[g], zeros[g] & 0xFF, 0, maxq, codes, r + g * group);
            }
            k.pack(codes, r, 4096, bits, packed, r / 2);
        }
        return packed;
    }

    /** Scale and zero-point of every group from its min and max: the scalar part of RTN. */
    @Benchmark
    public float linearParams() {
        float sink = 0;
        for (int j = 0; j < mins.length; j++) {
            float scale = LinearParams.scale(ASYM4, mins[j], maxs[j]);
            sink += scale + LinearParams.zero(ASYM4, mins[j], maxs[j], scale);
        }
        return sink;
    }

    @Benchmark
    public byte[] pack() {
        k.pack(codes, 0, N, bits, packed, 0);
        return packed;
    }

    @Benchmark
    public byte[] unpack() {
        k.unpack(packed, 0, N, bits, codes, 0);
        return codes;
    }
}
