package dev.quant4j.io;

/**
 * A tensor file whose content is wrong: truncated, corrupt, of an unsupported dtype, or inconsistent with itself. The
 * message names the file and the field or tensor at fault. It is an {@link IllegalArgumentException}, like every
 * other bad input to quant4j; real I/O failures remain {@link java.io.IOException}s.
 */
public class MalformedTensorFileException extends IllegalArgumentException {

    private static final long serialVersionUID = 1L;

    public MalformedTensorFileException(String message) {
        super(message);
    }

    public MalformedTensorFileException(String message, Throwable cause) {
        super(message, cause);
    }
}
