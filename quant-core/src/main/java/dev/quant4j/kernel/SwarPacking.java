package dev.quant4j.kernel;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;

/**
 * Dense packing of 2..7-bit codes eight at a time in a 64-bit word ("SIMD within a register"): eight codes, one per
 * byte, are squeezed into {@code 8 * bits} contiguous bits in three halving steps, and spread out again the same way.
 * The result is byte-identical to {@link ScalarLinearKernels#pack}'s bit stream (LSB first), which stays the reference.
 */
final class SwarPacking {

    private static final VarHandle LONG_LE =
            MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);

    private SwarPacking() {}

    /** {@code width} low bits set in every {@code chunk}-bit chunk of a long. */
    private static long mask(int width, int chunk) {
        long m = 0;
        long field = (1L << width) - 1;
        for (int s = 0; s < 64; s += chunk) {
            m |= field << s;
        }
        return m;
    }

    /** Per width b: b bits per 16-bit chunk, 2b bits per 32-bit chunk, 4b bits per 64. */
    private static final long[] M16 = new long[8];

    private static final long[] M32 = new long[8];
    private static final long[] M64 = new long[8];

    static {
        for (int b = 1; b < 8; b++) {
            M16[b] = mask(b, 16);
            M32[b] = mask(2 * b, 32);
            M64[b] = mask(4 * b, 64);
        }
    }

    /**
     * Packs as many whole words of eight codes as fit without writing past the end of the packed row, and returns
     * the number of codes done (a multiple of 8); the caller packs the rest.
     */
    static int pack(byte[] codes, int codesOff, int n, int bits, byte[] packed, int packedOff) {
        int end = packedOff + LinearKernels.packedBytes(n, bits);
        long m16 = M16[bits];
        long m32 = M32[bits];
        long m64 = M64[bits];
        int i = 0;
        int p = packedOff;
        // each step writes 8 bytes of which `bits` are final; the rest is overwritten by the next step or the tail
        while (i + 8 <= n && p + 8 <= end) {
            long t = (long) LONG_LE.get(codes, codesOff + i);
            t = (t & m16) | ((t >>> 8) & m16) << bits; // pairs: 2b bits per 16
            t = (t & m32) | ((t >>> 16) & m32) << (2 * bits); // quads: 4b bits per 32
            t = (t & m64) | ((t >>> 32) & m64) << (4 * bits); // all eight: 8b bits
            LONG_LE.set(packed, p, t);
            i += 8;
            p += bits;
        }
        return i;
    }

    /** Unpacks whole words of eight codes while an 8-byte read stays inside {@code packed}; returns the codes done. */
    static int unpack(byte[] packed, int packedOff, int n, int bits, byte[] codes, int codesOff) {
        long m16 = M16[bits];
        long m32 = M32[bits];
        long m64 = M64[bits];
        long all = (1L << (8 * bits)) - 1;
        int i = 0;
        int p = packedOff;
        while (i + 8 <= n && p + 8 <= packed.length) {
            long t = (long) LONG_LE.get(packed, p) & all;
            t = (t & m64) | ((t >>> (4 * bits)) & m64) << 32; // codes 0-3 | codes 4-7
            t = (t & m32) | ((t >>> (2 * bits)) & m32) << 16;
            t = (t & m16) | ((t >>> bits) & m16) << 8; // one code per byte
            LONG_LE.set(codes, codesOff + i, t);
            i += 8;
            p += bits;
        }
        return i;
    }
}
