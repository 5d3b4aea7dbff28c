package dev.quant4j.io;

import java.nio.charset.StandardCharsets;

/**
 * The protobuf wire format, read in place from a byte array: only what {@link OnnxModel} needs. Every length and
 * varint is checked against the end of the enclosing message, so a truncated or hostile file is a clear error (naming
 * the source, the message and the byte offset), never an out-of-bounds read or a huge allocation.
 *
 * <p>Wire format (protobuf encoding guide): a field is a varint key {@code (number << 3) | type}, type 0 a varint, 1
 * eight little-endian bytes, 2 a varint length and that many bytes, 5 four little-endian bytes; 3 and 4 (groups) are
 * obsolete and rejected.
 */
final class ProtoReader {

    static final int VARINT = 0;
    static final int FIXED64 = 1;
    static final int LEN = 2;
    static final int FIXED32 = 5;

    private final String source;
    private final String message;
    private final byte[] bytes;
    private int pos;
    private final int limit;

    ProtoReader(String source, String message, byte[] bytes, int from, int limit) {
        this.source = source;
        this.message = message;
        this.bytes = bytes;
        this.pos = from;
        this.limit = limit;
    }

    boolean hasMore() {
        return pos < limit;
    }

    byte[] bytes() {
        return bytes;
    }

    int position() {
        return pos;
    }

    /** The next key: {@code (field number << 3) | wire type}. */
    long readKey() {
        long key = readVarint();
        if ((key >>> 3) == 0) {
            throw error("field number 0");
        }
        return key;
    }

    long readVarint() {
        long v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= limit) {
                throw error("truncated varint");
            }
            byte b = bytes[pos++];
            v |= (long) (b & 0x7F) << shift;
            if (b >= 0) {
                return v;
            }
        }
        throw error("varint longer than 10 bytes");
    }

    int readFixed32() {
        need(4);
        int v = (bytes[pos] & 0xFF)
                | (bytes[pos + 1] & 0xFF) << 8
                | (bytes[pos + 2] & 0xFF) << 16
                | (bytes[pos + 3] & 0xFF) << 24;
        pos += 4;
        return v;
    }

    long readFixed64() {
        need(8);
        long v = 0;
        for (int i = 7; i >= 0; i--) {
            v = v << 8 | (bytes[pos + i] & 0xFF);
        }
        pos += 8;
        return v;
    }

    /** A length-delimited field's length, checked against what is left of this message; the caller reads it. */
    int readLength() {
        long n = readVarint();
        if (n < 0 || n > limit - pos) {
            throw error("length " + n + " runs past the end of the " + message + " (" + (limit - pos) + " bytes left)");
        }
        return (int) n;
    }

    /** A nested message of the given length, starting here; this reader moves past it. */
    ProtoReader nested(String name, int length) {
        ProtoReader r = new ProtoReader(source, name, bytes, pos, pos + length);
        pos += length;
        return r;
    }

    String readString() {
        int n = readLength();
        String s = new String(bytes, pos, n, StandardCharsets.UTF_8);
        pos += n;
        return s;
    }

    /** Skips {@code n} bytes already counted by {@link #readLength()}. */
    void skipBytes(int n) {
        pos += n;
    }

    void skip(int wireType) {
        switch (wireType) {
            case VARINT -> readVarint();
            case FIXED64 -> {
                need(8);
                pos += 8;
            }
            case LEN -> {
                int n = readLength(); // not "pos += readLength()": that adds to pos as it was before the length
                pos += n;
            }
            case FIXED32 -> {
                need(4);
                pos += 4;
            }
            default -> throw error("unsupported wire type " + wireType);
        }
    }

    private void need(int n) {
        if (limit - pos < n) {
            throw error("truncated: " + n + " bytes needed, " + (limit - pos) + " left");
        }
    }

    MalformedTensorFileException error(String what) {
        return new MalformedTensorFileException(source + ": " + message + " at byte " + pos + ": " + what);
    }
}
