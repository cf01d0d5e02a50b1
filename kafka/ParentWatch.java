package dev.sluice.infra;

import java.io.IOException;
import java.lang.reflect.Method;
import java.util.Arrays;

/**
 * Runs a main class (the Kafka broker) and ends the JVM when its standard input closes.
 *
 * sluice starts the broker with a pipe on stdin and never writes to it. When the Node.js parent
 * exits for any reason, SIGKILL included, the kernel closes the pipe, read() returns -1 and this
 * watcher calls System.exit, which runs Kafka's shutdown hook (a clean, controlled shutdown).
 * If that hangs past sluice.shutdown.grace.ms, the JVM is halted. No orphaned broker, ever.
 */
public final class ParentWatch {
  private ParentWatch() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 1) {
      System.err.println("usage: ParentWatch <main class> [args...]");
      System.exit(2);
    }
    long graceMs = Long.getLong("sluice.shutdown.grace.ms", 20_000L);
    Thread watcher = new Thread(() -> watchStdin(graceMs), "sluice-parent-watch");
    watcher.setDaemon(true);
    watcher.start();

    Method main = Class.forName(args[0]).getMethod("main", String[].class);
    main.invoke(null, (Object) Arrays.copyOfRange(args, 1, args.length));
  }

  private static void watchStdin(long graceMs) {
    try {
      while (System.in.read() != -1) {
        // The parent never writes; anything it does write is ignored.
      }
    } catch (IOException ignored) {
      // A broken pipe means the parent is gone, the same as end of input.
    }
    Thread halter = new Thread(() -> {
      try {
        Thread.sleep(graceMs);
      } catch (InterruptedException ignored) {
        // Exiting anyway.
      }
      System.err.println("sluice: broker shutdown exceeded " + graceMs + " ms; halting");
      Runtime.getRuntime().halt(1);
    }, "sluice-shutdown-halter");
    halter.setDaemon(true);
    halter.start();
    System.err.println("sluice: parent process gone; shutting the broker down");
    System.exit(0);
  }
}
