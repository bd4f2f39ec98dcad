// Deterministic pod names.
#include "operators/runpod/pod_name.hpp"

#include <cstdint>
#include <cstdio>

namespace podflow::runpod {
namespace {

std::string clean(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    const bool keep = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
    out += keep ? c : '-';
  }
  return out;
}

// FNV-1a: stable across builds and machines, unlike std::hash.
std::uint32_t fnv1a(std::string_view text) {
  std::uint32_t hash = 2166136261U;
  for (char c : text) {
    hash ^= static_cast<unsigned char>(c);
    hash *= 16777619U;
  }
  return hash;
}

}  // namespace

std::string pod_name_prefix(std::string_view install_id) {
  return "podflow-" + clean(install_id) + "-";
}

std::string pod_name(std::string_view install_id, std::string_view run_id, std::string_view task_id,
                     int try_number) {
  std::string name = pod_name_prefix(install_id) + clean(run_id) + "-" + clean(task_id) + "-" +
                     std::to_string(try_number);
  if (name.size() <= kMaxPodNameLength) return name;
  char hash[10];
  std::snprintf(hash, sizeof hash, "-%08x", fnv1a(name));
  name.resize(kMaxPodNameLength - 9);
  return name + hash;
}

}  // namespace podflow::runpod
