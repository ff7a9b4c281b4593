package dev.ipseccni.agent;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/** Waiting in the agent's tests: a condition polled until a deadline, never a fixed sleep. */
public final class Poll {
  private Poll() {}

  /** Polls {@code condition} every {@code every} until it holds; fails naming {@code what} after {@code within}. */
  public static void until(String what, Duration within, Duration every, BooleanSupplier condition) {
    long end = System.nanoTime() + within.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > end) {
        throw new AssertionError(what + ": not within " + within.toSeconds() + " s");
      }
      try {
        TimeUnit.NANOSECONDS.sleep(every.toNanos()); // poll interval
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new AssertionError(e);
      }
    }
  }
}
