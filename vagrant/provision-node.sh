#!/bin/bash
# A worker: join the control plane with the bootstrap token the Vagrantfile made.
# Lab only: the CA is not pinned (--discovery-token-unsafe-skip-ca-verification).
#   NODE_NAME MASTER_IP KUBEADM_TOKEN
set -euo pipefail

: "${NODE_NAME:?}" "${MASTER_IP:?}" "${KUBEADM_TOKEN:?}"

if [ ! -f /etc/kubernetes/kubelet.conf ]; then
  kubeadm join "$MASTER_IP:6443" \
    --node-name "$NODE_NAME" \
    --token "$KUBEADM_TOKEN" \
    --discovery-token-unsafe-skip-ca-verification
fi
