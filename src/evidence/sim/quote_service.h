// The simulated TEE's quote service: what TDX's Quote Generation Service is to a real TD. The
// enclave launcher starts one per enclave, for that enclave's measurements; the enclave asks it
// for evidence over a Unix socket (later also a virtio-serial port).
//
// Protocol (docs/simulated-tee.md): a stream socket; each request is one line of JSON (at most
// 64 KiB), each answer one line of JSON; a connection may carry several requests.
//   {"op":"quote","tee":"tdx"|"snp"|"sgx","report_data":"<base64 of 64 bytes>"}
//       -> {"evidence": <tee-evidence.primary_evidence JSON>}   (sgx: {"quote": b64 quote v3})
// For an SGX enclave only (the service was given its identity by the launcher; the request
// never names whose identity is used), sgx_enclave.h:
//   {"op":"report","target_info":{"mr_enclave":"<hex 32>"},"report_data":"<base64 <= 64>"}
//       -> {"report":"<base64 of the 432-byte REPORT, MAC keyed for the target>"}
//   {"op":"verify_report","report":"<base64>"}
//       -> {"ok":true,"mr_enclave","mr_signer","isv_prod_id","isv_svn","attributes",
//           "report_data"} or the error report_mac_mismatch
//   {"op":"seal_key","policy":"mrenclave"|"mrsigner","key_id":"<hex 32>"[,"isv_svn":N]}
//       -> {"key":"<hex 32>"}   (isv_svn defaults to the enclave's; higher: svn_too_high)
//   {"op":"extend","rtmr":2|3,"digest":"<hex SHA-384>","event":"<text>"}
//       -> {"rtmr":"<hex new value>"}
//   {"op":"measurements"}
//       -> {"mr_td","mr_config_id","host_data","rtmr":[4 hex],"td_attributes","snp_policy",
//           "cc_eventlog":"<base64>"}
// Errors: {"error":{"code":"bad_request"|"unsupported"|...,"message":"..."}}. A malformed
// request gets an error answer; a line over the limit gets one and the connection is closed.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/json.h"
#include "evidence/sim/measure.h"
#include "evidence/sim/quote_client.h"
#include "evidence/sim/sim_pki.h"
#include "evidence/sim/sim_tee.h"

namespace coffer::evidence::sim {

inline constexpr std::size_t kMaxQuoteRequestBytes = 64 * 1024;

struct QuoteServiceConfig {
  std::filesystem::path socket_path;
  std::uint64_t td_attributes = kTdAttributesSeptVeDisable;  // | kTdAttributesDebug for debug
  std::uint64_t snp_policy = kDefaultSnpPolicy;
  std::size_t max_connections = 16;
  // The SGX identity of the enclave (sim-sgx: from its verified signature); none: no sgx quote,
  // report, verify_report or seal_key ("unsupported"). CONFIGID comes from the measurements.
  std::optional<SgxIdentity> sgx;
};

class QuoteService {
 public:
  // Takes the PKI and the enclave's launch measurements; does not listen yet.
  QuoteService(SimPki pki, LaunchMeasurements measurements, QuoteServiceConfig config);
  ~QuoteService();
  QuoteService(const QuoteService&) = delete;
  QuoteService& operator=(const QuoteService&) = delete;

  // Binds the socket (mode 0600; a stale socket file is replaced) and starts serving.
  Status start();
  void stop();

  // One request, as the socket handler answers it (exposed for tests).
  Json handle(const Json& request);

 private:
  void accept_loop();
  void serve(int fd);
  Json quote(const Json& request);
  Json extend(const Json& request);
  Json measurements();
  Json report(const Json& request);
  Json verify_report(const Json& request);
  Json seal_key(const Json& request);
  [[nodiscard]] SgxIdentity sgx_identity() const;  // config_.sgx with CONFIGID

  SimPki pki_;
  QuoteServiceConfig config_;
  std::mutex mu_;  // guards measurements_
  LaunchMeasurements measurements_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> active_{0};
  std::thread acceptor_;
  std::mutex workers_mu_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;
};

}  // namespace coffer::evidence::sim
