package dev.ipseccni.cni;

/** The CNI_COMMAND values of spec 1.1.0. */
public enum CniCommand {
  ADD, DEL, CHECK, GC, STATUS, VERSION;

  public static CniCommand parse(String raw) {
    if (raw == null || raw.isEmpty()) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_COMMAND is not set");
    }
    try {
      return valueOf(raw);
    } catch (IllegalArgumentException e) {
      throw new CniError(CniError.INVALID_ENVIRONMENT, "CNI_COMMAND " + raw + " is not a CNI command");
    }
  }
}
