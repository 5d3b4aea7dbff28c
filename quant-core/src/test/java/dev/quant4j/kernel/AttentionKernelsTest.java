package dev.quant4j.kernel;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The attention kernel of this JVM (run once per vector width by the surefire executions) against the scalar
 * reference, and the reference against the definition computed in double: odd head widths, sequence lengths across
 * vector and query-block boundaries, grouped query heads, a cached prefix ({@code start > 0}), causal and not; on
 * hand-computed input; with scores far beyond float's {@code exp} range; and a prefill against a token-by-token run.
 */
class AttentionKernelsTest {

    private static final float U = 0x1p-24f;

    /** Inputs of one call: {@code group} query heads of width {@code d} interleaved with a gap, one key/value head. */
    private record Case(int n, int start, boolean causal, int d, int group, float[] q, float[] k, float[] v) {

        /** Padding of every row and offsets of the first, so that a kernel writing out of its range is seen. */
        static final int GAP = 3;

        static Case random(int n, int start, boolean causal, int d, int group, long seed) {
            SplittableRandom r = new SplittableRandom(seed);
            int keys = start + n;
            float[] q = new float[GAP + n * (group * d + GAP)];
            float[] k = new float[GAP + keys * (d + GAP)];
            float[] v = new float[GAP + keys * (d + GAP)];
            // queries three times as large as the keys: scores spread over a few units, a softmax far from uniform
            for (int i = 0; i < q.length; i++) {
                q[i] = (float) (3 * r.nextGaussian());
            }
            for (int i = 0; i < k.length; i++) {
                k[i] = (float) r.nextGaussian();
                v[i] = (float) r.nextGaussian();
            }
            return new Case(n, start, causal, d, group, q, k, v);
        }

        int ldq() {
            return group * d + GAP;
        }

        int ldkv() {
            return d + GAP;
        }

        int ldo() {
            return group * d + GAP;
        }

        int count(int i) {
            return causal ? start + i + 1 : start + n;
        }

        /** The outputs of {@code kernels}, in an array of guard values {@code 42} beside them. */
        float[] run(AttentionKernels kernels) {
            float[] out = new float[GAP + n * ldo()];
            Arrays.fill(out, 42f);
            float[] scratch = new float[AttentionKernels.attentionScratchSize(n, start, d)];
            kernels.attention(
                    n, start, causal, d, group, q, GAP, ldq(), k, GAP, v, GAP, ldkv(), out, GAP, ldo(), scratch);
            return out;
        }

        boolean isOutput(int index) {
            if (index < GAP) {
                return false;
            }
            int col = (index - GAP) % ldo();
            return col < group * d;
        }

        float maxAbsV() {
            float m = 0;
            for (float x : v) {
                m = Math.max(m, Math.abs(x));
            }
            return m;
        }

        /** The definition in double: softmax of {@code q . k / sqrt(d)}, then the weighted sum of values. */
        double[] definition(int i, int g) {
            int count = count(i);
            double[] s = new double[count];
            double max = Double.NEGATIVE_INFINITY;
            for (int t = 0; t < count; t++) {
                double dot = 0;
                for (int c = 0; c < d; c++) {
                    dot += (double) q[GAP + i * ldq() + g * d + c] * k[GAP + t * ldkv() + c];
                }
                s[t] = dot / Math.sqrt(d);
                max = Math.max(max, s[t]);
            }
            double sum = 0;
            for (int t = 0; t < count; t++) {
                s[t] = Math.exp(s[t] - max);
                sum += s[t];
            }
            double[] o = new double[d];
            for (int t = 0; t < count; t++) {
                for (int c = 0; c < d; c++) {
                    o[c] += s[t] / sum * v[GAP + t * ldkv() + c];
                }
            }
            return o;
        }

        /** The largest {@code sum_c |q_c k_c| / sqrt(d)} of query {@code i}, head {@code g}: what bounds a score's rounding. */
        double absScore(int i, int g) {
            double worst = 0;
            for (int t = 0; t < count(i); t++) {
                double a = 0;
                for (int c = 0; c < d; c++) {
                    a += Math.abs((double) q[GAP + i * ldq() + g * d + c] * k[GAP + t * ldkv() + c]);
                }
                worst = Math.max(worst, a / Math.sqrt(d));
            }
            return worst;
        }
    }

    static Stream<Arguments> shapes() {
        List<Arguments> list = new ArrayList<>();
        int[] dims = {1, 7, 8, 15, 16, 17, 64, 100, 128};
        int[] lengths = {1, 2, 31, 257};
        int[] groups = {1, 2, 4};
        int index = 0;
        for (int d : dims) {
            for (int n : lengths) {
                // every group size for every shape, a cached prefix for every other one
                int group = groups[index % groups.length];
                int start = index % 2 == 0 ? 0 : 1 + index % 37;
                list.add(Arguments.of(d, n, group, start));
                index++;
            }
        }
        return list.stream();
    }

    /**
     * The kernel of this JVM against the reference. Scores and value sums are the same chains of fused multiply-adds;
     * the exponentials (the vector kernel's polynomial against {@code Math.exp}) may differ by two ulps and the denominator by its order of summation ({@code count} roundings),
     * so each probability by a relative {@code (count + 4) 2^-24}; the value sums then differ by that times {@code
     * max|V|}, plus up to {@code count} roundings of each chain, each below {@code 2^-24 max|V|}:
     * {@code (3 count + 8) 2^-24 max|V|} with margin.
     */
    @ParameterizedTest(name = "d={0} n={1} group={2} start={3}")
    @MethodSource("shapes")
    void vectorKernelMatchesTheReference(int d, int n, int group, int start) {
        for (boolean causal : new boolean[] {true, false}) {
            Case c = Case.random(n, start, causal, d, group, 31L * d + 7L * n + group + start);
            float[] got = c.run(Kernels.get());
            float[] ref = c.run(Kernels.scalar());
            float maxV = c.maxAbsV();
            for (int idx = 0; idx < got.length; idx++) {
                if (!c.isOutput(idx)) {
                    assertThat(got[idx])
                            .as("outside the outputs, index %d", idx)
                            .isEqualTo(42f);
                    assertThat(ref[idx])
                            .as("outside the outputs, index %d", idx)
                            .isEqualTo(42f);
                    continue;
                }
                int i = (idx - Case.GAP) / c.ldo();
                double tol = (3.0 * c.count(i) + 8) * U * maxV;
                assertThat((double) got[idx])
                        .as("%s causal=%b index %d (query %d)", Kernels.get().name(), causal, idx, i)
                        .isCloseTo(ref[idx], within(tol));
            }
        }
    }

    /**
     * The reference against the definition in double. A float score is off by at most {@code d 2^-24} times {@code
     * sum |q_c k_c| / sqrt(d)} (a chain of {@code d} fused multiply-adds, then a division); two scores' errors change a
     * probability by a factor {@code exp(2 e)}; the float softmax and the value sum add the {@code (3 count + 8)
     * 2^-24} of the test above.
     */
    @ParameterizedTest(name = "d={0} n={1} group={2} start={3}")
    @MethodSource("shapes")
    void referenceMatchesTheDefinition(int d, int n, int group, int start) {
        Case c = Case.random(n, start, true, d, group, 5L * d + n + group + start);
        float[] ref = c.run(Kernels.scalar());
        float maxV = c.maxAbsV();
        for (int i = 0; i < n; i++) {
            for (int g = 0; g < group; g++) {
                double[] want = c.definition(i, g);
                double scoreError = (d + 2) * U * c.absScore(i, g);
                double tol = (Math.expm1(2 * scoreError) + (3.0 * c.count(i) + 8) * U) * maxV;
                for (int col = 0; col < d; col++) {
                    assertThat((double) ref[Case.GAP + i * c.ldo() + g * d + col])
                            .as("query %d head %d column %d", i, g, col)
                            .isCloseTo(want[col], within(tol));
                }
            }
        }
    }

    /**
     * A prefill and a token-by-token run over a cache give the same bits: a query's output depends only on what it
     * sees, not on how the sequence was split into calls (nor on the query blocks of the vector kernel).
     */
    @ParameterizedTest(name = "d={0}")
    @org.junit.jupiter.params.provider.ValueSource(ints = {7, 64, 100})
    void prefillEqualsTokenByTokenBitForBit(int d) {
        int n = 70;
        int group = 2;
        Case whole = Case.random(n, 0, true, d, group, 99L + d);
        for (AttentionKernels kernels : new AttentionKernels[] {Kernels.get(), Kernels.scalar()}) {
            float[] all = whole.run(kernels);
            for (int i = 0; i < n; i++) {
                // query i alone, with the i keys before it as the cached prefix
                float[] q = Arrays.copyOfRange(whole.q(), i * whole.ldq(), (i + 1) * whole.ldq() + Case.GAP);
                Case one = new Case(1, i, true, d, group, q, whole.k(), whole.v());
                float[] single = one.run(kernels);
                for (int col = 0; col < group * d; col++) {
                    assertThat(Float.floatToRawIntBits(single[Case.GAP + col]))
                            .as("%s query %d column %d", kernels, i, col)
                            .isEqualTo(Float.floatToRawIntBits(all[Case.GAP + i * whole.ldo() + col]));
                }
            }
        }
    }

    /**
     * Hand-computed: head width 4 (so {@code sqrt(d) = 2}), two keys with scores 0 and {@code ln 3}, so probabilities
     * 1/4 and 3/4; causal, the first query sees only the first key.
     */
    @Test
    void tinyInputByHand() {
        float ln3 = (float) Math.log(3);
        float[] q = {1, 0, 0, 0, 1, 0, 0, 0};
        float[] k = {0, 0, 0, 0, 2 * ln3, 0, 0, 0};
        float[] v = {4, 0, 8, -4, 0, 4, 0, 4};
        for (AttentionKernels kernels : new AttentionKernels[] {Kernels.get(), Kernels.scalar()}) {
            float[] out = new float[8];
            kernels.attention(2, 0, true, 4, 1, q, 0, 4, k, 0, v, 0, 4, out, 0, 4, new float[1000]);
            assertThat(Arrays.copyOfRange(out, 0, 4))
                    .as("%s first query", kernels)
                    .containsExactly(4, 0, 8, -4);
            assertThat(Arrays.copyOfRange(out, 4, 8))
                    .as("%s second query", kernels)
                    .containsExactly(new float[] {1, 3, 2, 2}, within(4e-7f));
            // not causal: the first query sees both keys as well
            kernels.attention(2, 0, false, 4, 1, q, 0, 4, k, 0, v, 0, 4, out, 0, 4, new float[1000]);
            assertThat(Arrays.copyOfRange(out, 0, 4))
                    .as("%s first query, not causal", kernels)
                    .containsExactly(new float[] {1, 3, 2, 2}, within(4e-7f));
        }
    }

    /**
     * Scores of {@code +-10^6}, whose exponentials overflow or vanish in float (and in double): the maximum is
     * subtracted first, so the largest score gets probability 1 (or the tied largest ones 1/2 each) and every output
     * is finite.
     */
    @Test
    void hugeAndTinyScoresDoNotOverflow() {
        int d = 16;
        float[] v = new float[4 * d];
        for (int i = 0; i < v.length; i++) {
            v[i] = i - 20;
        }
        for (float sign : new float[] {1, -1}) {
            float[] q = new float[d];
            q[0] = 1000f * sign;
            // scores (1000 * key[0]) / 4: key 2 is the largest for sign 1, key 1 for sign -1
            float[] k = new float[4 * d];
            k[0] = 4000;
            k[d] = -4000;
            k[2 * d] = 8000;
            k[3 * d] = 0;
            int best = sign > 0 ? 2 : 1;
            for (AttentionKernels kernels : new AttentionKernels[] {Kernels.get(), Kernels.scalar()}) {
                float[] out = new float[d];
                kernels.attention(1, 3, true, d, 1, q, 0, d, k, 0, v, 0, d, out, 0, d, new float[4096]);
                assertThat(out)
                        .as("%s sign %s", kernels, sign)
                        .containsExactly(Arrays.copyOfRange(v, best * d, best * d + d));
            }
            // two keys tied at the largest score: their values averaged
            k[3 * d] = k[best * d];
            for (AttentionKernels kernels : new AttentionKernels[] {Kernels.get(), Kernels.scalar()}) {
                float[] out = new float[d];
                kernels.attention(1, 3, true, d, 1, q, 0, d, k, 0, v, 0, d, out, 0, d, new float[4096]);
                for (int c = 0; c < d; c++) {
                    assertThat(out[c])
                            .as("%s sign %s column %d", kernels, sign, c)
                            .isCloseTo((v[best * d + c] + v[3 * d + c]) / 2, within(1e-5f));
                }
            }
        }
    }
}
