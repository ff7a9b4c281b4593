/*
 * The plugin <-> agent protocol, mirrored from
 * dev.ipseccni.cni.plugin.PluginProtocol (the definition). PluginProtocolHeaderTest
 * fails the build when the two differ.
 */
#ifndef IPSEC_CNI_PROTOCOL_H
#define IPSEC_CNI_PROTOCOL_H

#define PROTO_PATH "/cni"
#define PROTO_METHOD "POST"
#define PROTO_CONTENT_TYPE "application/json"
#define PROTO_EXIT_CODE_HEADER "Cni-Exit-Code"
#define PROTO_SOCKET_KEY "agentSocket"
#define PROTO_DEFAULT_SOCKET "/run/ipsec-cni/cni.sock"
#define PROTO_SOCKET_ENV "IPSEC_CNI_AGENT_SOCKET"
#define PROTO_PENDING_DEL_DIR_NAME "pending-del"
#define PROTO_PENDING_DEL_SUFFIX ".json"
#define PROTO_ENV_PREFIX "CNI_"
#define PROTO_INTERFACE_PRESENT_KEY "interfacePresent"
#define PROTO_IPAM_TYPE "ipsec-cni"
#define PROTO_IPAM_RESULT_KEY "result"
#define PROTO_SUPPORTED_VERSIONS "\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\""
#define PROTO_LATEST_VERSION "1.1.0"

#define PROTO_CODE_INCOMPATIBLE_VERSION 1
#define PROTO_CODE_INVALID_ENVIRONMENT 4
#define PROTO_CODE_IO_FAILURE 5
#define PROTO_CODE_DECODE_FAILURE 6
#define PROTO_CODE_INVALID_NETWORK_CONFIG 7
#define PROTO_CODE_TRY_AGAIN_LATER 11
#define PROTO_CODE_NOT_AVAILABLE 50
#define PROTO_CODE_BAD_AGENT_REPLY 120

#endif
