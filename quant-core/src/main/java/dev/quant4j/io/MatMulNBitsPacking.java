package dev.quant4j.io;

import dev.quant4j.quant.QuantizedTensor;
import dev.quant4j.scheme.PackOrder;
import java.nio.ByteBuffer;

/**
 * The bytes of ONNX Runtime's {@code com.microsoft.MatMulNBits} inputs {@code B} and {@code zero_points}, and the
 * feature order that makes act-order groups whole blocks (layouts in {@link OnnxExport}).
 */
final class MatMulNBitsPacking {

    private MatMulNBitsPacking() {}

    /**
     * The input features in group order (stable), when every group of {@code q}'s g_idx has exactly {@code groupSize}
     * features; null otherwise.
     */
    static int[] permutation(QuantizedTensor q) {
        int g = q.scheme().groupSize();
        int k = q.cols();
        if (g <= 0 || k % g != 0) {
            return null;
        }
        int[] gIdx = q.gIdx();
        int[] count = new int[k / g];
        for (int v : gIdx) {
            if (v < 0 || v >= count.length || ++count[v] > g) {
                return null;
            }
        }
        int[] next = new int[count.length];
        for (int i = 0; i < next.length; i++) {
            next[i] = i * g;
        }
        int[] perm = new int[k];
        for (int c = 0; c < k; c++) {
            perm[next[gIdx[c]]++] = c;
        }
        return perm;
    }

    /**
     * MatMulNBits' B: row {@code r} of {@code q} is {@code k_blocks * blob_size} bytes, the codes of {@code k = 0, 1,
     * ...} at bit {@code k * bits} least significant first, zero past K; with {@code perm}, position {@code k} holds
     * the code of feature {@code perm[k]}.
     */
    static byte[] packB(QuantizedTensor q, int blockSize, int[] perm) {
        int n = q.rows();
        int k = q.cols();
        int bits = q.scheme().bits();
        int kBlocks = (k + blockSize - 1) / blockSize;
        int rowOut = kBlocks * (blockSize * bits / 8);
        byte[] out = new byte[Math.multiplyExact(n, rowOut)];
        if (perm == null && q.packOrder() == PackOrder.LSB_FIRST_ROW_ALIGNED && (long) k * bits % 8 == 0) {
            // quant4j's rows are packed the same way, without padding bits: each is copied as it is
            ByteBuffer packed = q.packedCodes();
            for (int r = 0; r < n; r++) {
                packed.get(r * q.rowBytes(), out, r * rowOut, q.rowBytes());
            }
            return out;
        }
        for (int r = 0; r < n; r++) {
            byte[] codes = q.rowCodes(r);
            int base = r * rowOut;
            for (int c = 0; c < k; c++) {
                int bit = c * bits;
                int code = codes[perm == null ? c : perm[c]] & 0xFF;
                out[base + (bit >>> 3)] |= (byte) (code << (bit & 7));
            }
        }
        return out;
    }

    /** Zero-points {@code [n, kBlocks]} packed as B is: row {@code r} in {@code ceil(kBlocks * bits / 8)} bytes. */
    static byte[] packZeros(int[] zeros, int n, int kBlocks, int bits) {
        int row = (kBlocks * bits + 7) / 8;
        byte[] out = new byte[n * row];
        for (int r = 0; r < n; r++) {
            for (int g = 0; g < kBlocks; g++) {
                int bit = g * bits;
                out[r * row + (bit >>> 3)] |= (byte) (zeros[r * kBlocks + g] << (bit & 7));
            }
        }
        return out;
    }
}
