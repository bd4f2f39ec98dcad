// Prints, as JSON, every GraphQL document the RunPod client can send and sample REST bodies it
// builds, so runpod_schema_check.py can validate them against the SDL and the OpenAPI schemas.
#include <iostream>

#include "operators/runpod/client/requests.hpp"
#include "runpod_sample_specs.hpp"

namespace {

using podflow::Json;
using podflow::testing::full_spec;
using podflow::testing::network_volume;
using podflow::testing::template_only;
namespace detail = podflow::runpod::detail;

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
