// What the RunPod client sends and how it reads answers, without sockets: GraphQL documents, REST
// bodies, response parsing and error mapping (tested directly and validated against the schemas).
#pragma once

#include <string>
#include <string_view>

#include "operators/net/http_client.hpp"
#include "podflow/operators/runpod_client.hpp"

namespace podflow::runpod::detail {

// GraphQL documents: fixed text, every value travels in `variables` (nothing is escaped by hand).
// Input type names in declarations are only the ones the SDKs spell out (see the SDL's header).
inline constexpr std::string_view kCreateSpotPodDocument =
    "mutation createSpotPod($input: PodRentInterruptableInput!) {\n"
    "  podRentInterruptable(input: $input) {\n"
    "    id name imageName desiredStatus costPerHr machineId podType lastStatusChange gpuCount\n"
    "    machine { gpuTypeId dataCenterId }\n"
    "  }\n"
    "}\n";
inline constexpr std::string_view kBidResumeDocument =
    "mutation bidResume($podId: String!, $bidPerGpu: Float!, $gpuCount: Int!) {\n"
    "  podBidResume(input: {podId: $podId, bidPerGpu: $bidPerGpu, gpuCount: $gpuCount}) {\n"
    "    id name imageName desiredStatus costPerHr machineId podType lastStatusChange gpuCount\n"
    "  }\n"
    "}\n";
inline constexpr std::string_view kPodFactsDocument =
    "query podFacts($podId: String!) {\n"
    "  pod(input: {podId: $podId}) {\n"
    "    id desiredStatus machineId podType lastStatusChange costPerHr\n"
    "  }\n"
    "}\n";

// Body of POST /v2/pods (CreatePodRequest).
Json rest_create_body(const PodSpec& spec);
// Body of POST /v2/pods/{id}/action (PodActionRequest).
Json rest_action_body(std::string_view action);
// `variables` of kCreateSpotPodDocument.
Json spot_variables(const PodSpec& spec, double bid_per_gpu);

// `variables` of kBidResumeDocument and kPodFactsDocument.
Json bid_resume_variables(std::string_view pod_id, double bid_per_gpu, int gpu_count);
Json pod_facts_variables(std::string_view pod_id);
// The POST body of a GraphQL call.
Json graphql_body(std::string_view document, Json variables);

// A REST v2 pod object; nullopt when it has no id.
std::optional<Pod> parse_rest_pod(const Json& json);
// A GraphQL Pod object.
std::optional<Pod> parse_graphql_pod(const Json& json);
std::optional<GpuType> parse_gpu_type(const Json& json);

// The error for a REST answer outside 2xx. `call` names the call ("get pod abc").
RunPodError rest_error(std::string_view call, const net::Response& response);
// The error for a GraphQL answer that is not HTTP 200 or carries `errors`; nullopt when it is fine.
std::optional<RunPodError> graphql_error(std::string_view call, const net::Response& response,
                                         const Json& body);
// The error for a failed exchange.
RunPodError network_error(std::string_view call, const net::Failure& failure,
                          std::chrono::milliseconds timeout);

}  // namespace podflow::runpod::detail
