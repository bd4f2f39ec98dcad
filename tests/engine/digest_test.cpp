// SHA-256 and random identifiers: known answers and the shape of random output.
#include "podflow/engine/digest.hpp"

#include <doctest/doctest.h>

#include <set>

using podflow::engine::random_hex;
using podflow::engine::sha256_hex;

TEST_CASE("Digest.sha256_matches_the_published_test_vectors" * doctest::timeout(5)) {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("Digest.random_hex_has_the_asked_length_and_does_not_repeat" * doctest::timeout(5)) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto value = random_hex(20);
    CHECK(value.size() == 40);
    CHECK(value.find_first_not_of("0123456789abcdef") == std::string::npos);
    seen.insert(value);
  }
  CHECK(seen.size() == 1000);
}
