package dev.quant4j.gptq;

import dev.quant4j.linear.LinearParams;
import dev.quant4j.scheme.LinearScheme;
import java.util.Arrays;

/**
 * An independent GPTQ written from the paper's equations (Frantar et al. 2023, Section 3 and Algorithm 1 without lazy
 * batching): one column at a time, every update applied at once, everything in double except the quantizer's scale
 * and zero-point (float32, as the reference computes them). {@code Hinv} comes from its own Cholesky route in double.
 *
 * <p>The reference takes a group's parameters from the weights as they stood at the last block boundary; lazy batching
 * is exact, so here that is a snapshot of {@code W} taken every {@code blocksize} columns.
 */
final class TextbookGptq {

    final int[][] codes; // [rows][columns], original column order
    final double[][] q; // dequantized weight, original column order
    final double loss;
    /** Quantization order: {@code perm[i]} is the i-th column quantized. */
    final int[] perm;
    /** Distance of {@code w / scale} from the nearest rounding boundary (a half-integer), in steps. */
    final double[][] tieDistance;

    TextbookGptq(float[] w, int rows, int columns, double[] h, GptqConfig config) {
        LinearScheme scheme = config.scheme();
        int maxq = scheme.maxq();
        int groupsize = config.groupSize();
        double[][] W = new double[rows][columns];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < columns; c++) {
                W[r][c] = w[r * columns + c];
            }
        }
        double[][] H = new double[columns][columns];
        for (int i = 0; i < columns; i++) {
            for (int j = 0; j < columns; j++) {
                H[i][j] = h[i * columns + j];
            }
        }
        LinearParams[] params = new LinearParams[rows];
        if (groupsize == -1) {
            for (int r = 0; r < rows; r++) {
                params[r] = paramsOf(scheme, W[r], 0, columns);
            }
        }
        for (int i = 0; i < columns; i++) {
            if (H[i][i] == 0) {
                H[i][i] = 1;
                for (int r = 0; r < rows; r++) {
                    W[r][i] = 0;
                }
            }
        }
        LinearParams[][] staticGroups = null;
        if (groupsize > 0 && config.staticGroups()) {
            staticGroups = new LinearParams[rows][columns / groupsize];
            for (int r = 0; r < rows; r++) {
                for (int g = 0; g < columns / groupsize; g++) {
                    staticGroups[r][g] = paramsOf(scheme, W[r], g * groupsize, (g + 1) * groupsize);
                }
            }
        }
        Integer[] permBoxed = new Integer[columns];
        Arrays.setAll(permBoxed, i -> i);
        if (config.actOrder()) {
            double[][] hh = H;
            Arrays.sort(permBoxed, (a, b) -> Double.compare(hh[b][b], hh[a][a]));
        }
        perm = Arrays.stream(permBoxed).mapToInt(Integer::intValue).toArray();
        tieDistance = new double[rows][columns];
        double[][] Wp = new double[rows][columns];
        double[][] Hp = new double[columns][columns];
        for (int i = 0; i < columns; i++) {
            for (int r = 0; r < rows; r++) {
                Wp[r][i] = W[r][perm[i]];
            }
            for (int j = 0; j < columns; j++) {
                Hp[i][j] = H[perm[i]][perm[j]];
            }
        }
        double mean = 0;
        for (int i = 0; i < columns; i++) {
            mean += Hp[i][i];
        }
        float damp = (float) (config.percdamp() * mean / columns);
        for (int i = 0; i < columns; i++) {
            Hp[i][i] += damp;
        }
        double[][] U = upperFactorOfInverse(Hp);

        codes = new int[rows][columns];
        q = new double[rows][columns];
        double total = 0;
        double[][] snapshot = null;
        for (int col = 0; col < columns; col++) {
            if (col % config.blocksize() == 0) {
                snapshot = new double[rows][];
                for (int r = 0; r < rows; r++) {
                    snapshot[r] = Wp[r].clone();
                }
            }
            for (int r = 0; r < rows; r++) {
                if (groupsize > 0) {
                    if (staticGroups != null) {
                        params[r] = staticGroups[r][perm[col] / groupsize];
                    } else if (col % groupsize == 0) {
                        params[r] = paramsOf(scheme, snapshot[r], col, col + groupsize);
                    }
                }
                LinearParams p = params[r];
                float x = (float) Wp[r][col];
                float ratio = x / p.scale();
                tieDistance[r][perm[col]] = Math.abs(Math.abs(ratio - Math.floor(ratio)) - 0.5);
                int code = (int) Math.min(Math.max(Math.rint(x / p.scale()) + p.zero(), 0), maxq);
                double value = p.dequantize(code);
                codes[r][perm[col]] = code;
                q[r][perm[col]] = value;
                double err = (Wp[r][col] - value) / U[col][col];
                total += err * err / 2;
                for (int j = col + 1; j < columns; j++) {
                    Wp[r][j] -= err * U[col][j];
                }
            }
        }
        loss = total;
    }

    static LinearParams paramsOf(LinearScheme scheme, double[] row, int c0, int c1) {
        float min = (float) row[c0];
        float max = (float) row[c0];
        for (int c = c0 + 1; c < c1; c++) {
            min = Math.min(min, (float) row[c]);
            max = Math.max(max, (float) row[c]);
        }
        return LinearParams.of(scheme, min, max);
    }

    /** cholesky(cholesky_inverse(cholesky(H)), upper=True), literally, in double. */
    static double[][] upperFactorOfInverse(double[][] H) {
        int n = H.length;
        double[][] L = cholesky(H);
        double[][] Li = new double[n][n];
        for (int j = 0; j < n; j++) {
            for (int i = j; i < n; i++) {
                double s = i == j ? 1 : 0;
                for (int t = j; t < i; t++) {
                    s -= L[i][t] * Li[t][j];
                }
                Li[i][j] = s / L[i][i];
            }
        }
        double[][] Hinv = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int t = Math.max(i, j); t < n; t++) {
                    s += Li[t][i] * Li[t][j];
                }
                Hinv[i][j] = s;
            }
        }
        double[][] lower = cholesky(Hinv);
        double[][] U = new double[n][n];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                U[i][j] = lower[j][i];
            }
        }
        return U;
    }

    static double[][] cholesky(double[][] a) {
        int n = a.length;
        double[][] l = new double[n][n];
        for (int j = 0; j < n; j++) {
            double d = a[j][j];
            for (int t = 0; t < j; t++) {
                d -= l[j][t] * l[j][t];
            }
            if (!(d > 0)) {
                throw new ArithmeticException("not positive definite at " + j);
            }
            l[j][j] = Math.sqrt(d);
            for (int i = j + 1; i < n; i++) {
                double s = a[i][j];
                for (int t = 0; t < j; t++) {
                    s -= l[i][t] * l[j][t];
                }
                l[i][j] = s / l[j][j];
            }
        }
        return l;
    }
}
