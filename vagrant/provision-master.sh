#!/bin/bash
# The control plane: kubeadm init on the private network with the pod CIDR the agents
# hand out, a kubeconfig for the vagrant user. Idempotent.
#   NODE_NAME NODE_IP POD_CIDR KUBEADM_TOKEN
set -euo pipefail

: "${NODE_NAME:?}" "${NODE_IP:?}" "${POD_CIDR:?}" "${KUBEADM_TOKEN:?}"

if [ ! -f /etc/kubernetes/admin.conf ]; then
  kubeadm init \
    --node-name "$NODE_NAME" \
    --apiserver-advertise-address "$NODE_IP" \
    --pod-network-cidr "$POD_CIDR" \
    --token "$KUBEADM_TOKEN" \
    --token-ttl 0
fi

install -d -o vagrant -g vagrant /home/vagrant/.kube
install -m 0600 -o vagrant -g vagrant /etc/kubernetes/admin.conf /home/vagrant/.kube/config
