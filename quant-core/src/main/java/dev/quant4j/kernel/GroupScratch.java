package dev.quant4j.kernel;

/**
 * Per-thread work arrays of {@link QuantKernels#quantizeGroups}: the statistics, parameters and codes of one run of
 * groups (and the scalar {@code decodeBlocks4}'s table). Grown on demand and never shrunk; contents are undefined
 * between calls. Kernels that use it do not call each other while they hold it.
 */
final class GroupScratch {

    private static final ThreadLocal<GroupScratch> LOCAL = ThreadLocal.withInitial(GroupScratch::new);

    /** Minimum, maximum and zero-point of each group (as floats, the form {@link QuantKernels#linearParams} takes). */
    float[] mins = new float[0];

    float[] maxs = new float[0];
    float[] zeros = new float[0];
    /** Lane-wise statistics of each group's float bits (vector kernels: one vector of lanes per group). */
    int[] signedMax = new int[0];

    int[] unsignedMax = new int[0];
    /** Codes joined into bit fields (the fused 3-bit packing). */
    int[] bitWork = new int[0];

    /** One byte per code. */
    byte[] codes = new byte[0];

    /** A block's 16-entry decoding table (the scalar {@code decodeBlocks4}), the one other use of this holder. */
    final float[] table = new float[16];

    private GroupScratch() {}

    /** This thread's arrays, with room for {@code groups} groups and {@code codes} codes. */
    static GroupScratch get(int groups, int codes) {
        GroupScratch s = LOCAL.get();
        if (s.mins.length < groups) {
            s.mins = new float[groups];
            s.maxs = new float[groups];
            s.zeros = new float[groups];
        }
        if (s.codes.length < codes) {
            s.codes = new byte[codes];
        }
        return s;
    }

    /** Room for {@code n} ints of bit fields. */
    GroupScratch withBitWork(int n) {
        if (bitWork.length < n) {
            bitWork = new int[n];
        }
        return this;
    }

    /** Room for {@code n} ints of lane statistics in each of the two arrays. */
    GroupScratch withLaneStats(int n) {
        if (signedMax.length < n) {
            signedMax = new int[n];
            unsignedMax = new int[n];
        }
        return this;
    }
}
