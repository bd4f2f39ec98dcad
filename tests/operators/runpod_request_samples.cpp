// Prints, as JSON, every GraphQL document the RunPod client can send and sample REST bodies it
// builds, so runpod_schema_check.py can validate them against the SDL and the OpenAPI schemas.
#include <iostream>

#include "operators/runpod/client/requests.hpp"

namespace {

using podflow::Json;
using podflow::runpod::PodSpec;
namespace detail = podflow::runpod::detail;

PodSpec full_spec() {
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

PodSpec template_only() {
  PodSpec spec;
  spec.name = "podflow-abc-run1-train-2";
  spec.template_id = "9x4m2p7v";
  spec.gpu_type_id = "NVIDIA GeForce RTX 4090";
  spec.cloud_type = "ALL";
  return spec;
}

PodSpec network_volume() {
  PodSpec spec;
  spec.name = "podflow-abc-run1-train-3";
  spec.image = "runpod/base:0.6";
  spec.gpu_type_id = "NVIDIA H100 80GB HBM3";
  spec.network_volume_id = "vol123";
  spec.volume_mount_path = "/runpod-volume";
  return spec;
}

Json graphql(const char* name, std::string_view document, Json variables) {
  return Json{
      {"name", name}, {"query", std::string(document)}, {"variables", std::move(variables)}};
}

Json rest(const char* name, const char* schema, Json body) {
  return Json{{"name", name}, {"schema", schema}, {"body", std::move(body)}};
}

}  // namespace

int main() {
  Json out;
  out["graphql"] = Json::array({
      graphql("create spot pod (full)", detail::kCreateSpotPodDocument,
              detail::spot_variables(full_spec(), 0.25)),
      graphql("create spot pod (template)", detail::kCreateSpotPodDocument,
              detail::spot_variables(template_only(), 0.4)),
      graphql("create spot pod (network volume)", detail::kCreateSpotPodDocument,
              detail::spot_variables(network_volume(), 1.5)),
      graphql("bid resume", detail::kBidResumeDocument,
              detail::bid_resume_variables("spot123", 0.3, 1)),
      graphql("pod facts", detail::kPodFactsDocument, detail::pod_facts_variables("pod123")),
  });
  out["rest"] = Json::array({
      rest("create pod (full)", "CreatePodRequest", detail::rest_create_body(full_spec())),
      rest("create pod (template)", "CreatePodRequest", detail::rest_create_body(template_only())),
      rest("create pod (network volume)", "CreatePodRequest",
           detail::rest_create_body(network_volume())),
      rest("stop", "PodActionRequest", detail::rest_action_body("stop")),
      rest("start", "PodActionRequest", detail::rest_action_body("start")),
  });
  std::cout << out.dump(2) << "\n";
  return 0;
}
