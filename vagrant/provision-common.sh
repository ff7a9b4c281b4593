#!/bin/bash
# Every machine: containerd, kubeadm/kubelet/kubectl from pkgs.k8s.io, strongSwan's charon,
# a JRE 17, and the ipsec-cni agent with charon as systemd units. Idempotent.
#   NODE_NAME NODE_IP CLUSTER_MEMBERS (comma-separated) KUBERNETES_MINOR (e.g. v1.34)
set -euo pipefail

: "${NODE_NAME:?}" "${NODE_IP:?}" "${CLUSTER_MEMBERS:?}" "${KUBERNETES_MINOR:?}"
export DEBIAN_FRONTEND=noninteractive

# --- the jars and binaries built on the host (mvn -DskipTests install) --------------
for built in /vagrant/agent/target/ipsec-cni-agent.jar /vagrant/cni-gateway/target/ipsec-cni; do
  if [ ! -f "$built" ]; then
    echo "provision: $built is missing; run 'mvn -DskipTests install' on the host, then 'vagrant provision'" >&2
    exit 1
  fi
done

# --- kernel and host settings kubelet needs ----------------------------------------
swapoff -a
sed -i '/\sswap\s/s/^/#/' /etc/fstab
cat >/etc/modules-load.d/ipsec-cni.conf <<'CONF'
overlay
br_netfilter
CONF
modprobe overlay
modprobe br_netfilter
cat >/etc/sysctl.d/90-ipsec-cni.conf <<'CONF'
net.ipv4.ip_forward = 1
net.bridge.bridge-nf-call-iptables = 1
CONF
sysctl --system >/dev/null

# --- packages --------------------------------------------------------------------
apt-get update -q
apt-get install -y -q --no-install-recommends \
  ca-certificates curl gpg jq containerd iptables iproute2 \
  strongswan-charon strongswan-swanctl libcharon-extra-plugins libstrongswan-extra-plugins \
  openjdk-17-jre-headless

keyring=/etc/apt/keyrings/kubernetes-apt-keyring.gpg
repo="https://pkgs.k8s.io/core:/stable:/${KUBERNETES_MINOR}/deb/"
install -d -m 0755 /etc/apt/keyrings
if [ ! -f "$keyring" ]; then
  curl -fsSL "${repo}Release.key" | gpg --dearmor -o "$keyring"
fi
echo "deb [signed-by=$keyring] $repo /" >/etc/apt/sources.list.d/kubernetes.list
apt-get update -q
apt-get install -y -q kubelet kubeadm kubectl
apt-mark hold kubelet kubeadm kubectl >/dev/null

# containerd with the systemd cgroup driver, as kubelet expects by default
mkdir -p /etc/containerd
containerd config default | sed 's/SystemdCgroup = false/SystemdCgroup = true/' >/etc/containerd/config.toml
systemctl restart containerd

# kubelet on the private network, not on the NAT interface every VM shares
echo "KUBELET_EXTRA_ARGS=--node-ip=$NODE_IP" >/etc/default/kubelet

# --- ipsec-cni ---------------------------------------------------------------------
install -D -m 0644 /vagrant/agent/target/ipsec-cni-agent.jar /usr/lib/ipsec-cni/ipsec-cni-agent.jar
install -m 0755 /vagrant/bin/ipsec-cni /usr/bin/ipsec-cni
install -D -m 0755 /vagrant/cni-gateway/target/ipsec-cni /opt/cni/bin/ipsec-cni
for script in ipsec-cni-render-config ipsec-cni-start-charon; do
  install -m 0755 "/vagrant/k8s/image/$script" "/usr/local/bin/$script"
done

install -d -m 0700 /etc/ipsec-cni
if [ -f /tmp/ipsec-cni-cluster-secret ]; then
  install -m 0600 /tmp/ipsec-cni-cluster-secret /etc/ipsec-cni/cluster-secret
  rm -f /tmp/ipsec-cni-cluster-secret
fi
install -D -m 0644 /vagrant/vagrant/agent-base.json /etc/ipsec-cni/base/agent.json
NODE_NAME=$NODE_NAME HOST_IP=$NODE_IP IPSEC_CNI_MEMBERS=$CLUSTER_MEMBERS \
  IPSEC_CNI_BASE_CONFIG=/etc/ipsec-cni/base/agent.json IPSEC_CNI_CONFIG=/etc/ipsec-cni/agent.json \
  /usr/local/bin/ipsec-cni-render-config
ipsec-cni check-config --config /etc/ipsec-cni/agent.json || true  # charon is not up yet

install -m 0644 /vagrant/vagrant/ipsec-cni-charon.service /etc/systemd/system/ipsec-cni-charon.service
install -m 0644 /vagrant/vagrant/ipsec-cni-agent.service /etc/systemd/system/ipsec-cni-agent.service
systemctl daemon-reload
systemctl enable --now ipsec-cni-charon.service ipsec-cni-agent.service
systemctl restart ipsec-cni-charon.service ipsec-cni-agent.service
