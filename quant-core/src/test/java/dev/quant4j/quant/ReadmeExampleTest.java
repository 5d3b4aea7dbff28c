package dev.quant4j.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.codebook.BlockwiseQuantizer;
import dev.quant4j.codebook.CodebookTensor;
import dev.quant4j.gptq.Gptq;
import dev.quant4j.gptq.GptqConfig;
import dev.quant4j.gptq.GptqResult;
import dev.quant4j.gptq.HessianAccumulator;
import dev.quant4j.io.Npy;
import dev.quant4j.io.QuantizedSafeTensors;
import dev.quant4j.linear.RtnQuantizer;
import dev.quant4j.matmul.QuantizedLinear;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's API example, verbatim between the markers, so that it keeps compiling and working. */
class ReadmeExampleTest {

    @TempDir
    Path dir;

    @Test
    void readmeExampleRuns() throws Exception {
        Npy.write(dir.resolve("W.npy"), Gaussian.matrix("W", 42, 64, 256, 0.15));
        Path wPath = dir.resolve("W.npy");
        Path qPath = dir.resolve("q.safetensors");
        Path xPath = dir.resolve("X.npy");
        Npy.write(xPath, Gaussian.matrix("X", 7, 512, 256, 1.0));
        // README example begins
        FloatMatrix w = Npy.readMatrix(wPath); // [out, in] float32
        QuantizedTensor q = new RtnQuantizer(LinearScheme.asym(4, 128)) // 4-bit, group of 128 columns
                .quantize(w); // validates: NaN/Inf, shape, group size
        ErrorMetrics e = ErrorMetrics.compare(w, q.dequantize()); // MSE, MAE, max abs, SQNR, cosine
        QuantizedSafeTensors.write(qPath, List.of(q), "rtn", List.of());
        CodebookTensor nf4 = new BlockwiseQuantizer(CodebookScheme.nf4(64).withDoubleQuant()) // bitsandbytes NF4
                .quantize(w);
        HessianAccumulator h = new HessianAccumulator("fc1", w.cols()); // GPTQ: H = 2/n X^T X, X streamed
        h.add(Npy.readMatrix(xPath)); // calibration activations [tokens, in]
        GptqResult g = new Gptq(GptqConfig.defaults(4).withGroupSize(128).withActOrder(true)).quantize(w, h);
        // README example ends
        float[] bias = new float[q.rows()];
        float[] x = Gaussian.samples(3, q.cols(), 1.0);
        // README matmul example begins
        QuantizedLinear fc = QuantizedLinear.of(q, bias, ForkJoinPool.commonPool()); // also NF4/FP4, GPTQ, AWQ
        float[] y = fc.forward(x); // y = W x + bias, rows in parallel
        float[] y8 = fc.withInt8Activations(true).forward(x); // x rounded to int8 per group: faster, ~0.6% change
        // README matmul example ends
        assertThat(y8).hasSize(64);
        assertThat(y).hasSize(64);
        double y0 = 0;
        for (int c = 0; c < q.cols(); c++) {
            y0 += (double) q.value(0, c) * x[c];
        }
        assertThat((double) y[0]).isCloseTo(y0, within(1e-3));
        assertThat(nf4.bitsPerWeight()).isCloseTo(4.127, org.assertj.core.api.Assertions.within(0.01));
        assertThat(e.sqnrDb()).isBetween(18.0, 22.0);
        assertThat(g.tensor().hasGIdx()).isTrue();
        assertThat(h.outputError(w, g.tensor().dequantize())).isLessThan(h.outputError(w, q.dequantize()));
        assertThat(QuantizedSafeTensors.read(qPath).quantized()).containsEntry("W", q);
    }
}
