package dev.quant4j.bench;

import dev.quant4j.kernel.Kernels;
import dev.quant4j.kernel.PackedProductKernels;
import dev.quant4j.kernel.QuantKernels;
import dev.quant4j.kernel.StatisticsKernels;
import dev.quant4j.scheme.Symmetry;
import dev.quant4j.tensor.Gaussian;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import org.apache.lucene.index.VectorSimilarityFunction;
import org.apache.lucene.util.VectorUtil;
import org.apache.lucene.util.quantization.ScalarQuantizer;
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
 * Dot products of one pair of {@code n}-vectors in cache, one thread, beside the peers in the same run: Apache
 * Lucene's {@code VectorUtil} (its Panama implementation when {@code --add-modules jdk.incubator.vector} is given)
 * and plain Java loops. Score: products per microsecond; multiply by {@code n} for elements per microsecond.
 *
 * <p>Scalar quantization of the vector: Lucene's {@code ScalarQuantizer} (7 bits, its default for HNSW, and 4 bits)
 * with the quantiles fixed at construction (here the vector's min and max), against quant4j's kernels computing the
 * range ({@code minMax}) and the codes ({@code quantize}, 8 and 4 bits, asymmetric) in the measured call. Both write
 * one code per byte.
 *
 * <p>The 4-bit rows differ in kind: Lucene's {@code int4DotProductSinglePacked} multiplies packed 4-bit integers by
 * unpacked ones (an integer result); quant4j's {@code dotNibbles} multiplies packed 4-bit codes by float activations
 * with a scale per group of 128 (what a quantized layer needs). Both read {@code n / 2} packed bytes.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules=jdk.incubator.vector"})
@State(Scope.Thread)
public class PeersBenchmark {

    @Param({"4096"})
    public int n;

    QuantKernels k;
    float[] a;
    float[] b;
    byte[] a8;
    byte[] b8;
    byte[] unpacked4;
    byte[] packedLucene;
    byte[] packedQuant4j;
    float[] xPrepared;
    float[] scales;
    ScalarQuantizer lucene7;
    ScalarQuantizer lucene4;
    byte[] codes;

    @Setup
    public void setUp() {
        k = Kernels.get();
        a = Gaussian.samples(1, n, 1.0);
        b = Gaussian.samples(2, n, 1.0);
        SplittableRandom r = new SplittableRandom(3);
        a8 = new byte[n];
        b8 = new byte[n];
        unpacked4 = new byte[n];
        for (int i = 0; i < n; i++) {
            a8[i] = (byte) r.nextInt(-127, 128);
            b8[i] = (byte) r.nextInt(-127, 128);
            unpacked4[i] = (byte) r.nextInt(16);
        }
        packedLucene = new byte[n / 2];
        packedQuant4j = new byte[n / 2];
        for (int i = 0; i < n / 2; i++) {
            // Lucene packs element i in the high nibble and i + n/2 in the low one; quant4j 2j low, 2j + 1 high
            packedLucene[i] = (byte) (r.nextInt(16) << 4 | r.nextInt(16));
            packedQuant4j[i] = packedLucene[i];
        }
        xPrepared = new float[n];
        PackedProductKernels.deinterleaveForNibbles(a, 0, n, xPrepared, 0);
        scales = Gaussian.samples(4, n / 128, 0.01);
        long mm = k.minMax(a, 0, n);
        lucene7 = new ScalarQuantizer(StatisticsKernels.min(mm), StatisticsKernels.max(mm), (byte) 7);
        lucene4 = new ScalarQuantizer(StatisticsKernels.min(mm), StatisticsKernels.max(mm), (byte) 4);
        codes = new byte[n];
    }

    @Benchmark
    public float floatDotQuant4j() {
        return k.dot(a, 0, b, 0, n);
    }

    @Benchmark
    public float floatDotLucene() {
        return VectorUtil.dotProduct(a, b);
    }

    @Benchmark
    public float floatDotPlainJava() {
        float s = 0f;
        for (int i = 0; i < n; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    @Benchmark
    public int int8DotLucene() {
        return VectorUtil.dotProduct(a8, b8);
    }

    @Benchmark
    public int int8DotPlainJava() {
        int s = 0;
        for (int i = 0; i < n; i++) {
            s += a8[i] * b8[i];
        }
        return s;
    }

    @Benchmark
    public int int4PackedDotLucene() {
        return VectorUtil.int4DotProductSinglePacked(unpacked4, packedLucene);
    }

    @Benchmark
    public float scalarQuantize7bitLucene() {
        return lucene7.quantize(a, codes, VectorSimilarityFunction.DOT_PRODUCT);
    }

    @Benchmark
    public float scalarQuantize4bitLucene() {
        return lucene4.quantize(a, codes, VectorSimilarityFunction.DOT_PRODUCT);
    }

    @Benchmark
    public byte[] scalarQuantize8bitQuant4j() {
        return quantizeQuant4j(8);
    }

    @Benchmark
    public byte[] scalarQuantize4bitQuant4j() {
        return quantizeQuant4j(4);
    }

    /** Range, then asymmetric codes {@code 0..2^bits - 1} with the library's parameters (GPTQ's {@code find_params}). */
    byte[] quantizeQuant4j(int bits) {
        long mm = k.minMax(a, 0, n);
        float[] min = {StatisticsKernels.min(mm)};
        float[] max = {StatisticsKernels.max(mm)};
        float[] scale = new float[1];
        float[] zero = new float[1];
        k.linearParams(min, max, 1, bits, Symmetry.ASYM, scale, 0, zero, 0);
        k.quantize(a, 0, n, scale[0], zero[0], 0, (1 << bits) - 1, codes, 0);
        return codes;
    }

    @Benchmark
    public float int4PackedTimesFloatG128Quant4j() {
        return k.dotNibbles(packedQuant4j, 0, xPrepared, 0, n, 128, scales, 0);
    }
}
