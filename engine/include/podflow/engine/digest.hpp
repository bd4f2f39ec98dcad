// Hashes and random identifiers: SHA-256 of workflow definitions and API token secrets.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace podflow::engine {

// Lower-case hex SHA-256 of `text`.
std::string sha256_hex(std::string_view text);

// `bytes` bytes from the operating system's cryptographic random source, as lower-case hex.
std::string random_hex(std::size_t bytes);

}  // namespace podflow::engine
