"""GPU Nodes of realistic size, as the API server returns them, and the provider-kubernetes
Objects that label them as Crossplane observes them; deterministic by seed.

A Node here has what a GPU Operator node carries, not just the labels the GPUPool reads:

- labels: the kubelet's and cloud's well-known ones; Node Feature Discovery's
  `feature.node.kubernetes.io/*` (cpu-cpuid, cpu-model, kernel, pci, system, ...); GPU feature
  discovery's `nvidia.com/*` (gpu.*, cuda.*, mig.*, gpu.deploy.* of the operator's operands,
  and under the MIG mixed strategy `nvidia.com/mig-<profile>.*` per profile), names from
  ../shared/reference/nvidia-gpu-sharing.md (GFD) and NFD's feature label docs;
- annotations: NFD's feature-labels list, the attach-detach and CNI ones;
- spec: podCIDR(s), providerID, the GPU taint;
- status: capacity/allocatable with nvidia.com/gpu or MIG resources, hugepages and RDMA;
  the kubelet's five conditions; addresses; daemonEndpoints; nodeInfo; runtimeHandlers;
  40-60 container images with sha256 digests (the operator's, CNI, monitoring, and models);
- metadata.managedFields of the kubelet, nfd-master, kube-controller-manager and
  provider-kubernetes (each field set lists the keys it owns, as the API server keeps them).

The observed Object is what provider-kubernetes v1.2.0 writes (its `setAtProvider` stores the
whole Node it read, managedFields included, in `status.atProvider.manifest`) under the Object
Crossplane applied: the desired spec plus the CRD's defaults, Crossplane's labels,
annotations, owner reference, finalizer and managedFields, and the Synced/Ready conditions.
"""

from __future__ import annotations

import copy
import random
from typing import Any

ARCH = "amd64"
PRODUCTS = {
    # product label -> (family, compute major.minor, memory MiB, MIG capable)
    "NVIDIA-H100-80GB-HBM3": ("hopper", (9, 0), 81559, True),
    "NVIDIA-A100-SXM4-80GB": ("ampere", (8, 0), 81920, True),
    "NVIDIA-L40S": ("ada-lovelace", (8, 9), 46068, False),
}
CPUID = [
    "ADX",
    "AESNI",
    "AMXBF16",
    "AMXINT8",
    "AMXTILE",
    "AVX",
    "AVX2",
    "AVX512BF16",
    "AVX512BITALG",
    "AVX512BW",
    "AVX512CD",
    "AVX512DQ",
    "AVX512F",
    "AVX512FP16",
    "AVX512IFMA",
    "AVX512VBMI",
    "AVX512VBMI2",
    "AVX512VL",
    "AVX512VNNI",
    "AVX512VPOPCNTDQ",
    "AVXVNNI",
    "CETIBT",
    "CETSS",
    "CLDEMOTE",
    "CMPXCHG8",
    "FMA3",
    "FSRM",
    "FXSR",
    "FXSROPT",
    "GFNI",
    "HYPERVISOR",
    "IA32_ARCH_CAP",
    "IBPB",
    "LAHF",
    "MD_CLEAR",
    "MOVBE",
    "MOVDIR64B",
    "MOVDIRI",
    "OSXSAVE",
    "SERIALIZE",
    "SHA",
    "SPEC_CTRL_SSBD",
    "STIBP",
    "SYSCALL",
    "SYSEE",
    "TSXLDTRK",
    "VAES",
    "VMX",
    "VPCLMULQDQ",
    "WAITPKG",
    "X87",
    "XGETBV1",
    "XSAVE",
    "XSAVEC",
    "XSAVEOPT",
    "XSAVES",
]
OPERANDS = [
    "container-toolkit",
    "dcgm",
    "dcgm-exporter",
    "device-plugin",
    "driver",
    "gpu-feature-discovery",
    "mig-manager",
    "node-status-exporter",
    "operator-validator",
]
MIG_PROFILES = {"1g.10gb": (1, 16, 9856), "2g.20gb": (2, 32, 19968), "3g.40gb": (3, 60, 40192)}
IMAGES = [
    "nvcr.io/nvidia/gpu-operator",
    "nvcr.io/nvidia/k8s-device-plugin",
    "nvcr.io/nvidia/cloud-native/k8s-mig-manager",
    "nvcr.io/nvidia/cloud-native/gpu-operator-validator",
    "nvcr.io/nvidia/k8s/container-toolkit",
    "nvcr.io/nvidia/k8s/dcgm-exporter",
    "nvcr.io/nvidia/cloud-native/dcgm",
    "nvcr.io/nvidia/driver",
    "nvcr.io/nvidia/cloud-native/k8s-driver-manager",
    "nvcr.io/nvidia/kubevirt-gpu-device-plugin",
    "registry.k8s.io/nfd/node-feature-discovery",
    "registry.k8s.io/kube-proxy",
    "registry.k8s.io/pause",
    "registry.k8s.io/sig-storage/csi-node-driver-registrar",
    "registry.k8s.io/sig-storage/livenessprobe",
    "registry.k8s.io/coredns/coredns",
    "quay.io/cilium/cilium",
    "quay.io/cilium/operator-generic",
    "quay.io/prometheus/node-exporter",
    "quay.io/prometheus-operator/prometheus-config-reloader",
    "docker.io/calico/node",
    "docker.io/calico/cni",
    "ghcr.io/aquasecurity/trivy",
    "public.ecr.aws/aws-ec2/aws-node-termination-handler",
    "mcr.microsoft.com/oss/kubernetes/azure-disk-csi",
    "vllm/vllm-openai",
    "nvcr.io/nvidia/tritonserver",
    "nvcr.io/nvidia/tensorrt-llm/release",
    "ghcr.io/llm-d/llm-d-inference-scheduler",
    "ghcr.io/inference-platform/inference-sidecar",
    "docker.io/library/redis",
    "docker.io/lmcache/vllm-openai",
    "nvcr.io/nvidia/k8s/cuda-sample",
    "docker.io/fluent/fluent-bit",
    "docker.io/grafana/promtail",
    "docker.io/istio/proxyv2",
    "ghcr.io/kedacore/keda",
    "registry.k8s.io/metrics-server/metrics-server",
    "registry.k8s.io/dns/k8s-dns-node-cache",
    "docker.io/rancher/local-path-provisioner",
    "nvcr.io/nvidia/cloud-native/network-operator",
    "nvcr.io/nvidia/mellanox/doca-driver",
    "nvcr.io/nvidia/mellanox/k8s-rdma-shared-dev-plugin",
    "nvcr.io/nvidia/mellanox/ib-kubernetes",
    "docker.io/bitnami/kubectl",
    "docker.io/library/busybox",
    "docker.io/library/python",
    "docker.io/pytorch/pytorch",
    "nvcr.io/nvidia/pytorch",
    "nvcr.io/nvidia/nemo",
    "nvcr.io/nim/meta/llama-3.1-8b-instruct",
    "nvcr.io/nim/meta/llama-3.1-70b-instruct",
    "ghcr.io/huggingface/text-generation-inference",
    "docker.io/kserve/huggingfaceserver",
    "docker.io/ollama/ollama",
    "quay.io/jetstack/cert-manager-controller",
    "quay.io/argoproj/argocd",
    "docker.io/crossplane/crossplane",
    "docker.io/envoyproxy/envoy",
    "ghcr.io/external-secrets/external-secrets",
]
TIME = "2026-11-02T08:14:27Z"
HEARTBEAT = "2026-12-06T22:03:51Z"


def _hex(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(n))


def _uid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _fields(keys: Any) -> dict[str, Any]:
    """managedFields' fieldsV1 for a set of map keys."""
    return {f"f:{k}": {} for k in keys}


def gfd_labels(product: str, gpus: int, mig_profiles: dict[str, int] | None) -> dict[str, str]:
    """GPU feature discovery's labels (and the operator's gpu.deploy.*) for one node."""
    family, (major, minor), memory, mig_capable = PRODUCTS[product]
    out = {
        "nvidia.com/cuda.driver-version.full": "580.95.05",
        "nvidia.com/cuda.driver-version.major": "580",
        "nvidia.com/cuda.driver-version.minor": "95",
        "nvidia.com/cuda.driver-version.revision": "05",
        "nvidia.com/cuda.driver.major": "580",
        "nvidia.com/cuda.driver.minor": "95",
        "nvidia.com/cuda.driver.rev": "05",
        "nvidia.com/cuda.runtime-version.full": "13.0",
        "nvidia.com/cuda.runtime-version.major": "13",
        "nvidia.com/cuda.runtime-version.minor": "0",
        "nvidia.com/cuda.runtime.major": "13",
        "nvidia.com/cuda.runtime.minor": "0",
        "nvidia.com/gfd.timestamp": "1764999831",
        "nvidia.com/gpu-driver-upgrade-state": "upgrade-done",
        "nvidia.com/gpu.compute.major": str(major),
        "nvidia.com/gpu.compute.minor": str(minor),
        "nvidia.com/gpu.count": str(gpus),
        "nvidia.com/gpu.family": family,
        "nvidia.com/gpu.machine": "PowerEdge-XE9680",
        "nvidia.com/gpu.memory": str(memory),
        "nvidia.com/gpu.mode": "compute",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.product": product,
        "nvidia.com/gpu.replicas": "1",
        "nvidia.com/gpu.sharing-strategy": "none",
        "nvidia.com/gpu.clique": f"{_hex(random.Random(product), 8)}.1",
        "nvidia.com/mig.capable": str(mig_capable).lower(),
        "nvidia.com/mps.capable": "false",
        **{f"nvidia.com/gpu.deploy.{o}": "true" for o in OPERANDS},
    }
    if mig_profiles:
        out["nvidia.com/mig.strategy"] = "mixed"
        out["nvidia.com/gpu.replicas"] = "0"
        for name, count in mig_profiles.items():
            slices, sms, mem = MIG_PROFILES[name]
            prefix = f"nvidia.com/mig-{name}"
            out |= {
                f"{prefix}.count": str(count),
                f"{prefix}.engines.copy": str(slices),
                f"{prefix}.engines.decoder": str(slices),
                f"{prefix}.engines.encoder": "0",
                f"{prefix}.engines.jpeg": str(slices // 2),
                f"{prefix}.engines.ofa": "0",
                f"{prefix}.memory": str(mem),
                f"{prefix}.multiprocessors": str(sms),
                f"{prefix}.product": f"{product}-MIG-{name}",
                f"{prefix}.replicas": "1",
                f"{prefix}.sharing-strategy": "none",
                f"{prefix}.slices.ci": str(slices),
                f"{prefix}.slices.gi": str(slices),
            }
    return out


def nfd_labels(rng: random.Random) -> dict[str, str]:
    """Node Feature Discovery's labels of a dual-socket Sapphire Rapids GPU server."""
    out = {f"feature.node.kubernetes.io/cpu-cpuid.{f}": "true" for f in CPUID}
    out |= {
        "feature.node.kubernetes.io/cpu-cstate.enabled": "true",
        "feature.node.kubernetes.io/cpu-hardware_multithreading": "true",
        "feature.node.kubernetes.io/cpu-model.family": "6",
        "feature.node.kubernetes.io/cpu-model.id": "143",
        "feature.node.kubernetes.io/cpu-model.vendor_id": "Intel",
        "feature.node.kubernetes.io/cpu-pstate.scaling_governor": "performance",
        "feature.node.kubernetes.io/cpu-pstate.status": "active",
        "feature.node.kubernetes.io/cpu-pstate.turbo": "true",
        "feature.node.kubernetes.io/cpu-rdt.RDTCMT": "true",
        "feature.node.kubernetes.io/cpu-rdt.RDTL3CA": "true",
        "feature.node.kubernetes.io/cpu-rdt.RDTMBA": "true",
        "feature.node.kubernetes.io/cpu-rdt.RDTMBM": "true",
        "feature.node.kubernetes.io/cpu-rdt.RDTMON": "true",
        "feature.node.kubernetes.io/kernel-config.NO_HZ": "true",
        "feature.node.kubernetes.io/kernel-config.NO_HZ_IDLE": "true",
        "feature.node.kubernetes.io/kernel-version.full": "6.8.0-1015-nvidia",
        "feature.node.kubernetes.io/kernel-version.major": "6",
        "feature.node.kubernetes.io/kernel-version.minor": "8",
        "feature.node.kubernetes.io/kernel-version.revision": "0",
        "feature.node.kubernetes.io/memory-numa": "true",
        "feature.node.kubernetes.io/network-sriov.capable": "true",
        "feature.node.kubernetes.io/pci-10de.present": "true",
        "feature.node.kubernetes.io/pci-10de.sriov.capable": "true",
        "feature.node.kubernetes.io/pci-15b3.present": "true",
        "feature.node.kubernetes.io/pci-15b3.sriov.capable": "true",
        "feature.node.kubernetes.io/pci-1a03.present": "true",
        "feature.node.kubernetes.io/rdma.available": "true",
        "feature.node.kubernetes.io/rdma.capable": "true",
        "feature.node.kubernetes.io/storage-nonrotationaldisk": "true",
        "feature.node.kubernetes.io/system-os_release.ID": "ubuntu",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID": "24.04",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID.major": "24",
        "feature.node.kubernetes.io/system-os_release.VERSION_ID.minor": "04",
    }
    if rng.random() < 0.5:
        out["feature.node.kubernetes.io/cpu-security.tdx.enabled"] = "true"
    return out


def node(
    name: str,
    product: str,
    gpus: int,
    selector: dict[str, str],
    *,
    seed: int,
    extra_labels: dict[str, str] | None = None,
    mig_profiles: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One GPU Node of a GPU Operator cluster, ~15-20 KB of JSON, deterministic by seed."""
    rng = random.Random(f"{seed}/{name}")
    zone = f"us-east-1{'abc'[rng.randrange(3)]}"
    labels = {
        "beta.kubernetes.io/arch": ARCH,
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": ARCH,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": "p5.48xlarge",
        "topology.kubernetes.io/region": "us-east-1",
        "topology.kubernetes.io/zone": zone,
        "topology.k8s.aws/network-node-layer-1": f"nn-{_hex(rng, 17)}",
        "topology.k8s.aws/network-node-layer-2": f"nn-{_hex(rng, 17)}",
        "node-role.kubernetes.io/gpu": "",
        **nfd_labels(rng),
        **gfd_labels(product, gpus, mig_profiles),
        **selector,
        **(extra_labels or {}),
    }
    feature_labels = sorted(
        k.split("/", 1)[1] for k in labels if k.startswith("feature.node.kubernetes.io/")
    )
    ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    resources = {
        "cpu": "192",
        "ephemeral-storage": "7440663372Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "42Gi",
        "memory": "2097152000Ki",
        "pods": "110",
        "rdma/rdma_shared_device_a": "63",
        "vpc.amazonaws.com/efa": "32",
    }
    if mig_profiles:
        resources |= {f"nvidia.com/mig-{p}": str(c * gpus) for p, c in mig_profiles.items()}
        resources["nvidia.com/gpu"] = "0"
    else:
        resources["nvidia.com/gpu"] = str(gpus)
    allocatable = dict(resources, cpu="191450m", memory="2085617664Ki", pods="110")
    conditions = [
        {
            "lastHeartbeatTime": HEARTBEAT,
            "lastTransitionTime": TIME,
            "message": message,
            "reason": reason,
            "status": status,
            "type": typ,
        }
        for typ, status, reason, message in (
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            (
                "PIDPressure",
                "False",
                "KubeletHasSufficientPID",
                "kubelet has sufficient PID available",
            ),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ("KernelDeadlock", "False", "KernelHasNoDeadlock", "kernel has no deadlock"),
        )
    ]
    count = rng.randint(40, 60)
    images = []
    for repo in sorted(rng.sample(IMAGES, count)):
        tag = f"v{rng.randint(0, 30)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}"
        images.append(
            {
                "names": [f"{repo}@sha256:{_hex(rng, 64)}", f"{repo}:{tag}"],
                "sizeBytes": rng.randint(700_000, 22_000_000_000),
            }
        )
    status = {
        "addresses": [
            {"address": ip, "type": "InternalIP"},
            {"address": f"ip-{ip.replace('.', '-')}.ec2.internal", "type": "InternalDNS"},
            {"address": name, "type": "Hostname"},
        ],
        "allocatable": allocatable,
        "capacity": resources,
        "conditions": conditions,
        "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
        "features": {"supplementalGroupsPolicy": True},
        "images": images,
        "nodeInfo": {
            "architecture": ARCH,
            "bootID": _uid(rng),
            "containerRuntimeVersion": "containerd://2.1.4",
            "kernelVersion": "6.8.0-1015-nvidia",
            "kubeProxyVersion": "",
            "kubeletVersion": "v1.34.2",
            "machineID": _hex(rng, 32),
            "operatingSystem": "linux",
            "osImage": "Ubuntu 24.04.3 LTS",
            "systemUUID": _uid(rng),
        },
        "runtimeHandlers": [
            {"features": {"recursiveReadOnlyMounts": True, "userNamespaces": True}, "name": h}
            for h in ("nvidia", "nvidia-cdi", "nvidia-legacy", "runc", "")
        ],
    }
    annotations = {
        "alpha.kubernetes.io/provided-node-ip": ip,
        "csi.volume.kubernetes.io/nodeid": f'{{"ebs.csi.aws.com":"i-{_hex(rng, 17)}"}}',
        "nfd.node.kubernetes.io/feature-labels": ",".join(feature_labels),
        "nfd.node.kubernetes.io/extended-resources": "",
        "node.alpha.kubernetes.io/ttl": "0",
        "nvidia.com/gpu-driver-upgrade-enabled": "true",
        "volumes.kubernetes.io/controller-managed-attach-detach": "true",
    }
    managed = [
        (
            "kubelet",
            "Update",
            "",
            {
                "f:metadata": {
                    "f:annotations": _fields(
                        [
                            "alpha.kubernetes.io/provided-node-ip",
                            "volumes.kubernetes.io/controller-managed-attach-detach",
                        ]
                    ),
                    "f:labels": _fields(
                        k for k in labels if "kubernetes.io" in k and not k.startswith("feature.")
                    ),
                },
                "f:spec": {"f:providerID": {}},
            },
        ),
        (
            "kubelet",
            "Update",
            "status",
            {
                "f:status": {
                    "f:allocatable": _fields(allocatable),
                    "f:capacity": _fields(resources),
                    "f:conditions": {
                        f'k:{{"type":"{c["type"]}"}}': _fields(
                            [
                                "lastHeartbeatTime",
                                "lastTransitionTime",
                                "message",
                                "reason",
                                "status",
                            ]
                        )
                        for c in conditions
                    },
                    "f:daemonEndpoints": {"f:kubeletEndpoint": {"f:Port": {}}},
                    "f:features": {},
                    "f:images": {},
                    "f:nodeInfo": _fields(status["nodeInfo"]),
                    "f:runtimeHandlers": {},
                }
            },
        ),
        (
            "nfd-master",
            "Update",
            "",
            {
                "f:metadata": {
                    "f:annotations": _fields(
                        [
                            "nfd.node.kubernetes.io/feature-labels",
                            "nfd.node.kubernetes.io/extended-resources",
                        ]
                    ),
                    "f:labels": _fields(
                        k
                        for k in labels
                        if k.startswith(("feature.node.kubernetes.io/", "nvidia.com/"))
                    ),
                }
            },
        ),
        (
            "kube-controller-manager",
            "Update",
            "",
            {
                "f:metadata": {"f:annotations": _fields(["node.alpha.kubernetes.io/ttl"])},
                "f:spec": {"f:podCIDR": {}, "f:podCIDRs": {}},
            },
        ),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "annotations": annotations,
            "creationTimestamp": TIME,
            "labels": labels,
            "managedFields": [
                {
                    "apiVersion": "v1",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": fields,
                    "manager": manager,
                    "operation": op,
                    **({"subresource": sub} if sub else {}),
                    "time": HEARTBEAT,
                }
                for manager, op, sub, fields in managed
            ],
            "name": name,
            "resourceVersion": str(rng.randrange(10**9)),
            "uid": _uid(rng),
        },
        "spec": {
            "podCIDR": f"100.{rng.randrange(64, 128)}.{rng.randrange(256)}.0/24",
            "podCIDRs": [f"100.{rng.randrange(64, 128)}.{rng.randrange(256)}.0/24"],
            "providerID": f"aws:///{zone}/i-{_hex(rng, 17)}",
            "taints": [{"effect": "NoSchedule", "key": "nvidia.com/gpu", "value": "present"}],
        },
        "status": status,
    }


def pool_nodes(
    count: int,
    selector: dict[str, str],
    *,
    seed: int = 1,
    products: tuple[str, ...] = ("NVIDIA-H100-80GB-HBM3", "NVIDIA-A100-SXM4-80GB"),
    gpus: int = 8,
) -> list[dict[str, Any]]:
    """`count` Nodes of a pool, products drawn by seed, named like cloud instances."""
    rng = random.Random(seed)
    return [
        node(
            f"ip-10-{i // 250}-{i % 250}-{rng.randrange(1, 255)}.ec2.internal",
            rng.choice(products),
            gpus,
            selector,
            seed=seed,
        )
        for i in range(count)
    ]


def observed_object(
    desired: dict[str, Any],
    live_node: dict[str, Any],
    composite: dict[str, Any],
    resource_name: str,
    *,
    seed: int = 1,
) -> dict[str, Any]:
    """The provider-kubernetes Object labelling `live_node`, as Crossplane observes it after a
    reconcile: desired spec with the CRD defaults, metadata the API server and Crossplane add,
    and status.atProvider.manifest holding the whole Node the provider read."""
    rng = random.Random(f"{seed}/{desired['metadata']['name']}")
    out = copy.deepcopy(desired)
    spec = out["spec"]
    spec.setdefault("deletionPolicy", "Delete")
    spec.setdefault("providerConfigRef", {"name": "default"})
    spec.setdefault("readiness", {"policy": "SuccessfulCreate"})
    spec.setdefault("watch", False)
    manifest = copy.deepcopy(live_node)
    # The Node carries the labels the Object applies, and provider-kubernetes' field manager.
    manifest["metadata"]["labels"].update(spec["forProvider"]["manifest"]["metadata"]["labels"])
    manifest["metadata"]["managedFields"].append(
        {
            "apiVersion": "v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {
                    "f:labels": _fields(spec["forProvider"]["manifest"]["metadata"]["labels"])
                }
            },
            "manager": "provider-kubernetes",
            "operation": "Apply",
            "time": HEARTBEAT,
        }
    )
    cmeta = composite["metadata"]
    meta = out["metadata"]
    meta["labels"] = {
        **meta.get("labels", {}),
        "crossplane.io/composite": cmeta["name"],
        **{k: v for k, v in cmeta.get("labels", {}).items() if k.startswith("crossplane.io/")},
    }
    meta |= {
        "annotations": {
            "crossplane.io/composition-resource-name": resource_name,
            "crossplane.io/external-name": meta["name"],
        },
        "creationTimestamp": TIME,
        "finalizers": ["finalizer.managedresource.crossplane.io"],
        "generation": 1,
        "ownerReferences": [
            {
                "apiVersion": composite["apiVersion"],
                "blockOwnerDeletion": True,
                "controller": True,
                "kind": composite["kind"],
                "name": cmeta["name"],
                "uid": cmeta.get("uid", "00000000-0000-0000-0000-000000000000"),
            }
        ],
        "resourceVersion": str(rng.randrange(10**9)),
        "uid": _uid(rng),
        "managedFields": [
            {
                "apiVersion": desired["apiVersion"],
                "fieldsType": "FieldsV1",
                "fieldsV1": {
                    "f:metadata": {"f:labels": _fields(meta["labels"]), "f:ownerReferences": {}},
                    "f:spec": _fields(desired["spec"]),
                },
                "manager": "apiextensions.crossplane.io/composed/" + _hex(rng, 16),
                "operation": "Apply",
                "time": HEARTBEAT,
            },
            {
                "apiVersion": desired["apiVersion"],
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:atProvider": {"f:manifest": {}}, "f:conditions": {}}},
                "manager": "provider-kubernetes",
                "operation": "Update",
                "subresource": "status",
                "time": HEARTBEAT,
            },
        ],
    }
    out["status"] = {
        "atProvider": {"manifest": manifest},
        "conditions": [
            {
                "lastTransitionTime": TIME,
                "reason": "ReconcileSuccess",
                "status": "True",
                "type": "Synced",
            },
            {"lastTransitionTime": TIME, "reason": "Available", "status": "True", "type": "Ready"},
        ],
    }
    return out
