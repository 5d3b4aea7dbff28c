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
import static dev.quant4j.kernel.VectorShapes.XOR_1_INT;
import static dev.quant4j.kernel.VectorShapes.XOR_2_INT;
import static dev.quant4j.kernel.VectorShapes.XOR_4_INT;
import static dev.quant4j.kernel.VectorShapes.XOR_8_INT;

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
        int i = codebookRange(x, off, len, inv, thresholds, signMagnitude, codes, codesOff);
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
        // all the absmax values first: independent of each other, so their reductions overlap, instead of each
        // block's codes waiting for its own reduction and reciprocal. In the integer domain: the bits of |v| (the
        // sign cleared) order like the values, so one integer max per vector does what a compare and a blend do on
        // floats, and the lane reduction needs no NaN or signed-zero rules (the input is finite).
        int perStep = Math.max(1, MINI_CHUNK / blockSize);
        for (int first = 0; first < nBlocks; first += perStep) {
            int stop = Math.min(nBlocks, first + perStep);
            for (int b = first; b < stop; b++) {
                int start = off + b * blockSize;
                IntVector m = IntVector.zero(I);
                for (int i = 0; i < blockSize; i += F.length()) {
                    m = FloatVector.fromArray(F, x, start + i)
                            .reinterpretAsInts()
                            .and(0x7FFFFFFF)
                            .max(m);
                }
                m = IntVector.zero(I)
                        .max(m); // the same lanes (all >= 0), as a fresh vector (VectorShapes' class comment)
                // written out, not a helper: a helper taking the vector would box it when C2 does not inline it
                if (F.length() >= 16) {
                    m = m.max(m.rearrange(XOR_8_INT));
                }
                if (F.length() >= 8) {
                    m = m.max(m.rearrange(XOR_4_INT));
                }
                m = m.max(m.rearrange(XOR_2_INT));
                m = m.max(m.rearrange(XOR_1_INT));
                absmax[aOff + b] = Float.intBitsToFloat(m.lane(0));
            }
            for (int b = first; b < stop; b++) {
                int start = off + b * blockSize;
                float inv = 1.0f / absmax[aOff + b];
                if (cells != null && absmax[aOff + b] == 0f) {
                    // an all-zero block: 0 * (1 / 0) is NaN in every lane, which the reference codes 0
                    Arrays.fill(codes, b * blockSize, (b + 1) * blockSize, (byte) 0);
                } else if (cells != null && inv != Float.POSITIVE_INFINITY) {
                    int last = cells.cells - 1;
                    boolean two = CellTables.TWO;
                    for (int i = 0; i < blockSize; i += F.length()) {
                        // the cell-table count of CellTables written out, with no helper of ours: in this large
                        // method C2 runs out of its inlining budget (NodeCountInliningCutoff), and a helper it does
                        // not inline boxes every vector it takes or returns (4x slower; the Vector API's own methods
                        // are force-inlined whatever the budget)
                        FloatVector q = FloatVector.fromArray(F, x, start + i).mul(inv);
                        FloatVector a = signMagnitude ? q.abs() : q;
                        IntVector cell = a.fma(cells.scale, cells.shift)
                                .reinterpretAsInts()
                                .sub(CellTables.CELL_MAGIC_BITS)
                                .max(0)
                                .min(last);
                        IntVector c = two ? cell.selectFrom(cells.below, cells.belowHi) : cell.selectFrom(cells.below);
                        IntVector t = two ? cell.selectFrom(cells.in0, cells.in0Hi) : cell.selectFrom(cells.in0);
                        c = c.add(
                                1,
                                a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                        .cast(I));
                        if (cells.perCell > 1) {
                            t = two ? cell.selectFrom(cells.in1, cells.in1Hi) : cell.selectFrom(cells.in1);
                            c = c.add(
                                    1,
                                    a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                            .cast(I));
                        }
                        if (cells.perCell > 2) {
                            t = two ? cell.selectFrom(cells.in2, cells.in2Hi) : cell.selectFrom(cells.in2);
                            c = c.add(
                                    1,
                                    a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                            .cast(I));
                        }
                        if (cells.perCell > 3) {
                            t = two ? cell.selectFrom(cells.in3, cells.in3Hi) : cell.selectFrom(cells.in3);
                            c = c.add(
                                    1,
                                    a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                            .cast(I));
                        }
                        if (signMagnitude) {
                            c = c.lanewise(VectorOperators.XOR, c.and(2).lanewise(VectorOperators.LSHL, 1))
                                    .lanewise(
                                            VectorOperators.OR,
                                            8,
                                            q.compare(VectorOperators.LT, 0f).cast(I));
                        }
                        ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(codes, b * blockSize + i);
                    }
                } else {
                    // no tables, or a block of subnormals whose 1 / absmax overflows: its zeros become 0 * Inf = NaN,
                    // which counts no threshold (code 0, as the reference and bitsandbytes' decision tree give), while
                    // the tables would put NaN in the top cell
                    codebookRange(x, start, blockSize, inv, thresholds, signMagnitude, codes, b * blockSize);
                }
            }
        }
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
     * The threshold count of {@link #codebookRange} with a table lookup instead of a compare per threshold. The range
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
    private static final class CellTables {
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
    private static final class SearchTables {
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

    /**
     * Codebook codes of the whole vectors of {@code x[off, off + len)} into {@code dst[dOff ...]}; returns how many
     * values it coded (the caller's scalar tail does the rest). Per lane the number of thresholds below it (NaN lanes
     * pass none): for NF4's 15 and FP4's 7 sorted thresholds by the binary search of {@link SearchTables}, otherwise
     * counted, the count summed in float lanes (masked adds of 1, exact for small integers) and converted once. Arrays
     * in, a count out: no vector crosses the call, so a JIT that does not inline it pays a call per range, not a heap
     * box per vector.
     */
    private static int codebookRange(
            float[] x, int off, int len, float inv, float[] thresholds, boolean signMagnitude, byte[] dst, int dOff) {
        FloatVector zero = FloatVector.zero(F);
        FloatVector one = FloatVector.broadcast(F, 1f);
        SearchTables search = SearchTables.cached(thresholds);
        int i = 0;
        // every whole vector (a counted loop to a loop bound, as C2 likes it), except at 128 bits a lone one, which
        // has no codes before it to merge with
        int bound = len >= B.length() ? F.loopBound(len) : 0;
        for (; i < bound; i += F.length()) {
            boolean last = i + B.length() > len;
            int xOff = off + i;
            FloatVector q = FloatVector.fromArray(F, x, xOff).mul(inv);
            FloatVector a = signMagnitude ? q.abs() : q;
            IntVector c;
            if (search != null) {
                // a binary search, one level per code bit: the threshold a lane meets at a level depends on the bits
                // found so far, looked up from that level's candidates (one vector, or two at 128 bits for the eight
                // of NF4's last level); every comparison is a > t, so the code is the count of thresholds below the
                // value, as counting gives, NaN included (it passes none)
                IntVector code = IntVector.zero(I);
                code = code.add(
                        search.top,
                        a.compare(VectorOperators.GT, search.thresholds[search.top - 1])
                                .cast(I));
                // levels is 3 or 4: the second and third levels always run, written out (a helper or a loop over
                // the levels would pass vectors or make the code a loop variable and a receiver: class comment)
                int levels = search.levels;
                IntVector t2 = code.lanewise(VectorOperators.LSHR, levels - 1).selectFrom(search.level2);
                code = code.add(
                        search.top >> 1,
                        a.compare(VectorOperators.GT, t2.reinterpretAsFloats()).cast(I));
                IntVector t3 = code.lanewise(VectorOperators.LSHR, levels - 2).selectFrom(search.level3);
                code = code.add(
                        search.top >> 2,
                        a.compare(VectorOperators.GT, t3.reinterpretAsFloats()).cast(I));
                if (levels >= 4) {
                    IntVector i4 = code.lanewise(VectorOperators.LSHR, 1);
                    IntVector t = search.level4Hi == null
                            ? i4.selectFrom(search.level4)
                            : i4.selectFrom(search.level4, search.level4Hi);
                    code = code.add(
                            1,
                            a.compare(VectorOperators.GT, t.reinterpretAsFloats())
                                    .cast(I));
                }
                c = code;
            } else {
                // four thresholds per step counted from a fresh zero by masked adds (one instruction each), then added
                // to the loop-carried count, which is thus an argument, never the receiver (VectorShapes' class
                // comment); a blend
                // and an add per threshold (the first form of the rule) made NF4 quantize at 128 bits 1.6x slower
                FloatVector count = zero;
                int j = 0;
                for (; j + 4 <= thresholds.length; j += 4) {
                    count = zero.add(one, a.compare(VectorOperators.GT, thresholds[j]))
                            .add(one, a.compare(VectorOperators.GT, thresholds[j + 1]))
                            .add(one, a.compare(VectorOperators.GT, thresholds[j + 2]))
                            .add(one, a.compare(VectorOperators.GT, thresholds[j + 3]))
                            .add(count);
                }
                for (; j < thresholds.length; j++) {
                    count = zero.add(one, a.compare(VectorOperators.GT, thresholds[j]))
                            .add(count);
                }
                c = (IntVector) zero.add(count).convert(VectorOperators.F2I, 0);
            }
            if (signMagnitude) {
                c = c.lanewise(VectorOperators.XOR, c.and(2).lanewise(VectorOperators.LSHL, 1))
                        .lanewise(
                                VectorOperators.OR,
                                8,
                                q.compare(VectorOperators.LT, 0f).cast(I));
            }
            // the low byte of each lane. At 128 bits the byte vector holds two float vectors' codes: a store writes
            // B.length() - F.length() zero bytes after the codes, which the next vector's store overwrites; the last
            // vector of a range (whose store would leave it) puts its codes into the upper half of the byte vector that
            // ends the range and merges them with the codes already there, replacing their spilled zeros
            if (BYTE_PARTS > 1 && last) {
                int start = dOff + i + F.length() - B.length();
                ByteVector.fromArray(B, dst, start)
                        .or((ByteVector) c.convertShape(VectorOperators.I2B, B, 1 - BYTE_PARTS))
                        .intoArray(dst, start);
            } else {
                ((ByteVector) c.convertShape(VectorOperators.I2B, B, 0)).intoArray(dst, dOff + i);
            }
        }
        return i;
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
