package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;

import dev.quant4j.awq.Awq;
import dev.quant4j.awq.AwqConfig;
import dev.quant4j.awq.AwqStatistics;
import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.kernel.Kernels;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Future;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.DisabledIfSystemProperty;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Every quantizer and the products give bit-identical results on 1, 2 and 8 threads, on real-sized layers; the same
 * instances give the single-threaded results when many threads call them at once; and each result's SHA-256 equals a
 * digest recorded here, which the build checks again with the scalar kernels and at 256 and 128 bits (the pom's
 * executions): the quantizers' digests are the same for every kernel set. The products are bit-identical across
 * thread counts only: a vector sum adds in another order than a scalar one. docs/reliability.md has the matrix.
 */
class DeterminismTest {

    private static final List<ForkJoinPool> POOLS =
            List.of(new ForkJoinPool(8), new ForkJoinPool(2), new ForkJoinPool(1));

    private static final FloatMatrix W = Gaussian.matrix("w", 11, 768, 768, 0.05);
    private static final FloatMatrix X = Gaussian.matrix("x", 12, 128, 768, 1.0);
    private static final FloatMatrix BATCH = Gaussian.matrix("batch", 14, 32, 768, 1.0);

    /** Quantizers: the same digest with every kernel set. */
    private static final Map<String, String> QUANTIZED = Map.of(
            "rtn asym 4 g128", "30af9789707da332",
            "rtn sym 3 per channel", "52e59520cd356251",
            "rtn signed 8 per tensor", "eb077aff6d62d172",
            "nf4 b64 double quant", "47d3e23afa7dfae9",
            "fp4 b64", "6765df44365fffa9",
            "gptq 4 g128 act-order", "772322cdfc7780b3",
            "awq 4 g128", "997e070e9fc6aaae");

    @AfterAll
    static void shutDown() {
        POOLS.forEach(ForkJoinPool::shutdown);
    }

    @Test
    @DisabledIfSystemProperty(named = "quant4j.determinism.kernels", matches = "true")
    void quantizersGiveTheSameBitsOnOneTwoAndEightThreads() {
        Map<String, String> got = new TreeMap<>();
        for (Map.Entry<String, Function<ForkJoinPool, QuantizedWeight>> m :
                quantizers().entrySet()) {
            List<String> digests = new ArrayList<>();
            for (ForkJoinPool pool : POOLS) {
                long start = System.nanoTime();
                digests.add(digest(m.getValue().apply(pool)));
                System.out.printf(
                        "DeterminismTest %s, %d threads: %d ms%n",
                        m.getKey(), pool.getParallelism(), (System.nanoTime() - start) / 1_000_000);
            }
            assertThat(digests).as(m.getKey()).containsOnly(digests.get(0));
            got.put(m.getKey(), digests.get(0));
        }
        assertThat(got)
                .as("digests with the " + Kernels.get().name() + " kernels")
                .isEqualTo(QUANTIZED);
    }

    /**
     * The build runs this alone (the others are off there) with the scalar kernels, and the Vector API at 256 and 128
     * bits: the pom's executions set {@code quant4j.determinism.kernels}.
     */
    @Test
    @EnabledIfSystemProperty(named = "quant4j.determinism.kernels", matches = "true")
    void quantizersGiveTheRecordedBitsWithEveryKernelSet() {
        Map<String, String> got = new TreeMap<>();
        quantizers().forEach((name, method) -> got.put(name, digest(method.apply(POOLS.get(1)))));
        assertThat(got)
                .as("digests with the " + Kernels.get().name() + " kernels")
                .isEqualTo(QUANTIZED);
    }

    private static Map<String, Function<ForkJoinPool, QuantizedWeight>> quantizers() {
        return Map.of(
                "rtn asym 4 g128",
                pool -> new RtnQuantizer(LinearScheme.asym(4, 128), pool).quantize(W),
                "rtn sym 3 per channel",
                pool -> new RtnQuantizer(LinearScheme.sym(3, -1), pool).quantize(W),
                "rtn signed 8 per tensor",
                pool -> new RtnQuantizer(LinearScheme.signed(8, 0), pool).quantize(W),
                // one thread by design: the digest still ties it to every kernel set
                "nf4 b64 double quant",
                pool -> new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant()).quantize(W),
                "fp4 b64",
                pool -> new BlockwiseQuantizer(CodebookScheme.fp4(64)).quantize(W),
                "gptq 4 g128 act-order",
                pool -> {
                    HessianAccumulator h = new HessianAccumulator("w", 768, pool);
                    h.add(X);
                    return new Gptq(GptqConfig.defaults(4).withGroupSize(128).withActOrder(true), pool)
                            .quantize(W, h)
                            .tensor();
                },
                "awq 4 g128",
                pool -> {
                    AwqStatistics s = new AwqStatistics("w", 768, X.rows(), pool);
                    s.add(X);
                    return new Awq(AwqConfig.defaults(4).withGroupSize(128), pool)
                            .quantize(W, s)
                            .tensor();
                });
    }

    @Test
    @DisabledIfSystemProperty(named = "quant4j.determinism.kernels", matches = "true")
    void productsGiveTheSameBitsOnOneTwoAndEightThreads() throws Exception {
        for (Map.Entry<String, QuantizedLinearFactory> p : products().entrySet()) {
            List<String> digests = new ArrayList<>();
            for (ForkJoinPool pool : POOLS) {
                QuantizedLinear fc = p.getValue().make(pool);
                digests.add(digest(
                        fc.forward(Arrays.copyOf(X.toArray(), 768)),
                        fc.forward(X).toArray()));
            }
            System.out.printf("DeterminismTest %s %s: %s%n", Kernels.get().name(), p.getKey(), digests.get(0));
            assertThat(digests).as(p.getKey()).containsOnly(digests.get(0));
        }
    }

    @FunctionalInterface
    interface QuantizedLinearFactory {
        QuantizedLinear make(ForkJoinPool pool);
    }

    private static Map<String, QuantizedLinearFactory> products() {
        QuantizedTensor int4 = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(W);
        QuantizedTensor int3 = new RtnQuantizer(LinearScheme.sym(3, 128)).quantize(W);
        CodebookTensor nf4 = new BlockwiseQuantizer(CodebookScheme.nf4(64)).quantize(W);
        float[] bias = Gaussian.samples(13, 768, 0.1);
        return Map.of(
                "int4 g128 fused", pool -> QuantizedLinear.of(int4, bias, pool),
                "int4 g128 int8 activations",
                        pool -> QuantizedLinear.of(int4, bias, pool).withInt8Activations(true),
                "int3 g128 row by row", pool -> QuantizedLinear.of(int3, bias, pool),
                "nf4 b64", pool -> QuantizedLinear.of(nf4, bias, pool));
    }

    @Test
    @DisabledIfSystemProperty(named = "quant4j.determinism.kernels", matches = "true")
    void manyThreadsCallingTheSameInstancesGetTheSingleThreadedResults() throws Exception {
        Map<String, QuantizedLinearFactory> products = products();
        List<Callable<String>> calls = new ArrayList<>();
        List<String> expected = new ArrayList<>();
        for (Map.Entry<String, QuantizedLinearFactory> p : products.entrySet()) {
            QuantizedLinear shared = p.getValue().make(ForkJoinPool.commonPool());
            QuantizedLinear alone = p.getValue().make(POOLS.get(2));
            for (int t = 0; t < 4; t++) {
                FloatMatrix x = Gaussian.matrix("x", 100 + t, 16, 768, 1.0);
                expected.add(digest(alone.forward(x)));
                calls.add(() -> digest(shared.forward(x)));
            }
        }
        RtnQuantizer rtn = new RtnQuantizer(LinearScheme.asym(4, 128), ForkJoinPool.commonPool());
        BlockwiseQuantizer nf4 = new BlockwiseQuantizer(CodebookScheme.nf4(64));
        Gptq gptq = new Gptq(GptqConfig.defaults(4).withGroupSize(128), ForkJoinPool.commonPool());
        HessianAccumulator h = new HessianAccumulator("w", 768, POOLS.get(2));
        h.add(X);
        for (int t = 0; t < 3; t++) {
            FloatMatrix w = Gaussian.matrix("w", 200 + t, 256, 768, 0.05);
            expected.add(digest(new RtnQuantizer(LinearScheme.asym(4, 128), POOLS.get(2)).quantize(w)));
            calls.add(() -> digest(rtn.quantize(w)));
            expected.add(digest(nf4.quantize(w)));
            calls.add(() -> digest(nf4.quantize(w)));
            expected.add(digest(new Gptq(GptqConfig.defaults(4).withGroupSize(128), POOLS.get(2))
                    .quantize(w, h)
                    .tensor()));
            calls.add(() -> digest(gptq.quantize(w, h).tensor()));
        }
        ExecutorService threads = Executors.newFixedThreadPool(8);
        try {
            List<String> got = new ArrayList<>();
            for (Future<String> f : threads.invokeAll(calls)) {
                got.add(f.get());
            }
            assertThat(got).isEqualTo(expected);
        } finally {
            threads.shutdown();
        }
    }

    private static String digest(QuantizedWeight q) {
        return hex(sha256().digest(QuantizedSafeTensors.toBytes(List.of(q), "m", List.of(), Set.of())));
    }

    private static String digest(float[]... outputs) {
        MessageDigest md = sha256();
        for (float[] o : outputs) {
            ByteBuffer b = ByteBuffer.allocate(4 * o.length);
            b.asFloatBuffer().put(o);
            md.update(b.array());
        }
        return hex(md.digest());
    }

    private static String digest(FloatMatrix m) {
        return digest(m.toArray());
    }

    private static String hex(byte[] digest) {
        return HexFormat.of().formatHex(digest, 0, 8);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new AssertionError(e);
        }
    }
}
