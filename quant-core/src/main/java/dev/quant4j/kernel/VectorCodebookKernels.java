package dev.quant4j.kernel;

import static dev.quant4j.kernel.VectorShapes.ALL_LANES;
import static dev.quant4j.kernel.VectorShapes.B;
import static dev.quant4j.kernel.VectorShapes.BYTES_64;
import static dev.quant4j.kernel.VectorShapes.BYTE_PARTS;
import static dev.quant4j.kernel.VectorShapes.F;
import static dev.quant4j.kernel.VectorShapes.HALF_BYTES;
import static dev.quant4j.kernel.VectorShapes.I;
import static dev.quant4j.kernel.VectorShapes.LITTLE_ENDIAN;
import static dev.quant4j.kernel.VectorShapes.PACK_BYTES;
import static dev.quant4j.kernel.VectorShapes.PACK_SHORTS;
import static dev.quant4j.kernel.VectorShapes.SHORTS_128;

import java.util.Arrays;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;

/**
 * {@link CodebookKernels} on the Vector API: NF4 and FP4 codes by cell tables ({@link CellTables}, 256 bits and
 * wider) or a binary search in lanes ({@link SearchTables}), blockwise quantization fused with its absmax and packing,
 * and decoding by lane shuffles. Every result is bit-identical to {@link ScalarCodebookKernels}, whose loops finish
 * the tails.
 */
final class VectorCodebookKernels implements CodebookKernels {

    private static final StatisticsKernels STATISTICS = new VectorStatisticsKernels();

    @Override
    public void encodeCodebook(
            float[] x,
            int off,
            int len,
            float inv,
            float[] thresholds,
            boolean signMagnitude,
            byte[] codes,
            int codesOff) {
        // every whole vector, as in quantize, then the scalar tail
        int i = VectorCodebookUnrolled.codebookRange(x, off, len, inv, thresholds, signMagnitude, codes, codesOff);
        ScalarCodebookKernels.encodeLoop(x, off + i, len - i, inv, thresholds, signMagnitude, codes, codesOff + i);
    }

    /**
     * Nibbles to codes in element order (the 4-bit unpack with the nibbles swapped: each packed byte p becomes the
     * byte pair [p >>> 4, p & 0xF]), then a table lookup by lane shuffles: the 16-entry table is split into vectors
     * of the lane count, each looked up with the wrapped indexes, and the right one blended in.
     */
    @Override
    public void decode4(byte[] packed, int byteOff, int n, float[] table, float[] out, int outOff) {
        // at 128 bits the table is four vectors: four shuffles and three blends per vector lose to the scalar lookup
        // (measured: 3.5 vs 4.7 GiB/s), so that width keeps the scalar code
        if (!LITTLE_ENDIAN || F.length() < 8) {
            ScalarCodebookKernels.decode4Loop(packed, byteOff, n, table, out, outOff);
            return;
        }
        int chunks = Math.max(1, 16 / F.length());
        int step = PACK_BYTES.length(); // codes per step: two per packed byte
        int bound = n - n % step;
        byte[] codes = KernelScratch.stepCodes(PACK_BYTES.length() + B.length());
        int i = 0;
        for (; i < bound; i += step) {
            ShortVector s = (ShortVector) ByteVector.fromArray(HALF_BYTES, packed, byteOff + i / 2)
                    .convertShape(VectorOperators.ZERO_EXTEND_B2S, PACK_SHORTS, 0);
            s.lanewise(VectorOperators.LSHR, 4)
                    .or(s.and((short) 0xF).lanewise(VectorOperators.LSHL, 8))
                    .reinterpretAsBytes()
                    .intoArray(codes, 0);
            for (int j = 0; j < step; j += F.length()) {
                IntVector idx = (IntVector)
                        ByteVector.fromArray(B, codes, j).convertShape(VectorOperators.ZERO_EXTEND_B2I, I, 0);
                VectorShuffle<Float> sh = idx.toShuffle().cast(F).wrapIndexes();
                FloatVector r = FloatVector.fromArray(F, table, 0).rearrange(sh);
                for (int k = 1; k < chunks; k++) {
                    FloatVector part =
                            FloatVector.fromArray(F, table, k * F.length()).rearrange(sh);
                    VectorMask<Float> in =
                            idx.compare(VectorOperators.GE, k * F.length()).cast(F);
                    r = part.blend(r, in.not());
                }
                FloatVector.zero(F).blend(r, ALL_LANES).intoArray(out, outOff + i + j);
            }
        }
        // scalar tail
        ScalarCodebookKernels.decode4Loop(packed, byteOff + i / 2, n - i, table, out, outOff + i);
    }

    /**
     * Fused: per block a vector absmax (blend on {@code >}, exact), one reciprocal, the threshold count of {@link
     * #codebookRange} per vector into a buffer of codes for all the blocks of the call, then one nibble-packing
     * pass over the whole buffer. The same float operations as the block-by-block calls, so the same bits.
     */
    @Override
    public void quantizeBlocks4(
            float[] x,
            int off,
            int nBlocks,
            int blockSize,
            float[] thresholds,
            boolean signMagnitude,
            float[] absmax,
            int aOff,
            byte[] packed,
            int pOff) {
        if (BYTE_PARTS != 1 || !LITTLE_ENDIAN || blockSize % F.length() != 0) {
            ScalarCodebookKernels.quantizeBlocks4(
                    STATISTICS,
                    this,
                    x,
                    off,
                    nBlocks,
                    blockSize,
                    thresholds,
                    signMagnitude,
                    absmax,
                    aOff,
                    packed,
                    pOff);
            return;
        }
        int n = nBlocks * blockSize;
        byte[] codes = KernelScratch.codeBuffer(n);
        CellTables cells = CellTables.cached(thresholds, signMagnitude);
        VectorCodebookUnrolled.blockCodes(
                x,
                off,
                nBlocks,
                blockSize,
                Math.max(1, MINI_CHUNK / blockSize),
                thresholds,
                signMagnitude,
                cells,
                absmax,
                aOff,
                codes);
        int done = VectorLinearKernels.packNibbles(codes, 0, n, packed, pOff, true);
        // scalar tail
        ScalarCodebookKernels.packHighFirst4Loop(codes, done, n - done, packed, pOff + done / 2);
    }

    /**
     * Values per step of {@link #quantizeBlocks4} (4 KiB of floats): the absmax of a step's blocks, then their codes,
     * so that the codes pass finds the values in L1 rather than L2: a small gain at most (JMH in L2 8.8 against 8.6
     * GiB/s). The caller's finiteness check over the whole call's values comes first and brings them from memory in
     * one burst, which measured faster on 4096 x 4096 than letting the steps fetch them (5.6-5.9 against 5.1 GB/s).
     */
    private static final int MINI_CHUNK = 1024;

    /**
     * The threshold count of {@link VectorCodebookUnrolled#codebookRange} with a table lookup instead of a compare per threshold. The range
     * of the counted value ({@code [-1, 1]} for NF4, the magnitude {@code [0, 1]} for FP4) is cut into cells; a
     * value's cell is the rounded {@code a * scale + shift} clamped to {@code [0, cells)} (see {@link #cell}), a
     * monotone function of {@code a}. Per cell the tables hold the number of thresholds whose cell is lower (all of
     * them are below every value of the cell) and the at most {@link #MAX_PER_CELL} thresholds in the cell itself
     * (padded with +Inf), so the count is {@code below[cell] + sum_k (a > inCell_k[cell])}: the same integer as
     * counting all thresholds, for every float (ties included: the comparison is the same strict one). At 512 bits
     * there are 32 cells, two vectors per table looked up together (vpermi2d, one instruction), which leaves NF4 and
     * FP4 at most one threshold per cell: two lookups and one compare per vector of values. Narrower widths have one
     * cell per lane (a two-vector lookup is not an AVX2 instruction) and NF4 two thresholds in some cells. Built per
     * call from the thresholds (a few hundred operations); {@code null} where a cell would hold too many, and the
     * caller counts.
     */
    static final class CellTables {
        static final int MAX_PER_CELL = 4;
        /** Whether the tables are two vectors (32 cells at 512 bits). */
        static final boolean TWO = F.length() == 16;

        /** The thresholds these tables were built from (a copy). */
        final float[] thresholds;

        final float scale;
        final float shift;
        final int cells;
        /** How many of {@code in0 .. in3} hold thresholds (the rest are +Inf). */
        final int perCell;

        final IntVector below;
        final IntVector belowHi;
        /** The thresholds inside each cell, as float bits; {@code *Hi}: cells {@code L} and up when {@link #TWO}. */
        final IntVector in0;

        final IntVector in0Hi;
        final IntVector in1;
        final IntVector in1Hi;
        final IntVector in2;
        final IntVector in2Hi;
        final IntVector in3;
        final IntVector in3Hi;

        private CellTables(
                float[] thresholds, float scale, float shift, int cells, int perCell, int[] below, float[][] inCell) {
            this.thresholds = thresholds;
            this.scale = scale;
            this.shift = shift;
            this.cells = cells;
            this.perCell = perCell;
            int lanes = F.length();
            this.below = IntVector.fromArray(I, below, 0);
            this.belowHi = TWO ? IntVector.fromArray(I, below, lanes) : this.below;
            this.in0 = bits(inCell[0], 0);
            this.in0Hi = TWO ? bits(inCell[0], lanes) : in0;
            this.in1 = bits(inCell[1], 0);
            this.in1Hi = TWO ? bits(inCell[1], lanes) : in1;
            this.in2 = bits(inCell[2], 0);
            this.in2Hi = TWO ? bits(inCell[2], lanes) : in2;
            this.in3 = bits(inCell[3], 0);
            this.in3Hi = TWO ? bits(inCell[3], lanes) : in3;
        }

        private static IntVector bits(float[] values, int from) {
            return FloatVector.fromArray(F, values, from).reinterpretAsInts();
        }

        /** The last tables built for each kind of code (NF4's plain count, FP4's sign and magnitude). */
        private static volatile CellTables lastPlain;

        private static volatile CellTables lastSignMagnitude;

        /**
         * {@link #of}, reusing the last tables built for the same thresholds: one quantization calls this per 64K
         * values, and the tables (vectors held in fields, so on the heap) were 1.7 KB of garbage each time. Immutable,
         * so a race only builds them twice.
         */
        static CellTables cached(float[] thresholds, boolean signMagnitude) {
            CellTables last = signMagnitude ? lastSignMagnitude : lastPlain;
            if (last != null && Arrays.equals(last.thresholds, thresholds)) {
                return last;
            }
            CellTables built = of(thresholds, signMagnitude);
            if (built != null) {
                if (signMagnitude) {
                    lastSignMagnitude = built;
                } else {
                    lastPlain = built;
                }
            }
            return built;
        }

        static CellTables of(float[] thresholds, boolean signMagnitude) {
            int lanes = F.length();
            if (lanes < 8) {
                return null;
            }
            int cells = TWO ? 2 * lanes : lanes;
            float lo = signMagnitude ? 0f : -1f;
            float scale = cells / (1f - lo);
            float shift = -lo * scale + CELL_MAGIC; // exact: 2^23, 2^23 + 8 or 2^23 + 16
            int[] below = new int[cells];
            float[][] inCell = new float[MAX_PER_CELL][cells];
            for (float[] row : inCell) {
                Arrays.fill(row, Float.POSITIVE_INFINITY);
            }
            int[] count = new int[cells];
            for (float t : thresholds) {
                int cell = cell(t, scale, shift, cells);
                for (int c = cell + 1; c < cells; c++) {
                    below[c]++;
                }
                if (count[cell] == MAX_PER_CELL) {
                    return null;
                }
                inCell[count[cell]++][cell] = t;
            }
            int k = 0;
            for (int c : count) {
                k = Math.max(k, c);
            }
            return new CellTables(thresholds.clone(), scale, shift, cells, k, below, inCell);
        }

        /** {@code 2^23}: added by the cell function's fma, so that the rounded sum's low bits are the cell. */
        static final float CELL_MAGIC = 0x1p23f;

        static final int CELL_MAGIC_BITS = Float.floatToRawIntBits(CELL_MAGIC);

        /**
         * The scalar twin of the vector cell function, the same float operations: {@code fma(a, scale, shift + 2^23)}
         * rounds {@code a * scale + shift} to an integer (half to even) in the float's low bits, which are then
         * clamped to {@code [0, cells)}: monotone in {@code a}, which is all the tables need. For finite {@code a}
         * only (a NaN would land in the top cell; the kernel never passes one: blocks whose {@code 1 / absmax} is infinite,
         * all-zero or subnormal, are coded apart).
         */
        private static int cell(float a, float scale, float shift, int cells) {
            int c = Float.floatToRawIntBits(Math.fma(a, scale, shift)) - CELL_MAGIC_BITS;
            return Math.min(cells - 1, Math.max(0, c));
        }
    }

    /**
     * Per block, the codebook times the absmax in vectors (the same float32 products as the scalar table); per
     * sixteen codes, eight packed bytes widened to shorts, their nibbles swapped into element order, widened to int
     * lanes and looked up by a lane shuffle (at 256 bits the 16-entry table is two vectors: two shuffles and a blend).
     * No buffer between the steps.
     */
    @Override
    public void decodeBlocks4(
            byte[] packed,
            int pOff,
            int nBlocks,
            int blockSize,
            float[] codebook,
            float[] absmax,
            int aOff,
            float[] out,
            int outOff) {
        if (!LITTLE_ENDIAN || F.length() < 8 || blockSize % 16 != 0) {
            ScalarCodebookKernels.decodeBlocks4(
                    this, packed, pOff, nBlocks, blockSize, codebook, absmax, aOff, out, outOff);
            return;
        }
        int lanes = F.length();
        FloatVector book0 = FloatVector.fromArray(F, codebook, 0);
        FloatVector book1 = lanes == 16 ? book0 : FloatVector.fromArray(F, codebook, 8);
        for (int b = 0; b < nBlocks; b++) {
            FloatVector t0 = book0.mul(absmax[aOff + b]);
            FloatVector t1 = book1.mul(absmax[aOff + b]);
            int p = pOff + b * (blockSize / 2);
            int o = outOff + b * blockSize;
            for (int i = 0; i < blockSize; i += 16) {
                ShortVector s = (ShortVector) ByteVector.fromArray(BYTES_64, packed, p + i / 2)
                        .convertShape(VectorOperators.ZERO_EXTEND_B2S, SHORTS_128, 0);
                ByteVector codes = s.lanewise(VectorOperators.LSHR, 4)
                        .or(s.and((short) 0xF).lanewise(VectorOperators.LSHL, 8))
                        .reinterpretAsBytes();
                for (int part = 0; part < 16 / lanes; part++) {
                    IntVector idx = (IntVector) codes.convertShape(VectorOperators.ZERO_EXTEND_B2I, I, part);
                    FloatVector r;
                    if (lanes == 16) {
                        r = t0.rearrange(idx.toShuffle().cast(F));
                    } else {
                        VectorShuffle<Float> sh = idx.and(7).toShuffle().cast(F);
                        r = t0.rearrange(sh)
                                .blend(
                                        t1.rearrange(sh),
                                        idx.compare(VectorOperators.GE, 8).cast(F));
                    }
                    r.intoArray(out, o + i + part * lanes);
                }
            }
        }
    }

    /**
     * The candidates of a binary search over 7 or 15 sorted thresholds (FP4's magnitudes, NF4), for {@link
     * #codebookRange}: with {@code d} levels ({@code 2^d - 1} thresholds), level {@code k} compares a lane with
     * threshold {@code (2 i + 1) 2^(d - k) - 1}, where {@code i} is the code's {@code k - 1} bits found so far, so
     * the candidates of level {@code k} are {@code 2^(k - 1)} thresholds, looked up by those bits. The tables are the
     * thresholds' float bits in int vectors (a lookup is an int {@code selectFrom}); the last level of NF4 has eight
     * candidates, two vectors at 128 bits. Built once per threshold array (cached like {@link CellTables}); {@code
     * null} for other counts, unsorted thresholds or fewer than four lanes, and the caller counts.
     */
    static final class SearchTables {
        final float[] thresholds;
        final int levels;
        /** {@code 2^(levels - 1)}: the first level's code bit, and 1 + the index of its threshold. */
        final int top;

        final IntVector level2;
        final IntVector level3;
        final IntVector level4;
        final IntVector level4Hi;

        /** The last tables built for 7 and for 15 thresholds (FP4's and NF4's, which a model may alternate). */
        private static volatile SearchTables last7;

        private static volatile SearchTables last15;

        private SearchTables(float[] thresholds, int levels) {
            this.thresholds = thresholds.clone();
            this.levels = levels;
            this.top = 1 << (levels - 1);
            this.level2 = candidates(thresholds, levels, 2, 0);
            this.level3 = candidates(thresholds, levels, 3, 0);
            this.level4 = levels >= 4 ? candidates(thresholds, levels, 4, 0) : null;
            this.level4Hi = levels >= 4 && I.length() < 8 ? candidates(thresholds, levels, 4, I.length()) : null;
        }

        /** Level {@code k}'s candidates {@code from, from + 1, ...} in lanes (the rest repeat the last one). */
        private static IntVector candidates(float[] t, int levels, int k, int from) {
            int count = 1 << (k - 1);
            int[] bits = new int[I.length()];
            for (int j = 0; j < bits.length; j++) {
                int i = Math.min(count - 1, from + j);
                bits[j] = Float.floatToRawIntBits(t[(2 * i + 1) * (1 << (levels - k)) - 1]);
            }
            return IntVector.fromArray(I, bits, 0);
        }

        static SearchTables cached(float[] thresholds) {
            int levels = thresholds.length == 15 ? 4 : thresholds.length == 7 ? 3 : 0;
            if (levels == 0 || I.length() < 4) {
                return null;
            }
            SearchTables s = levels == 4 ? last15 : last7;
            if (s != null && Arrays.equals(s.thresholds, thresholds)) {
                return s;
            }
            for (int j = 1; j < thresholds.length; j++) {
                // strictly ascending and no NaN: then the search finds the count of thresholds below a value
                if (!(thresholds[j - 1] < thresholds[j])) {
                    return null;
                }
            }
            s = new SearchTables(thresholds, levels);
            if (levels == 4) {
                last15 = s;
            } else {
                last7 = s;
            }
            return s;
        }
    }

    @Override
    public void packHighFirst4(byte[] codes, int codesOff, int n, byte[] packed, int packedOff) {
        if (!LITTLE_ENDIAN) {
            ScalarCodebookKernels.packHighFirst4Loop(codes, codesOff, n, packed, packedOff);
            return;
        }
        int i = VectorLinearKernels.packNibbles(codes, codesOff, n, packed, packedOff, true);
        // scalar tail
        ScalarCodebookKernels.packHighFirst4Loop(codes, codesOff + i, n - i, packed, packedOff + i / 2);
    }
}
