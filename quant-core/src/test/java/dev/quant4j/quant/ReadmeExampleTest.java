package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.GptqResult;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's API example: the method between the markers below is the README's code block, line for line (checked
 * by {@link #theReadmeShowsThisCode()}), so the README's code compiles as written and runs.
 */
class ReadmeExampleTest {

    @TempDir
    Path dir;

    // README example begins
    static void quantizeLayer(Path wPath, Path xPath, Path qPath) throws IOException {
        FloatMatrix w = Npy.readMatrix(wPath); // [out, in] float32
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)) // 4-bit, groups of 128 columns
                .quantize(w); // validates: NaN/Inf, shape, group size
        ErrorMetrics e = ErrorMetrics.compare(w, q.dequantize()); // MSE, MAE, max abs, SQNR, cosine
        QuantizedSafeTensors.write(qPath, List.of(q), "rtn", List.of()); // quant4j's own .safetensors layout
        CodebookTensor nf4 = new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant()) // bitsandbytes NF4
                .quantize(w); // 4.127 bits per weight
        HessianAccumulator h = new HessianAccumulator("fc1", w.cols()); // GPTQ: H = 2/n X^T X, X streamed
        h.add(Npy.readMatrix(xPath)); // calibration activations [tokens, in]
        GptqResult g = new Gptq(GptqConfig.defaults(4).withGroupSize(128).withActOrder(true)).quantize(w, h);

        float[] bias = new float[w.rows()]; // the layer's bias
        float[] x = new float[w.cols()]; // one input vector
        QuantizedLinear fc = QuantizedLinear.of(g.tensor(), bias, ForkJoinPool.commonPool()); // also RTN, NF4, AWQ
        float[] y = fc.forward(x); // y = W x + bias, rows in parallel
        float[] y8 = fc.withInt8Activations(true).forward(x); // x as int8 per group: faster, ~0.6% off
        System.out.printf("SQNR %.1f dB, NF4 %.3f bits/weight, y[0] %f%n", e.sqnrDb(), nf4.bitsPerWeight(), y[0]);
    }
    // README example ends

    @Test
    void readmeExampleRuns() throws Exception {
        Path wPath = dir.resolve("W.npy");
        Path xPath = dir.resolve("X.npy");
        Path qPath = dir.resolve("q.safetensors");
        FloatMatrix w = Gaussian.matrix("W", 42, 64, 256, 0.15);
        Npy.write(wPath, w);
        Npy.write(xPath, Gaussian.matrix("X", 7, 512, 256, 1.0));
        quantizeLayer(wPath, xPath, qPath);
        // what it computed, again, with the figures the comments state
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)).quantize(w);
        assertThat(QuantizedSafeTensors.read(qPath).weights()).containsEntry("W", q);
        assertThat(ErrorMetrics.compare(w, q.dequantize()).sqnrDb()).isBetween(18.0, 22.0);
        CodebookTensor nf4 = new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant()).quantize(w);
        assertThat(nf4.bitsPerWeight()).isCloseTo(4.127, within(0.01));
        HessianAccumulator h = new HessianAccumulator("fc1", w.cols());
        h.add(Npy.readMatrix(xPath));
        GptqResult g = new Gptq(GptqConfig.defaults(4).withGroupSize(128).withActOrder(true)).quantize(w, h);
        assertThat(g.tensor().hasGIdx()).isTrue();
        assertThat(h.outputError(w, g.tensor().dequantize())).isLessThan(h.outputError(w, q.dequantize()));
        float[] x = Gaussian.samples(3, w.cols(), 1.0);
        float[] y = QuantizedLinear.of(g.tensor(), new float[w.rows()], ForkJoinPool.commonPool())
                .forward(x);
        double y0 = 0;
        for (int c = 0; c < w.cols(); c++) {
            y0 += (double) g.tensor().value(0, c) * x[c];
        }
        assertThat((double) y[0]).isCloseTo(y0, within(1e-3));
    }

    /** The README's first {@code java} block after "## API" holds the imports and then exactly the method above. */
    @Test
    void theReadmeShowsThisCode() throws Exception {
        String readme = Files.readString(Path.of("..", "README.md"), StandardCharsets.UTF_8);
        Matcher block = Pattern.compile("## API\\n.*?```java\\n(.*?)```", Pattern.DOTALL)
                .matcher(readme);
        assertThat(block.find()).as("README has a java block under ## API").isTrue();
        String source = Files.readString(
                Path.of("src/test/java/dev/quant4j/quant/ReadmeExampleTest.java"), StandardCharsets.UTF_8);
        String method = source.substring(
                source.indexOf("// README example begins\n") + "// README example begins\n".length(),
                source.indexOf("    // README example ends"));
        String readmeCode = block.group(1);
        String expected = method.lines()
                .map(l -> l.startsWith("    ") ? l.substring(4) : l)
                .reduce("", (a, b) -> a + b + "\n");
        assertThat(readmeCode).endsWith(expected);
        // every class the method uses is imported in the block
        for (String imported : List.of(
                "dev.quant4j.codebook.BlockwiseQuantizer",
                "dev.quant4j.quant.CodebookTensor",
                "dev.quant4j.gptq.Gptq",
                "dev.quant4j.gptq.GptqConfig",
                "dev.quant4j.gptq.GptqResult",
                "dev.quant4j.gptq.HessianAccumulator",
                "dev.quant4j.io.Npy",
                "dev.quant4j.io.QuantizedSafeTensors",
                "dev.quant4j.linear.RtnQuantizer",
                "dev.quant4j.matmul.QuantizedLinear",
                "dev.quant4j.scheme.CodebookScheme",
                "dev.quant4j.quant.ErrorMetrics",
                "dev.quant4j.scheme.LinearScheme",
                "dev.quant4j.quant.QuantizedTensor",
                "dev.quant4j.tensor.FloatMatrix",
                "java.io.IOException",
                "java.nio.file.Path",
                "java.util.List",
                "java.util.concurrent.ForkJoinPool")) {
            assertThat(readmeCode).contains("import " + imported + ";");
        }
    }
}
