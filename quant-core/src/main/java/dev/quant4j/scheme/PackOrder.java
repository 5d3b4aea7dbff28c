package dev.quant4j.scheme;

/**
 * How codes are laid out in the packed byte array. Every packed tensor carries its order explicitly, since tools
 * disagree (bitsandbytes puts the first 4-bit code in the high nibble, GGML pairs element j with j+16, GPTQ v1 packs
 * into int32 words).
 */
public enum PackOrder {
    /**
     * quant4j's own order: each row starts on a byte boundary; within a row, code {@code j} occupies bits {@code
     * [j*bits, (j+1)*bits)} of a little-endian bit stream (LSB first). For 4 bits: element 0 in the low nibble of byte
     * 0, element 1 in its high nibble. 3, 5, 6 and 7 bits are packed densely, without padding per value; only the end
     * of a row is padded to a whole byte.
     */
    LSB_FIRST_ROW_ALIGNED,
    /**
     * bitsandbytes' 4-bit order: over the flattened (row-major) tensor, byte {@code j} holds element {@code 2j} in its
     * high nibble and element {@code 2j + 1} in its low nibble. An odd count is padded with the code of 0.0, which is
     * what bitsandbytes' kernel writes (it loads 0 past the end of the tensor).
     */
    HIGH_NIBBLE_FIRST_FLAT;

    public String id() {
        return name().toLowerCase(java.util.Locale.ROOT);
    }

    public static PackOrder fromId(String id) {
        for (PackOrder p : values()) {
            if (p.id().equals(id)) {
                return p;
            }
        }
        throw new IllegalArgumentException("unknown pack order '" + id + "'");
    }
}
