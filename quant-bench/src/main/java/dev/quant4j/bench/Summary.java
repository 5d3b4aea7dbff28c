package dev.quant4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;

/**
 * Turns a JMH JSON result file into a Markdown table: benchmark, parameters, score with its error and unit, and the
 * {@code floatBytes} secondary result in GiB/s where there is one.
 *
 * <p>Run: {@code java -cp quant-bench/target/benchmarks.jar dev.quant4j.bench.Summary results.json results.md}.
 */
public final class Summary {

    private Summary() {}

    public static void main(String[] args) throws IOException {
        if (args.length != 2) {
            System.err.println("usage: Summary <jmh-results.json> <summary.md>");
            System.exit(2);
        }
        String md = markdown(Files.readString(Path.of(args[0]), StandardCharsets.UTF_8));
        Files.writeString(Path.of(args[1]), md, StandardCharsets.UTF_8);
        System.out.print(md);
    }

    /** The Markdown table for JMH's JSON output. */
    public static String markdown(String json) throws IOException {
        JsonNode root = new ObjectMapper().readTree(json);
        if (root == null || !root.isArray()) {
            throw new IllegalArgumentException("not a JMH JSON result (expected an array of benchmarks)");
        }
        StringBuilder b = new StringBuilder();
        b.append("| benchmark | parameters | score | error | unit | GiB/s of float32 |\n");
        b.append("|---|---|---:|---:|---|---:|\n");
        for (JsonNode run : root) {
            String name = run.path("benchmark").asText();
            name = name.substring(name.lastIndexOf('.', name.lastIndexOf('.') - 1) + 1);
            StringBuilder params = new StringBuilder();
            Iterator<Map.Entry<String, JsonNode>> it = run.path("params").fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> p = it.next();
                if (params.length() > 0) {
                    params.append(", ");
                }
                params.append(p.getKey()).append('=').append(p.getValue().asText());
            }
            JsonNode primary = run.path("primaryMetric");
            JsonNode bytes = run.path("secondaryMetrics").path("floatBytes");
            // JMH gives no confidence interval below three measured iterations (its error is NaN): say n/a
            double gibError = bytes.path("scoreError").asDouble() / (1 << 30);
            String gib = bytes.isMissingNode()
                    ? ""
                    : String.format(Locale.ROOT, "%.2f", bytes.path("score").asDouble() / (1 << 30))
                            + (Double.isNaN(gibError) ? "" : String.format(Locale.ROOT, " ± %.2f", gibError));
            double error = primary.path("scoreError").asDouble();
            b.append(String.format(
                    Locale.ROOT,
                    "| %s | %s | %.4g | %s | %s | %s |%n",
                    name,
                    params,
                    primary.path("score").asDouble(),
                    Double.isNaN(error) ? "n/a" : String.format(Locale.ROOT, "%.2g", error),
                    primary.path("scoreUnit").asText(),
                    gib));
        }
        return b.toString();
    }
}
