package dev.quant4j.testing;

import java.util.concurrent.ForkJoinPool;

/**
 * Pools of one and two threads, shared by the tests that check results do not depend on the thread count. Their
 * workers are daemon threads, so nothing needs shutting down.
 */
public final class Pools {

    public static final ForkJoinPool ONE = new ForkJoinPool(1);
    public static final ForkJoinPool TWO = new ForkJoinPool(2);

    private Pools() {}
}
