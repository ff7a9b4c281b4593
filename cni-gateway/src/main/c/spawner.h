/*
 * The agent <-> ipsec-cni-spawner framing, mirrored from
 * dev.ipseccni.cni.SpawnerProtocol (the definition, with the frame layouts).
 * SpawnerProtocolHeaderTest fails the build when the two differ.
 */
#ifndef IPSEC_CNI_SPAWNER_H
#define IPSEC_CNI_SPAWNER_H

#define SPAWN_VERSION 1
#define SPAWN_RUN 1
#define SPAWN_KILL 2
#define SPAWN_READY 16
#define SPAWN_EXITED 17
#define SPAWN_SIGNALED 18
#define SPAWN_FAILED 19
#define SPAWN_MAX_REQUEST_BYTES 16777216
#define SPAWN_MAX_OUTPUT_BYTES 1048576

#endif
