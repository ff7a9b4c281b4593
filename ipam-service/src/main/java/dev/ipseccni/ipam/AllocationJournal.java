package dev.ipseccni.ipam;

import dev.ipseccni.bus.JsonRecordCodec;
import java.io.IOException;
import java.lang.System.Logger.Level;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.zip.CRC32;

/**
 * The node's allocations on local disk, an append-only file of lines
 * {@code <crc32 hex> <json record>}. An allocation is acknowledged only after its line
 * is forced to disk; concurrent writers share one force (group commit). A line that is
 * torn (kill -9 mid-write) or fails its checksum is logged and skipped on replay.
 * Compaction writes the live state to a new file, forces it, and renames it over the
 * old one, so at every instant one complete journal exists.
 *
 * <p>A failed force poisons the journal: Linux may drop the dirty pages of a failed fsync
 * and report the next one as a success, so nothing appended since the last good force is
 * known to be on disk. Until a compaction has rewritten the whole state, every wait for
 * durability fails ({@link #needsRewrite()}).
 */
final class AllocationJournal implements AutoCloseable {
  static final String FILE_NAME = "allocations.journal";
  private static final System.Logger LOG = System.getLogger(AllocationJournal.class.getName());

  private final Path dir;
  private final Path file;
  private final Object forceLock = new Object();
  private FileChannel channel;
  /** Bytes appended since open (across compactions): positions for group commit. */
  private long appended;
  /** All bytes up to here are on disk. Guarded by forceLock. */
  private long durable;
  private boolean broken;
  /** Why a force failed, until a compaction rewrote everything. Guarded by forceLock. */
  private IOException forceFailure;
  /** How the channel is forced; the tests replace it to make a force fail. */
  private Force force = channel -> channel.force(false);

  /** Forces a channel to disk. */
  interface Force {
    void force(FileChannel channel) throws IOException;
  }

  /** For tests: force with {@code force} from now on. */
  void forceWith(Force force) {
    synchronized (forceLock) {
      this.force = force;
    }
  }
  private Replay replayed;

  private AllocationJournal(Path dir) {
    this.dir = dir;
    this.file = dir.resolve(FILE_NAME);
  }

  /** What replay found: the valid records in order, and how many lines were skipped. */
  record Replay(List<JournalRecord> records, int skippedLines) {}

  /**
   * Opens (creating if needed) the journal in {@code dir} and reads it. A torn last line
   * is cut off so new appends start on a clean line.
   */
  static AllocationJournal open(Path dir) throws IOException {
    Files.createDirectories(dir);
    // A compaction cut short left its temporary file; the journal itself is whole.
    Files.deleteIfExists(dir.resolve(FILE_NAME + ".tmp"));
    AllocationJournal journal = new AllocationJournal(dir);
    journal.replayed = journal.read();
    journal.channel = FileChannel.open(journal.file, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
        StandardOpenOption.READ);
    long size = journal.channel.size();
    long clean = journal.cleanLength(size);
    if (clean < size) {
      LOG.log(Level.WARNING, "journal {0}: cutting a torn last line ({1} bytes)", journal.file, size - clean);
      journal.channel.truncate(clean);
      journal.channel.force(true);
    }
    journal.channel.position(clean);
    return journal;
  }

  /** What the journal held when it was opened. */
  Replay replayed() {
    return replayed;
  }

  Path file() {
    return file;
  }

  private Replay read() throws IOException {
    List<JournalRecord> records = new ArrayList<>();
    int skipped = 0;
    if (!Files.exists(file)) {
      return new Replay(records, 0);
    }
    byte[] all = Files.readAllBytes(file);
    int start = 0;
    int lineNumber = 0;
    while (start < all.length) {
      int end = start;
      while (end < all.length && all[end] != '\n') {
        end++;
      }
      lineNumber++;
      if (end == all.length) {
        // No newline: the write was cut short, so it was never acknowledged.
        LOG.log(Level.WARNING, "journal {0} line {1}: torn last line skipped", file, lineNumber);
        skipped++;
        break;
      }
      String line = new String(all, start, end - start, StandardCharsets.UTF_8);
      start = end + 1;
      if (line.isBlank()) {
        continue;
      }
      try {
        records.add(decode(line));
      } catch (RuntimeException e) {
        LOG.log(Level.WARNING, "journal {0} line {1}: corrupt line skipped ({2}): {3}", file, lineNumber,
            e.getMessage(), line.length() > 200 ? line.substring(0, 200) + "…" : line);
        skipped++;
      }
    }
    return new Replay(records, skipped);
  }

  /** Length of the file up to and including its last newline. */
  private long cleanLength(long size) throws IOException {
    if (size == 0) {
      return 0;
    }
    ByteBuffer one = ByteBuffer.allocate(1);
    for (long pos = size - 1; pos >= 0; pos--) {
      one.clear();
      channel.read(one, pos);
      if (one.get(0) == '\n') {
        return pos + 1;
      }
    }
    return 0;
  }

  static String encode(JournalRecord record) {
    String json = new String(JsonRecordCodec.toJson(record), StandardCharsets.UTF_8);
    return String.format("%08x %s%n", crc(json), json);
  }

  static JournalRecord decode(String line) {
    int space = line.indexOf(' ');
    if (space != 8) {
      throw new IllegalArgumentException("no checksum");
    }
    long expected = Long.parseLong(line.substring(0, 8), 16);
    String json = line.substring(9);
    if (crc(json) != expected) {
      throw new IllegalArgumentException("checksum mismatch");
    }
    JournalRecord record = JsonRecordCodec.fromJson(json.getBytes(StandardCharsets.UTF_8), JournalRecord.class);
    if (record.op() == null || record.block() == null) {
      throw new IllegalArgumentException("record without op or block");
    }
    return record;
  }

  private static long crc(String json) {
    CRC32 crc = new CRC32();
    crc.update(json.getBytes(StandardCharsets.UTF_8));
    return crc.getValue();
  }

  /**
   * Writes the records (not yet forced) and returns the position to pass to
   * {@link #awaitDurable}. A failed write is cut back so the file keeps whole lines.
   */
  synchronized long append(List<JournalRecord> records) throws IOException {
    if (broken) {
      throw new IOException("journal " + file + " is unusable after an earlier write failure");
    }
    StringBuilder text = new StringBuilder();
    records.forEach(r -> text.append(encode(r)));
    ByteBuffer bytes = ByteBuffer.wrap(text.toString().getBytes(StandardCharsets.UTF_8));
    long before = channel.position();
    try {
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    } catch (IOException e) {
      try {
        channel.truncate(before);
        channel.position(before);
      } catch (IOException cut) {
        broken = true;
      }
      throw e;
    }
    appended += bytes.limit();
    return appended;
  }

  /** The position after everything appended so far. */
  synchronized long position() {
    return appended;
  }

  /** Returns once every byte appended up to {@code position} is on disk (one force serves many writers). */
  void awaitDurable(long position) throws IOException {
    synchronized (forceLock) {
      if (durable >= position) {
        return;
      }
      if (forceFailure != null) {
        throw new IOException("journal " + file + " is not known to be on disk since a force failed ("
            + forceFailure.getMessage() + "); it must be rewritten whole first", forceFailure);
      }
      long target;
      FileChannel current;
      synchronized (this) {
        target = appended;
        current = channel;
      }
      try {
        force.force(current);
      } catch (IOException e) {
        forceFailure = e;
        throw e;
      }
      durable = target;
    }
  }

  /** True after a failed force: only a {@link #compact} makes the journal trustworthy again. */
  boolean needsRewrite() {
    synchronized (forceLock) {
      return forceFailure != null;
    }
  }

  /** Replaces the journal with exactly {@code live}, atomically (write, force, rename, force the directory). */
  void compact(List<JournalRecord> live) throws IOException {
    synchronized (forceLock) {
      synchronized (this) {
        Path tmp = dir.resolve(FILE_NAME + ".tmp");
        try (FileChannel out = FileChannel.open(tmp, StandardOpenOption.CREATE, StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
          StringBuilder text = new StringBuilder();
          live.forEach(r -> text.append(encode(r)));
          ByteBuffer bytes = ByteBuffer.wrap(text.toString().getBytes(StandardCharsets.UTF_8));
          while (bytes.hasRemaining()) {
            out.write(bytes);
          }
          out.force(true);
        }
        Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        forceDirectory();
        channel.close();
        channel = FileChannel.open(file, StandardOpenOption.WRITE, StandardOpenOption.READ);
        channel.position(channel.size());
        durable = appended;
        forceFailure = null;
      }
    }
  }

  private void forceDirectory() throws IOException {
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    }
  }

  @Override
  public synchronized void close() throws IOException {
    channel.close();
  }
}
