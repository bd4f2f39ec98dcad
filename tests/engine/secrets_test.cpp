// Secret detection and masking: which environment names count as secrets and how values are hidden.
#include "podflow/engine/secrets.hpp"

#include <doctest/doctest.h>
#include <stdlib.h>

using podflow::Json;
using podflow::engine::is_secret_name;
using podflow::engine::SecretMasker;

TEST_CASE("Secrets.names with KEY, TOKEN, SECRET or PASSWORD in any case" * doctest::timeout(5)) {
  for (const char* name : {"RUNPOD_API_KEY", "HF_TOKEN", "aws_secret_access_key",
                           "MLFLOW_TRACKING_PASSWORD", "Db_Password", "KEYRING"}) {
    CAPTURE(name);
    CHECK(is_secret_name(name));
  }
  for (const char* name : {"HOME", "PATH", "RUNPOD_POD_ID", "MLFLOW_TRACKING_URI", "PASSWD"}) {
    CAPTURE(name);
    CHECK_FALSE(is_secret_name(name));
  }
}

TEST_CASE("Secrets.values of secret-named variables are masked" * doctest::timeout(5)) {
  ::setenv("PODFLOW_TEST_HF_TOKEN", "hf_abcdef123456", 1);
  ::setenv("PODFLOW_TEST_PLAIN", "visible-value-123", 1);
  const auto masker = SecretMasker::from_environment();
  CHECK(masker.mask("token hf_abcdef123456 and visible-value-123") ==
        "token *** and visible-value-123");
  ::unsetenv("PODFLOW_TEST_HF_TOKEN");
  ::unsetenv("PODFLOW_TEST_PLAIN");
}

TEST_CASE("Secrets.every occurrence, longest first, short values left alone" *
          doctest::timeout(5)) {
  SecretMasker masker;
  CHECK(masker.empty());
  masker.add("abc");  // under kMinSecretLength: masking it would garble ordinary text
  CHECK(masker.empty());
  masker.add("s3cr3t");
  masker.add("s3cr3t-and-more");
  CHECK(masker.mask("s3cr3t-and-more, s3cr3t, s3cr3t") == "***, ***, ***");
  CHECK(masker.mask("abc") == "abc");
}

TEST_CASE("Secrets.each line of a multi-line secret is masked on its own" * doctest::timeout(5)) {
  SecretMasker masker;
  masker.add("-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----");
  CHECK(masker.mask("line: MIIEvQIBADANBgkq") == "line: ***");
}

TEST_CASE("Secrets.JSON strings are masked recursively, other values kept" * doctest::timeout(5)) {
  SecretMasker masker;
  masker.add("hunter2-long");
  const Json in = {{"pw", "hunter2-long"},
                   {"list", {"x hunter2-long y", 3}},
                   {"nested", {{"n", 1.5}, {"ok", true}}}};
  const Json out = masker.mask_json(in);
  CHECK(out["pw"] == "***");
  CHECK(out["list"][0] == "x *** y");
  CHECK(out["list"][1] == 3);
  CHECK(out["nested"] == in["nested"]);
}
