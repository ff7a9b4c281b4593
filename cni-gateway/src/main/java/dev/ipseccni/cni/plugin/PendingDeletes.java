package dev.ipseccni.cni.plugin;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * A DEL that could not reach the agent, kept on disk until the agent replays it: the
 * runtime forgets a pod once DEL succeeded, so a DEL we drop is an address we leak.
 */
public final class PendingDeletes {
  private PendingDeletes() {}

  /** Writes the call durably (temp file, fsync, rename, fsync of the directory); returns the file. */
  public static Path record(Path dir, PluginCall call) throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
    }
    Path target = dir.resolve(PluginProtocol.pendingDelFileName(
        call.env("CNI_CONTAINERID"), call.env("CNI_IFNAME")));
    Path temp = dir.resolve(".tmp-" + ProcessHandle.current().pid() + "-" + target.getFileName());
    Files.deleteIfExists(temp);
    try (FileChannel out = FileChannel.open(temp, java.util.Set.of(StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE), PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")))) {
      ByteBuffer bytes = ByteBuffer.wrap(call.toJson().getBytes(StandardCharsets.UTF_8));
      while (bytes.hasRemaining()) {
        out.write(bytes);
      }
      out.force(true);
    }
    Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    }
    return target;
  }
}
