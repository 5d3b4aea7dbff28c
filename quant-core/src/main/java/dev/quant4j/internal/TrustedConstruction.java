package dev.quant4j.internal;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Hands capabilities from one package of the library to another without making them public API (the JDK's "shared
 * secrets" pattern): a class registers an implementation of an interface in its static initializer, and the library's
 * other packages look it up here. This package is not exported from the module, and it names no type of the library,
 * so it depends on nothing.
 *
 * <p>What it carries today: {@code dev.quant4j.quant.QuantizedParts}, through which the quantizers build quantized
 * weights from arrays they made without the defensive copy of the public constructors (a copy of the packed codes was
 * a tenth of the quantization time), and the products and writers read those arrays in place.
 */
public final class TrustedConstruction {

    private static final ConcurrentHashMap<Class<?>, Object> REGISTERED = new ConcurrentHashMap<>();

    private TrustedConstruction() {}

    /** Registers {@code implementation} as the one instance of {@code type}; called by a static initializer. */
    public static <T> void register(Class<T> type, T implementation) {
        REGISTERED.put(type, type.cast(implementation));
    }

    /**
     * The instance of {@code type} that {@code owner}'s static initializer registers (running it first if it has not
     * run yet).
     */
    public static <T> T get(Class<T> type, Class<?> owner) {
        Object found = REGISTERED.get(type);
        if (found == null) {
            try {
                Class.forName(owner.getName(), true, owner.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new IllegalStateException(e);
            }
            found = REGISTERED.get(type);
            if (found == null) {
                throw new IllegalStateException(owner.getName() + " registered no " + type.getName());
            }
        }
        return type.cast(found);
    }
}
