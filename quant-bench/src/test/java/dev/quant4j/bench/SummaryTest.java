package dev.quant4j.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

class SummaryTest {

    @Test
    void jmhJsonBecomesAMarkdownRow() throws Exception {
        String json = """
                [{"benchmark": "dev.quant4j.bench.LinearRtnBenchmark.quantizeVector",
                  "params": {"bits": "4", "shape": "128x2048"},
                  "primaryMetric": {"score": 8403.25, "scoreError": 512.0, "scoreUnit": "ops/s"},
                  "secondaryMetrics": {"floatBytes": {"score": 8811380736.0, "scoreError": 536870912.0,
                                                      "scoreUnit": "ops/s"}}}]
                """;
        // 8811380736 / 2^30 = 8.206..., 536870912 / 2^30 = 0.5
        assertThat(Summary.markdown(json))
                .contains("| LinearRtnBenchmark.quantizeVector | bits=4, shape=128x2048 | 8403 | 5.1e+02 | ops/s |"
                        + " 8.21 ± 0.50 |");
    }

    /** Two measured iterations: JMH writes NaN for the error; the table says n/a. */
    @Test
    void noConfidenceIntervalIsNotANumber() throws Exception {
        String json = """
                [{"benchmark": "dev.quant4j.bench.GemvBenchmark.int4G128Fused",
                  "params": {"shape": "4096x4096", "threads": "1"},
                  "primaryMetric": {"score": 2.43, "scoreError": "NaN", "scoreUnit": "ms/op"},
                  "secondaryMetrics": {"floatBytes": {"score": 1073741824.0, "scoreError": "NaN",
                                                      "scoreUnit": "ops/s"}}}]
                """;
        assertThat(Summary.markdown(json))
                .contains("| GemvBenchmark.int4G128Fused | shape=4096x4096, threads=1 | 2.430 | n/a | ms/op | 1.00 |")
                .doesNotContain("NaN");
    }

    @Test
    void notJmhOutputIsRejected() {
        assertThatThrownBy(() -> Summary.markdown("{\"a\": 1}")).hasMessageContaining("not a JMH JSON result");
    }
}
