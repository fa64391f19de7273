// An in-process coffer-trustee on 127.0.0.1:0 with a temporary storage directory, plus admin
// helpers over its HTTP API (insecure_admin), for guest tests.
#pragma once

#include "core/test/temp_dir.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "core/bytes.h"
#include "core/json.h"
#include "net/http_client.h"
#include "trustee/trustee.h"

namespace coffer::guest::testing {

using coffer::testing::TempDir;

class TrusteeFixture {
 public:
  // `extra_toml` is appended to the base configuration (e.g. verifier sections).
  explicit TrusteeFixture(const std::string& extra_toml = "", bool sample = true,
                          std::shared_ptr<const Clock> clock = system_clock(),
                          const std::function<void(trustee::Trustee&)>& before_start = {}) {
    std::string toml = R"(
[http_server]
sockets = ["127.0.0.1:0"]
insecure_http = true
[admin]
insecure_admin = true
[storage_backend]
path = "trustee.db"
)";
    if (sample) toml += "[attestation_service.verifier.sample]\nenabled = true\n";
    toml += extra_toml;
    auto config = trustee::parse_config(toml, dir_.path());
    if (!config) {
      ADD_FAILURE() << config.error().to_string();
      return;
    }
    auto t = trustee::Trustee::create(*config, std::move(clock));
    if (!t) {
      ADD_FAILURE() << t.error().to_string();
      return;
    }
    trustee_ = std::move(*t);
    // The default policy never affirms sample evidence; the development policy does.
    if (sample) {
      if (auto s = trustee_->attestation_service().set_policy(
              "default_cpu", std::string(trustee::as::development_attestation_policy()));
          !s) {
        ADD_FAILURE() << s.error().to_string();
        return;
      }
    }
    if (before_start) before_start(*trustee_);
    if (auto s = trustee_->start(); !s) {
      ADD_FAILURE() << s.error().to_string();
      return;
    }
    url_ = trustee_->urls().at(0);
  }
  ~TrusteeFixture() {
    if (trustee_) trustee_->stop();
  }

  [[nodiscard]] const std::string& url() const { return url_; }
  trustee::Trustee& trustee() { return *trustee_; }

  // POST an admin request; returns the status.
  int admin_post(const std::string& path, const std::string& body) {
    net::HttpClient client;
    auto r = client.request({.method = "POST", .url = url_ + path, .body = body});
    if (!r) {
      ADD_FAILURE() << r.error().to_string();
      return 0;
    }
    if (r->status != 200) ADD_FAILURE() << path << ": " << r->status << " " << r->body;
    return r->status;
  }
  void set_reference_value(const std::string& name, const Json& values) {
    Json payload = {{name, values}};
    Json msg = {{"version", "0.1.0"},
                {"type", "sample"},
                {"payload", base64_encode(as_bytes(payload.dump()))}};
    admin_post("/kbs/v0/reference-value", msg.dump());
  }
  void put_resource(const std::string& path, const std::string& value) {
    admin_post("/kbs/v0/resource/" + path, value);
  }
  void set_attestation_policy(const std::string& rego) {
    Json msg = {{"type", "rego"},
                {"policy_id", "default_cpu"},
                {"policy", base64url_encode(as_bytes(rego))}};
    admin_post("/kbs/v0/attestation-policy", msg.dump());
  }
  void set_resource_policy(const std::string& rego) {
    Json msg = {{"policy", base64url_encode(as_bytes(rego))}};
    admin_post("/kbs/v0/resource-policy", msg.dump());
  }

 private:
  TempDir dir_;
  std::unique_ptr<trustee::Trustee> trustee_;
  std::string url_;
};

}  // namespace coffer::guest::testing
