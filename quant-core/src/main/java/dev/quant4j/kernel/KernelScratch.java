package dev.quant4j.kernel;

/**
 * Every per-thread work array of the kernels, in one place: the statistics and parameters of one run of groups ({@link
 * LinearKernels#quantizeGroups}), a buffer of codes ({@link #codes(int)}, for every kernel that needs one), the scalar
 * {@code decodeBlocks4}'s table, the vector {@code decode4}'s codes of one step and the multi-row products' stored
 * lanes. Grown on demand and never shrunk; contents are undefined between calls. Kernels that use an array do not call
 * others that use the same one while they hold it.
 */
final class KernelScratch {

    private static final ThreadLocal<KernelScratch> LOCAL = ThreadLocal.withInitial(KernelScratch::new);

    /** Minimum, maximum and zero-point of each group (as floats, the form {@link QuantKernels#linearParams} takes). */
    float[] mins = new float[0];

    float[] maxs = new float[0];
    float[] zeros = new float[0];
    /** Lane-wise statistics of each group's float bits (vector kernels: one vector of lanes per group). */
    int[] signedMax = new int[0];

    int[] unsignedMax = new int[0];
    /**
     * Per group, what the fused 2-, 4- and 8-bit codes need ({@code VectorLinearKernels.codeParams}): {@code 1 / S}, {@code
     * -S}, and the clamp and bias in the bits of the rounding constant; and the groups that take the careful path.
     */
    float[] invs = new float[0];

    float[] negs = new float[0];
    int[] his = new int[0];
    int[] biases = new int[0];
    int[] careful = new int[0];

    /** Codes joined into bit fields (the fused 3-bit packing). */
    int[] bitWork = new int[0];

    /** One byte per code ({@link #codes(int)}). */
    private byte[] codes = new byte[0];

    /** A block's 16-entry decoding table (the scalar {@code decodeBlocks4}). */
    final float[] table = new float[16];

    /** The codes of one step of the vector {@code decode4}. */
    private byte[] stepCodes = new byte[0];

    /** The lanes of up to {@code L} accumulators, stored by the multi-row products for {@code sumLanesOfEach}. */
    private float[] lanes = new float[0];

    private KernelScratch() {}

    /** This thread's arrays, with room for {@code groups} groups. */
    static KernelScratch get(int groups) {
        KernelScratch s = LOCAL.get();
        if (s.mins.length < groups) {
            s.mins = new float[groups];
            s.maxs = new float[groups];
            s.zeros = new float[groups];
        }
        return s;
    }

    /** The buffer of codes, at least {@code n} bytes. */
    byte[] codes(int n) {
        if (codes.length < n) {
            codes = new byte[n];
        }
        return codes;
    }

    /** This thread's buffer of codes, at least {@code n} bytes. */
    static byte[] codeBuffer(int n) {
        return LOCAL.get().codes(n);
    }

    /** This thread's buffer for one step of codes, at least {@code n} bytes. */
    static byte[] stepCodes(int n) {
        KernelScratch s = LOCAL.get();
        if (s.stepCodes.length < n) {
            s.stepCodes = new byte[n];
        }
        return s.stepCodes;
    }

    /** This thread's buffer of stored lanes, at least {@code n} floats. */
    static float[] lanes(int n) {
        KernelScratch s = LOCAL.get();
        if (s.lanes.length < n) {
            s.lanes = new float[n];
        }
        return s.lanes;
    }

    /** Room for the code parameters of {@code groups} groups. */
    KernelScratch withCodeParams(int groups) {
        if (invs.length < groups) {
            invs = new float[groups];
            negs = new float[groups];
            his = new int[groups];
            biases = new int[groups];
            careful = new int[groups];
        }
        return this;
    }

    /** Room for {@code n} ints of bit fields. */
    KernelScratch withBitWork(int n) {
        if (bitWork.length < n) {
            bitWork = new int[n];
        }
        return this;
    }

    /** Room for {@code n} ints of lane statistics in each of the two arrays. */
    KernelScratch withLaneStats(int n) {
        if (signedMax.length < n) {
            signedMax = new int[n];
            unsignedMax = new int[n];
        }
        return this;
    }
}
