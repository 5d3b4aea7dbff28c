package dev.quant4j.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import dev.quant4j.tensor.FloatMatrix;
import org.junit.jupiter.api.Test;

/** The statistics against hand-computed values. */
class NextTokenMetricsTest {

    @Test
    void klTopOneAndPerplexityOfTwoTokenDistributions() {
        // reference: P = (e^1, e^0)/Z at both positions; quantized: uniform, then P reversed
        float[] ref = {1, 0, 1, 0};
        float[] q = {0, 0, 0, 1};
        NextTokenMetrics m = new NextTokenMetrics();
        m.add(new int[] {0, 1}, FloatMatrix.of(2, 2, ref), FloatMatrix.of(2, 2, q));
        NextTokenMetrics.Summary s = m.summary();
        double p = Math.E / (Math.E + 1);
        double kl0 = p * Math.log(p / 0.5) + (1 - p) * Math.log((1 - p) / 0.5);
        double kl1 = p * Math.log(p / (1 - p)) + (1 - p) * Math.log((1 - p) / p);
        assertThat(s.tokens()).isEqualTo(2);
        assertThat(s.klMean()).isCloseTo((kl0 + kl1) / 2, within(1e-12));
        assertThat(s.klMax()).isCloseTo(kl1, within(1e-12));
        assertThat(s.klP99()).isCloseTo(kl1, within(1e-12));
        // position 0 ties (argmax 0 for both); position 1 disagrees
        assertThat(s.top1()).isEqualTo(0.5);
        // only position 0 has a next token (id 1): P(1) = 1 - p, Q(1) = 0.5
        assertThat(s.pplReference()).isCloseTo(1 / (1 - p), within(1e-12));
        assertThat(s.pplQuantized()).isCloseTo(2, within(1e-12));
    }

    @Test
    void identicalLogitsHaveNoDivergence() {
        float[] l = {3, -1, 0.5f, 2, 2, 2};
        NextTokenMetrics m = new NextTokenMetrics();
        for (int i = 0; i < 300; i++) {
            m.add(new int[] {0, 2}, FloatMatrix.of(2, 3, l), FloatMatrix.of(2, 3, l.clone()));
        }
        NextTokenMetrics.Summary s = m.summary();
        assertThat(s.tokens()).isEqualTo(600);
        assertThat(s.klMax()).isEqualTo(0);
        assertThat(s.top1()).isEqualTo(1);
        assertThat(s.pplQuantized()).isEqualTo(s.pplReference());
    }

    @Test
    void mismatchedShapesAndEmptyAreErrors() {
        NextTokenMetrics m = new NextTokenMetrics();
        assertThatThrownBy(m::summary).hasMessage("no tokens added");
        assertThatThrownBy(() ->
                        m.add(new int[] {0}, FloatMatrix.of(1, 2, new float[2]), FloatMatrix.of(1, 3, new float[3])))
                .hasMessageContaining("do not match");
    }

    @Test
    void samplerDrawsByCumulativeProbability() {
        float[] logits = {0, 0, (float) Math.log(2)}; // probabilities 1/4, 1/4, 1/2
        assertThat(TokenSampler.draw(logits, 1, 0.0)).isEqualTo(0);
        assertThat(TokenSampler.draw(logits, 1, 0.26)).isEqualTo(1);
        assertThat(TokenSampler.draw(logits, 1, 0.51)).isEqualTo(2);
        assertThat(TokenSampler.draw(logits, 1, 0.999999)).isEqualTo(2);
    }
}
