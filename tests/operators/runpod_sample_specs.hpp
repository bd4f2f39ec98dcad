// Pod specs shared by the RunPod client tests and runpod_request_samples (whose output is checked
// against RunPod's schemas), so the bodies the tests assert on are the ones validated.
#pragma once

#include "podflow/operators/runpod_client.hpp"

namespace podflow::testing {

using runpod::PodSpec;

inline PodSpec full_spec() {
  PodSpec spec;
  spec.name = "podflow-abc-run1-train-1";
  spec.image = "runpod/pytorch:2.4";
  spec.gpu_type_id = "NVIDIA RTX A4000";
  spec.gpu_count = 2;
  spec.cloud_type = "COMMUNITY";
  spec.data_center_ids = {"EU-RO-1", "US-KS-2"};
  spec.env = {{"RUN_ID", "run1"}, {"QUOTE", "say \"hi\"\n"}};
  spec.container_disk_gb = 40;
  spec.volume_gb = 20;
  spec.volume_mount_path = "/workspace";
  spec.ports = {"8888/http", "22/tcp"};
  spec.args = "python train.py --epochs 3";
  spec.allowed_cuda_versions = {"12.4", "12.8"};
  spec.start_ssh = true;
  spec.terminate_after = "2026-06-02T12:00:00Z";
  return spec;
}

inline PodSpec template_only() {
  PodSpec spec;
  spec.name = "podflow-abc-run1-train-2";
  spec.template_id = "9x4m2p7v";
  spec.gpu_type_id = "NVIDIA GeForce RTX 4090";
  spec.cloud_type = "ALL";
  return spec;
}

inline PodSpec network_volume() {
  PodSpec spec;
  spec.name = "podflow-abc-run1-train-3";
  spec.image = "runpod/base:0.6";
  spec.gpu_type_id = "NVIDIA H100 80GB HBM3";
  spec.network_volume_id = "vol123";
  spec.volume_mount_path = "/runpod-volume";
  return spec;
}

}  // namespace podflow::testing
