package dev.quant4j.io;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;

/**
 * The protobuf wire format, written into a growable byte array: only what {@link OnnxRewriter} needs. The mirror of
 * {@link ProtoReader}: a field is a varint key {@code (number << 3) | type}, then a varint (type 0), a varint length
 * and that many bytes (type 2), or four little-endian bytes (type 5).
 */
final class ProtoWriter {

    private byte[] buf;
    private int size;

    ProtoWriter() {
        this(256);
    }

    ProtoWriter(int capacity) {
        buf = new byte[Math.max(16, capacity)];
    }

    int size() {
        return size;
    }

    byte[] toByteArray() {
        return Arrays.copyOf(buf, size);
    }

    /** Whether what was written equals {@code bytes[from, to)}. */
    boolean contentEquals(byte[] bytes, int from, int to) {
        return Arrays.equals(buf, 0, size, bytes, from, to);
    }

    private void ensure(int more) {
        long need = (long) size + more;
        if (need > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("a protobuf message over 2 GB");
        }
        if (need > buf.length) {
            buf = Arrays.copyOf(buf, (int) Math.min(Integer.MAX_VALUE - 8, Math.max(need, 2L * buf.length)));
        }
    }

    void writeVarint(long v) {
        ensure(10);
        while ((v & ~0x7FL) != 0) {
            buf[size++] = (byte) ((v & 0x7F) | 0x80);
            v >>>= 7;
        }
        buf[size++] = (byte) v;
    }

    void writeKey(int field, int wireType) {
        writeVarint((long) field << 3 | wireType);
    }

    /** Bytes as they are (an already encoded field, kept from the input). */
    void writeRaw(byte[] bytes, int from, int length) {
        ensure(length);
        System.arraycopy(bytes, from, buf, size, length);
        size += length;
    }

    void writeRaw(byte[] bytes) {
        writeRaw(bytes, 0, bytes.length);
    }

    /** A varint field (int32, int64, enum, bool). */
    void writeInt64(int field, long v) {
        writeKey(field, ProtoReader.VARINT);
        writeVarint(v);
    }

    void writeFloat(int field, float v) {
        writeKey(field, ProtoReader.FIXED32);
        ensure(4);
        int bits = Float.floatToRawIntBits(v);
        for (int i = 0; i < 4; i++) {
            buf[size++] = (byte) (bits >>> (8 * i));
        }
    }

    /** A length-delimited field: bytes, or an encoded message. */
    void writeBytes(int field, byte[] bytes) {
        writeKey(field, ProtoReader.LEN);
        writeVarint(bytes.length);
        writeRaw(bytes);
    }

    void writeString(int field, String s) {
        writeBytes(field, s.getBytes(StandardCharsets.UTF_8));
    }

    void writeMessage(int field, ProtoWriter message) {
        writeKey(field, ProtoReader.LEN);
        writeVarint(message.size);
        writeRaw(message.buf, 0, message.size);
    }

    /** A packed repeated varint field. */
    void writePackedInt64(int field, long[] values) {
        ProtoWriter p = new ProtoWriter(values.length * 2 + 8);
        for (long v : values) {
            p.writeVarint(v);
        }
        writeMessage(field, p);
    }
}
