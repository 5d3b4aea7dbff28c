package dev.quant4j.bench;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.tensor.FloatMatrix;
import org.junit.jupiter.api.Test;

/** Runs every benchmark method once, untimed, so that none of them rots. */
class BenchmarksSmokeTest {

    @Test
    void linearRtnBenchmarkMethodsRun() {
        for (int bits : new int[] {2, 3, 4, 8}) {
            LinearRtnBenchmark b = new LinearRtnBenchmark();
            b.shape = "64x256";
            b.bits = bits;
            b.groupSize = 128;
            b.setUp();
            LinearRtnBenchmark.Bytes bytes = new LinearRtnBenchmark.Bytes();
            QuantizedTensor q = b.quantizeVector(bytes);
            assertThat(q.rows()).isEqualTo(64);
            assertThat(q.scheme().bits()).isEqualTo(bits);
            assertThat(b.quantizeScalar(bytes)).isEqualTo(q);
            assertThat(b.quantizeVector256(bytes)).isEqualTo(q);
            assertThat(b.quantizeVector128(bytes)).isEqualTo(q);
            float[] out = b.dequantizeVector(bytes);
            assertThat(out).containsExactly(q.dequantize().toArray());
            b.dequantizeScalar(bytes);
            b.dequantizeVector256(bytes);
            b.dequantizeVector128(bytes);
            assertThat(bytes.floatBytes).isEqualTo(8L * 64 * 256 * 4);
            b.tearDown();
        }
    }

    @Test
    void ggmlQuantsBenchmarkMethodsRun() {
        for (String type : new String[] {"q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q4_K", "q5_K", "q6_K"}) {
            for (String kernels : new String[] {"scalar", "vector"}) {
                if (kernels.equals("vector")
                        && dev.quant4j.kernel.Kernels.ggml() == dev.quant4j.kernel.Kernels.ggmlScalar()) {
                    continue;
                }
                GgmlQuantsBenchmark b = new GgmlQuantsBenchmark();
                b.type = type;
                b.size = 4096;
                b.kernels = kernels;
                b.setUp();
                LinearRtnBenchmark.Bytes bytes = new LinearRtnBenchmark.Bytes();
                dev.quant4j.ggml.GgmlType t = dev.quant4j.ggml.GgmlType.byName(type);
                byte[] q = b.quantize(bytes).clone();
                assertThat(q).as(type).isEqualTo(dev.quant4j.ggml.GgmlQuants.quantize(t, b.x, 1, 4096));
                assertThat(b.dequantize(bytes)).containsExactly(dev.quant4j.ggml.GgmlQuants.dequantize(t, q, 1, 4096));
                assertThat(bytes.floatBytes).isEqualTo(2L * 4096 * 4);
            }
        }
    }

    @Test
    void attentionBenchmarkMethodsAgree() {
        AttentionBenchmark b = new AttentionBenchmark();
        b.tokens = 40;
        b.shape = "4x2x16";
        b.setUp();
        float[] old = b.doubleLoops().clone();
        float[] scalar = b.scalarKernel().clone();
        float[] vector = b.vectorKernel().clone();
        // unit Gaussian values, at most 40 keys: the float forms within (3 * 40 + 8) 2^-24 max|v| of each other
        assertThat(scalar).containsExactly(old, org.assertj.core.data.Offset.offset(1e-4f));
        assertThat(vector).containsExactly(scalar, org.assertj.core.data.Offset.offset(1e-4f));
        assertThat(old).isNotEqualTo(new float[old.length]);
    }

    @Test
    void codebookBenchmarkMethodsRun() {
        CodebookBenchmark b = new CodebookBenchmark();
        b.shape = "8x256";
        b.codebook = dev.quant4j.scheme.Codebook.NF4;
        b.blockSize = 64;
        b.setUp();
        LinearRtnBenchmark.Bytes bytes = new LinearRtnBenchmark.Bytes();
        assertThat(b.quantizeScalar(bytes)).isEqualTo(b.quantizeVector(bytes));
        assertThat(b.dequantize(bytes)).containsExactly(b.q.dequantize().toArray());
        assertThat(bytes.floatBytes).isEqualTo(3L * 8 * 256 * 4);
        // the per-width methods (their width comes from their fork's JVM options, not set here)
        assertThat(b.quantizeVector256(bytes)).isEqualTo(b.q);
        assertThat(b.quantizeVector128(bytes)).isEqualTo(b.q);
        assertThat(b.dequantizeScalar(bytes)).containsExactly(b.q.dequantize().toArray());
        assertThat(b.dequantizeVector256(bytes))
                .containsExactly(b.q.dequantize().toArray());
        assertThat(b.dequantizeVector128(bytes))
                .containsExactly(b.q.dequantize().toArray());
        assertThat(bytes.floatBytes).isEqualTo(8L * 8 * 256 * 4);
    }

    @Test
    void errorStudyDataIsTheAgreedStream() {
        float[] x = ErrorStudy.data().toArray();
        assertThat(x).hasSize(1 << 22);
        // the stream llama.cpp's published figures are compared on
        assertThat(x[0]).isEqualTo(0.8822489f, org.assertj.core.api.Assertions.within(1e-7f));
        assertThat(x[1]).isEqualTo(-0.4508499f, org.assertj.core.api.Assertions.within(1e-7f));
        String table = ErrorStudy.table(dev.quant4j.study.BitWidthStudy.run(
                java.util.List.of(dev.quant4j.tensor.FloatMatrix.of(1, 256, java.util.Arrays.copyOf(x, 256))),
                ErrorStudy.schemes()));
        assertThat(table).contains("| nf4 | block 64 |").contains("| linear 4-bit asym | g64 |");
    }

    /**
     * The figures the error study prints for (b), against the same quantities computed here from the formulas alone
     * (GPTQ's asymmetric {@code find_params} and {@code quantize}; NF4 as nearest table value of {@code x / absmax},
     * ties to the lower code), in double: RMSE printed to four decimals.
     */
    @Test
    void errorStudyFiguresMatchAnIndependentComputation() {
        dev.quant4j.tensor.FloatMatrix data = ErrorStudy.data();
        float[] x = data.toArray();
        String table =
                ErrorStudy.table(dev.quant4j.study.BitWidthStudy.run(java.util.List.of(data), ErrorStudy.schemes()));
        double linear = 0;
        for (int g = 0; g < x.length; g += 64) {
            double min = 0;
            double max = 0;
            for (int i = g; i < g + 64; i++) {
                min = Math.min(min, x[i]);
                max = Math.max(max, x[i]);
            }
            double scale = (max - min) / 15;
            double zero = Math.rint(-min / scale);
            for (int i = g; i < g + 64; i++) {
                double q = Math.max(0, Math.min(15, Math.rint(x[i] / scale) + zero));
                double e = scale * (q - zero) - x[i];
                linear += e * e;
            }
        }
        double[] nf4 = {
            -1.0,
            -0.6961928009986877,
            -0.5250730514526367,
            -0.39491748809814453,
            -0.28444138169288635,
            -0.18477343022823334,
            -0.09105003625154495,
            0.0,
            0.07958029955625534,
            0.16093020141124725,
            0.24611230194568634,
            0.33791524171829224,
            0.44070982933044434,
            0.5626170039176941,
            0.7229568362236023,
            1.0
        };
        double book = 0;
        for (int b = 0; b < x.length; b += 64) {
            double absmax = 0;
            for (int i = b; i < b + 64; i++) {
                absmax = Math.max(absmax, Math.abs(x[i]));
            }
            for (int i = b; i < b + 64; i++) {
                double v = x[i] / absmax;
                double best = nf4[0];
                for (double c : nf4) {
                    if (Math.abs(c - v) < Math.abs(best - v)) {
                        best = c;
                    }
                }
                double e = best * absmax - x[i];
                book += e * e;
            }
        }
        assertThat(rmse(table, "| linear 4-bit asym | g64 |"))
                .isCloseTo(Math.sqrt(linear / x.length), org.assertj.core.api.Assertions.within(6e-5));
        assertThat(rmse(table, "| nf4 | block 64 |"))
                .isCloseTo(Math.sqrt(book / x.length), org.assertj.core.api.Assertions.within(6e-5));
    }

    /** The RMSE column of the row that starts with {@code prefix}. */
    private static double rmse(String table, String prefix) {
        for (String line : table.split("\n")) {
            if (line.startsWith(prefix)) {
                return Double.parseDouble(line.split("\\|")[4].trim());
            }
        }
        throw new AssertionError("no row " + prefix + " in\n" + table);
    }

    @Test
    void memoryBandwidthBenchmarkMethodsRun() {
        MemoryBandwidthBenchmark b = new MemoryBandwidthBenchmark();
        b.floats = 8192;
        b.setUp();
        LinearRtnBenchmark.Bytes bytes = new LinearRtnBenchmark.Bytes();
        // big[i] = i & 1023 over two blocks of 1024... eight times: 8 * (0 + 1 + ... + 1023)
        assertThat(b.read(bytes)).isEqualTo(8 * 1023 * 1024 / 2f);
        assertThat(b.write(bytes)[4097]).isEqualTo(0.5f);
        assertThat(bytes.floatBytes).isEqualTo(2L * 8192 * 4);
    }

    @Test
    void kernelBenchmarkMethodsRun() {
        KernelBenchmark b = new KernelBenchmark();
        b.group = 128;
        b.bits = 4;
        b.setUp();
        assertThat(b.allFinite()).isTrue();
        assertThat(b.minMax()).isNotZero();
        assertThat(b.quantizeVaryingScale()).hasSize(KernelBenchmark.N);
        byte[] codes = b.quantize().clone();
        assertThat(codes).contains((byte) 8); // zero-point 8: the codes of values near 0
        assertThat(b.dequantize()).hasSize(codes.length);
        byte[] packed = b.pack().clone();
        assertThat(b.unpack()).containsExactly(codes);
        assertThat(b.rowPipeline()).hasSameSizeAs(packed);
        assertThat(b.rowPipelineTwoPhase()).hasSameSizeAs(packed);
        assertThat(b.linearParams()).isPositive();
    }

    @Test
    void gptqAndGemmBenchmarkMethodsRun() {
        GptqBenchmark g = new GptqBenchmark();
        g.n = 256;
        g.setUp();
        assertThat(g.hessianBatch().tokens()).isEqualTo(2L * GptqBenchmark.TOKENS);
        g.bits = 4;
        assertThat(g.quantizePerChannel().tensor().rows()).isEqualTo(256);
        assertThat(g.quantizeG128ActOrder().tensor().scheme().groupSize()).isEqualTo(128);
        g.bits = 3;
        assertThat(g.quantizePerChannel().tensor().scheme().bits()).isEqualTo(3);
        GemmBenchmark m = new GemmBenchmark();
        m.setUp();
        GemmBenchmark.Flops f = new GemmBenchmark.Flops();
        float[] c = m.gemmVector(f).clone();
        assertThat(f.flops).isEqualTo(2L * GemmBenchmark.M * GemmBenchmark.N * GemmBenchmark.K);
        assertThat(c).isNotEqualTo(new float[c.length]);
    }

    @Test
    void prefillBenchmarkMethodsRunAndCountTheirFlops() {
        PrefillBenchmark.Product p = new PrefillBenchmark.Product();
        p.tokens = 20;
        p.shape = "24x40";
        p.setUp();
        try {
            PrefillBenchmark b = new PrefillBenchmark();
            PrefillBenchmark.Flops f = new PrefillBenchmark.Flops();
            assertThat(b.denseForward(p, f).rows()).isEqualTo(20);
            assertThat(f.flops).isEqualTo(2L * 20 * 24 * 40);
            f.reset();
            // every chain converges to 1: c' = 0.999 c + 0.001
            assertThat(b.peakFma(f))
                    .isCloseTo(12f * PrefillBenchmark.F.length(), org.assertj.core.data.Offset.offset(1e-2f));
            assertThat(f.flops)
                    .isEqualTo(2L * PrefillBenchmark.F.length() * PrefillBenchmark.CHAINS * PrefillBenchmark.FMA_STEPS);
        } finally {
            p.tearDown();
        }
    }

    @Test
    void gemvBenchmarkMethodsRunAndAgree() {
        GemvBenchmark b = new GemvBenchmark();
        b.shape = "96x512"; // Jlama's int8 kernel fails below 512 columns (reads past its Q8 block scales)
        b.threads = 2;
        b.workingSet = 1 << 20;
        b.setUp();
        try {
            float[] fp32 = b.fp32VectorGemv().clone();
            // every quantized product approximates the same W x: 4-bit weights (and int8 activations) keep the
            // output's direction (cosine > 0.99 for N(0, 0.02^2) weights and N(0, 1) activations)
            assertThat(cosine(fp32, b.int4G128Fused().clone())).isGreaterThan(0.99);
            assertThat(cosine(fp32, b.int4G128FusedInt8().clone())).isGreaterThan(0.99);
            // the per-width methods (their width comes from their fork's JVM options, not set here)
            assertThat(cosine(fp32, b.fp32VectorGemv256().clone())).isGreaterThan(0.99999);
            assertThat(cosine(fp32, b.fp32VectorGemv128().clone())).isGreaterThan(0.99999);
            assertThat(cosine(fp32, b.int4G128Fused256().clone())).isGreaterThan(0.99);
            assertThat(cosine(fp32, b.int4G128Fused128().clone())).isGreaterThan(0.99);
            assertThat(cosine(fp32, b.int4G128FusedScalar().clone())).isGreaterThan(0.99);
            assertThat(cosine(fp32, b.int8G128RowByRow().clone())).isGreaterThan(0.999);
            assertThat(cosine(fp32, b.nf4B64RowByRow().clone())).isGreaterThan(0.99);
            assertThat(cosine(fp32, jlama(b.jlamaQ4F32(), 96))).isGreaterThan(0.99);
            assertThat(cosine(fp32, jlama(b.jlamaQ4I8(), 96))).isGreaterThan(0.99);
            FloatMatrix y8 = b.int4G128Batch8();
            assertThat(y8.rows()).isEqualTo(8);
            float[] sums = b.streamRead();
            assertThat(Float.isFinite(sums[0])).isTrue();
        } finally {
            b.tearDown();
        }
    }

    private static float[] jlama(com.github.tjake.jlama.tensor.AbstractTensor y, int n) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = y.get(0, i);
        }
        return out;
    }

    private static double cosine(float[] a, float[] b) {
        double ab = 0;
        double aa = 0;
        double bb = 0;
        for (int i = 0; i < a.length; i++) {
            ab += (double) a[i] * b[i];
            aa += (double) a[i] * a[i];
            bb += (double) b[i] * b[i];
        }
        return ab / Math.sqrt(aa * bb);
    }

    /** The peers and ours compute the same things: float dot equal within rounding, codes in their ranges. */
    @Test
    void peersBenchmarkMethodsRunAndAgree() {
        PeersBenchmark p = new PeersBenchmark();
        p.n = 4096;
        p.setUp();
        double exact = 0;
        for (int i = 0; i < p.n; i++) {
            exact += (double) p.a[i] * p.b[i];
        }
        assertThat((double) p.floatDotQuant4j()).isCloseTo(exact, org.assertj.core.api.Assertions.within(1e-2));
        assertThat((double) p.floatDotLucene()).isCloseTo(exact, org.assertj.core.api.Assertions.within(1e-2));
        assertThat((double) p.floatDotPlainJava()).isCloseTo(exact, org.assertj.core.api.Assertions.within(1e-2));
        assertThat(p.int8DotLucene()).isEqualTo(p.int8DotPlainJava());
        assertThat(Float.isFinite(p.int4PackedTimesFloatG128Quant4j())).isTrue();
        assertThat(p.int4PackedDotLucene()).isNotNegative();
        p.scalarQuantize7bitLucene();
        assertThat(range(p.codes)).containsExactly(0, 127);
        p.scalarQuantize4bitLucene();
        assertThat(range(p.codes)).containsExactly(0, 15);
        // the smallest and the largest value map to the bottom and the top code
        assertThat(range(p.scalarQuantize8bitQuant4j())).containsExactly(0, 255);
        assertThat(range(p.scalarQuantize4bitQuant4j())).containsExactly(0, 15);
    }

    /** {min, max} of the codes read as unsigned bytes. */
    private static int[] range(byte[] codes) {
        int min = 255;
        int max = 0;
        for (byte c : codes) {
            min = Math.min(min, c & 0xFF);
            max = Math.max(max, c & 0xFF);
        }
        return new int[] {min, max};
    }

    @Test
    void awqBenchmarkMethodsRun() {
        AwqBenchmark a = new AwqBenchmark();
        a.n = 128;
        a.setUp();
        assertThat(a.statisticsBatch().tokens()).isEqualTo(AwqBenchmark.BATCH);
        a.bits = 4;
        assertThat(a.searchG128().lossCurve()).hasSize(20);
    }
}
