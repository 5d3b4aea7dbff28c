package dev.quant4j.bench;

import dev.quant4j.scheme.CodebookScheme;
import dev.quant4j.scheme.LinearScheme;
import dev.quant4j.scheme.QuantScheme;
import dev.quant4j.study.BitWidthStudy;
import dev.quant4j.tensor.FloatMatrix;
import dev.quant4j.tensor.Gaussian;
import java.util.List;
import java.util.Locale;

/**
 * The benchmark's error output, as Markdown: (a) the research note's study, every linear form at 2, 3, 4, 6 and 8 bits
 * per channel and per group of 128, plus NF4 and FP4, on the built-in weights of {@code quant report} (1024 x 1024 of
 * N(0, 0.15^2), SplitMix64 seed 42); (b) error per method at comparable bits per weight on 4M N(0, 1) values
 * (SplitMix64 seed 42, Box-Muller cosine branch; the first values are 0.8822489 and -0.4508499), laid out as a 1024 x
 * 4096 matrix, so that the figures line up with llama.cpp's published error per quantization type. (c), real
 * weights, is {@code quant report --in model.onnx}. Uses the same code as {@code quant report} ({@link
 * BitWidthStudy}), so the two never disagree; {@code ./bench} runs it after the JMH suite and appends its tables to
 * the summary.
 *
 * <p>Run: {@code java -cp quant-bench/target/benchmarks.jar dev.quant4j.bench.ErrorStudy} (JDK 25).
 */
public final class ErrorStudy {

    private ErrorStudy() {}

    /** The study's data. */
    public static FloatMatrix data() {
        return Gaussian.matrix("N(0,1)", 42, 1024, 4096, 1.0);
    }

    /** The schemes of (a): the note's linear settings, NF4 and FP4. */
    public static List<QuantScheme> noteSchemes() {
        List<QuantScheme> schemes = new java.util.ArrayList<>(BitWidthStudy.noteSchemes());
        schemes.addAll(BitWidthStudy.codebookSchemes());
        return schemes;
    }

    /** The methods compared. */
    public static List<QuantScheme> schemes() {
        return List.of(
                CodebookScheme.nf4(64),
                CodebookScheme.nf4(64).withDoubleQuant(),
                CodebookScheme.fp4(64),
                LinearScheme.asym(4, 64),
                LinearScheme.asym(4, 128),
                LinearScheme.sym(4, 64),
                LinearScheme.signed(4, 32),
                LinearScheme.signed(8, 32));
    }

    /** The Markdown table. */
    public static String table(List<BitWidthStudy.Row> rows) {
        StringBuilder b =
                new StringBuilder("| method | granularity | bits/weight | RMSE | SQNR (dB) | max abs | MSE | MAE |\n");
        b.append("|---|---|---:|---:|---:|---:|---:|---:|\n");
        for (BitWidthStudy.Row r : rows) {
            String method = r.scheme() instanceof LinearScheme l ? "linear " + l.bits() + "-bit " + r.form() : r.form();
            if (r.scheme() instanceof CodebookScheme c && c.doubleQuant()) {
                method += " + double quant";
            }
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %s | %.3f | %.4f | %.2f | %.3f | %.3e | %.3e |%n",
                    method,
                    r.granularity(),
                    r.bitsPerWeight(),
                    r.metrics().rmse(),
                    r.metrics().sqnrDb(),
                    r.metrics().maxAbs(),
                    r.metrics().mse(),
                    r.metrics().mae()));
        }
        return b.toString();
    }

    public static void main(String[] args) {
        System.out.println("## Error (a): the research note's weights, 1024 x 1024 of N(0, 0.15^2)\n");
        System.out.println(table(BitWidthStudy.run(List.of(BitWidthStudy.noteWeights()), noteSchemes())));
        System.out.println("## Error (b): 4M N(0, 1) values, SplitMix64 seed 42, Box-Muller\n");
        System.out.print(table(BitWidthStudy.run(List.of(data()), schemes())));
    }
}
