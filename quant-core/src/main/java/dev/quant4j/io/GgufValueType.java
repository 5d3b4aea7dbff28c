package dev.quant4j.io;

/**
 * The types of GGUF metadata values ({@code enum gguf_type} in ggml's {@code include/gguf.h}; {@code
 * gguf_metadata_value_type} in ggml's {@code docs/gguf.md}), with their ids and fixed sizes in bytes (0 for strings and
 * arrays, whose size depends on their content).
 */
public enum GgufValueType {
    UINT8(0, 1),
    INT8(1, 1),
    UINT16(2, 2),
    INT16(3, 2),
    UINT32(4, 4),
    INT32(5, 4),
    FLOAT32(6, 4),
    BOOL(7, 1),
    STRING(8, 0),
    ARRAY(9, 0),
    UINT64(10, 8),
    INT64(11, 8),
    FLOAT64(12, 8);

    private final int id;
    private final int size;

    GgufValueType(int id, int size) {
        this.id = id;
        this.size = size;
    }

    /** The id stored in the file. */
    public int id() {
        return id;
    }

    /** Bytes of one value; 0 for {@link #STRING} and {@link #ARRAY}. */
    public int size() {
        return size;
    }

    /** The fewest bytes a value of this type takes in a file (a string: its 8-byte length; an array: type and count). */
    int minBytes() {
        return this == STRING ? 8 : this == ARRAY ? 12 : size;
    }

    boolean isInteger() {
        return this != FLOAT32 && this != FLOAT64 && this != BOOL && this != STRING && this != ARRAY;
    }

    /** The type with {@code id}, or null. */
    public static GgufValueType byId(long id) {
        for (GgufValueType t : values()) {
            if (t.id == id) {
                return t;
            }
        }
        return null;
    }
}
