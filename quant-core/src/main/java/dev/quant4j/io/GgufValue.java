package dev.quant4j.io;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * One GGUF metadata value: its type and its Java value. Integers of every width are a {@link Long} (a {@code uint64}
 * holds its 64 bits, read it with {@link Long#toUnsignedString}); {@code float32} a {@link Float}; {@code float64} a
 * {@link Double}; {@code bool} a {@link Boolean}; {@code string} a {@link String}; an array a {@link GgufArray}, whose
 * elements follow the same rules (arrays may nest).
 */
public record GgufValue(GgufValueType type, Object value) {

    /** An array: the type of its elements and the elements, represented as {@link GgufValue#value()} is. */
    public record GgufArray(GgufValueType elementType, List<Object> values) {

        public GgufArray {
            Objects.requireNonNull(elementType, "elementType");
            values = List.copyOf(values);
            for (Object v : values) {
                check(elementType, v);
            }
        }
    }

    public GgufValue {
        Objects.requireNonNull(type, "type");
        check(type, value);
    }

    private static void check(GgufValueType type, Object value) {
        boolean ok = switch (type) {
            case UINT8 -> value instanceof Long l && l >= 0 && l <= 0xFF;
            case INT8 -> value instanceof Long l && l >= Byte.MIN_VALUE && l <= Byte.MAX_VALUE;
            case UINT16 -> value instanceof Long l && l >= 0 && l <= 0xFFFF;
            case INT16 -> value instanceof Long l && l >= Short.MIN_VALUE && l <= Short.MAX_VALUE;
            case UINT32 -> value instanceof Long l && l >= 0 && l <= 0xFFFFFFFFL;
            case INT32 -> value instanceof Long l && l >= Integer.MIN_VALUE && l <= Integer.MAX_VALUE;
            case UINT64, INT64 -> value instanceof Long;
            case FLOAT32 -> value instanceof Float;
            case FLOAT64 -> value instanceof Double;
            case BOOL -> value instanceof Boolean;
            case STRING -> value instanceof String;
            case ARRAY -> value instanceof GgufArray;
        };
        if (!ok) {
            throw new IllegalArgumentException("a GGUF " + type + " value cannot be " + value
                    + (value == null ? "" : " (" + value.getClass().getSimpleName() + ")"));
        }
    }

    public static GgufValue of(GgufValueType type, long v) {
        return new GgufValue(type, v);
    }

    public static GgufValue uint32(long v) {
        return new GgufValue(GgufValueType.UINT32, v);
    }

    public static GgufValue float32(float v) {
        return new GgufValue(GgufValueType.FLOAT32, v);
    }

    public static GgufValue string(String v) {
        return new GgufValue(GgufValueType.STRING, v);
    }

    public static GgufValue bool(boolean v) {
        return new GgufValue(GgufValueType.BOOL, v);
    }

    /** An array of {@code elementType}; the elements as {@link #value()} represents them. */
    public static GgufValue array(GgufValueType elementType, List<?> values) {
        return new GgufValue(GgufValueType.ARRAY, new GgufArray(elementType, new ArrayList<>(values)));
    }

    /** The integer (any integer type; unsigned 64-bit values as their bits). */
    public long asLong() {
        if (!type.isInteger()) {
            throw new IllegalStateException("GGUF value of type " + type + " is not an integer");
        }
        return (Long) value;
    }

    public String asString() {
        if (type != GgufValueType.STRING) {
            throw new IllegalStateException("GGUF value of type " + type + " is not a string");
        }
        return (String) value;
    }

    public GgufArray asArray() {
        if (type != GgufValueType.ARRAY) {
            throw new IllegalStateException("GGUF value of type " + type + " is not an array");
        }
        return (GgufArray) value;
    }

    @Override
    public String toString() {
        return switch (type) {
            case UINT64 -> "uint64 " + Long.toUnsignedString((Long) value);
            case STRING -> "string '" + value + "'";
            case ARRAY -> {
                GgufArray a = (GgufArray) value;
                yield "array of " + a.values().size() + " "
                        + a.elementType().name().toLowerCase(java.util.Locale.ROOT);
            }
            default -> type.name().toLowerCase(java.util.Locale.ROOT) + " " + value;
        };
    }
}
