package dev.quant4j.io;

/** Element types of tensor files, with safetensors' names. */
public enum DType {
    F64(8),
    F32(4),
    F16(2),
    BF16(2),
    I64(8),
    I32(4),
    I16(2),
    I8(1),
    U64(8),
    U32(4),
    U16(2),
    U8(1),
    BOOL(1);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Bytes per element. */
    public int bytes() {
        return bytes;
    }

    /** Whether {@link SafeTensors#readMatrix} can convert it to float32 (F32, F16, BF16). */
    public boolean isFloat() {
        return this == F32 || this == F16 || this == BF16;
    }

    /** The dtype named {@code name} in a safetensors header. */
    public static DType fromSafetensors(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return d;
            }
        }
        throw new IllegalArgumentException("unknown dtype '" + name + "'");
    }
}
