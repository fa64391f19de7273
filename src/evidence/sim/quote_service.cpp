#include "evidence/sim/quote_service.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"
#include "crypto/kdf.h"
#include "evidence/sim/sgx_enclave.h"
#include "net/unix_socket.h"

namespace coffer::evidence::sim {
namespace {

Json error_answer(std::string code, std::string message) {
  return {{"error", {{"code", std::move(code)}, {"message", std::move(message)}}}};
}

}  // namespace

QuoteService::QuoteService(SimPki pki, LaunchMeasurements measurements, QuoteServiceConfig config)
    : pki_(std::move(pki)), config_(std::move(config)), measurements_(std::move(measurements)) {}

QuoteService::~QuoteService() { stop(); }

Status QuoteService::start() {
  auto addr = COFFER_TRY(net::unix_address(config_.socket_path));
  if (::pipe2(wake_, O_CLOEXEC) != 0) return make_error("io_error", "pipe failed");
  listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listen_fd_ < 0) return make_error("io_error", std::string("socket: ") + std::strerror(errno));
  struct stat st {};
  if (::lstat(config_.socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
    ::unlink(config_.socket_path.c_str());
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return make_error("io_error",
                      "cannot bind " + config_.socket_path.string() + ": " + std::strerror(errno));
  }
  ::chmod(config_.socket_path.c_str(), 0600);
  if (::listen(listen_fd_, 16) != 0)
    return make_error("io_error", std::string("listen: ") + std::strerror(errno));
  acceptor_ = std::thread([this] { accept_loop(); });
  return ok();
}

void QuoteService::stop() {
  if (stopping_.exchange(true)) return;
  if (wake_[1] >= 0) {
    char c = 1;
    [[maybe_unused]] auto n = ::write(wake_[1], &c, 1);
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard lock(workers_mu_);
    for (auto& w : workers_)
      if (w.thread.joinable()) w.thread.join();
    workers_.clear();
  }
  if (listen_fd_ >= 0) {
    ::close(listen_fd_);
    ::unlink(config_.socket_path.c_str());
  }
  for (int& fd : wake_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  listen_fd_ = -1;
}

void QuoteService::accept_loop() {
  while (!stopping_) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    if (active_ >= config_.max_connections) {
      std::string busy = error_answer("busy", "too many connections").dump() + "\n";
      write_all(fd, busy);
      ::close(fd);
      continue;
    }
    ++active_;
    std::lock_guard lock(workers_mu_);
    // Reap finished connections so that a long-lived service does not accumulate threads.
    std::erase_if(workers_, [](Worker& w) {
      if (!w.done->load()) return false;
      w.thread.join();
      return true;
    });
    auto done = std::make_shared<std::atomic<bool>>(false);
    workers_.push_back({std::thread([this, fd, done] {
                          serve(fd);
                          ::close(fd);
                          --active_;
                          done->store(true);
                        }),
                        done});
  }
}

void QuoteService::serve(int fd) {
  std::string buffer;
  char chunk[4096];
  while (!stopping_) {
    auto nl = buffer.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer.substr(0, nl);
      buffer.erase(0, nl + 1);
      Json answer;
      auto request = parse_json(line, {.max_bytes = kMaxQuoteRequestBytes, .max_depth = 8});
      if (!request) {
        answer = error_answer("bad_request", "request is not JSON: " + request.error().message);
      } else {
        answer = handle(*request);
      }
      if (!write_all(fd, answer.dump() + "\n")) return;
      continue;
    }
    if (buffer.size() > kMaxQuoteRequestBytes) {
      write_all(fd, error_answer("too_large", "request line over 64 KiB").dump() + "\n");
      return;
    }
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    int r = ::poll(fds, 2, kQuoteIoTimeoutMs);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || fds[1].revents) return;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

Json QuoteService::handle(const Json& request) {
  try {
    if (!request.is_object()) return error_answer("bad_request", "request must be a JSON object");
    auto op = json_string(request, "op");
    if (!op) return error_answer("bad_request", "request needs a string \"op\"");
    if (*op == "quote") return quote(request);
    if (*op == "extend") return extend(request);
    if (*op == "measurements") return measurements();
    if (*op == "report") return report(request);
    if (*op == "verify_report") return verify_report(request);
    if (*op == "seal_key") return seal_key(request);
    return error_answer("bad_request",
                        "unknown op (quote, extend, measurements, report, verify_report, "
                        "seal_key)");
  } catch (const std::exception& e) {
    // A bug must not take the enclave's quote service down with it.
    spdlog::error("quote service: {}", e.what());
    return error_answer("internal_error", "internal error");
  }
}

Json QuoteService::quote(const Json& request) {
  auto b64 = json_string(request, "report_data");
  if (!b64) return error_answer("bad_request", "quote needs \"report_data\" (base64)");
  auto rd = base64_decode(*b64);
  if (!rd) return error_answer("bad_request", "report_data is not standard base64");
  if (rd->size() != 64) return error_answer("bad_request", "report_data must be 64 bytes");
  std::string tee = json_optional_string(request, "tee").value_or("tdx");
  std::lock_guard lock(mu_);
  if (tee == "tdx") {
    TdMeasurements td;
    td.mr_td = measurements_.mr_td;
    td.rtmr = measurements_.rtmrs();
    td.mr_config_id = measurements_.mr_config_id;
    td.td_attributes = config_.td_attributes;
    auto quote = make_tdx_quote(pki_, td, *rd);
    if (!quote) return error_answer(quote.error().code, quote.error().message);
    return {{"evidence", tdx_evidence_json(*quote, measurements_.event_log.serialize())}};
  }
  if (tee == "snp") {
    if (!measurements_.host_data_fits) {
      return error_answer("unsupported",
                          "the init-data digest does not fit HOST_DATA (use algorithm sha256)");
    }
    SnpGuest guest;
    guest.measurement = measurements_.mr_td;
    guest.host_data = measurements_.host_data;
    guest.policy = config_.snp_policy;
    auto report = make_snp_report(pki_, guest, *rd);
    if (!report) return error_answer(report.error().code, report.error().message);
    return {{"evidence", snp_evidence_json(*report, pki_.vcek.der())}};
  }
  if (tee == "sgx") {
    if (!config_.sgx) return error_answer("unsupported", "this enclave is not an SGX enclave");
    auto quote = make_sgx_quote(pki_, sgx_identity(), *rd);
    if (!quote) return error_answer(quote.error().code, quote.error().message);
    return {{"evidence", sgx_evidence_json(*quote)}};
  }
  return error_answer("unsupported", "tee must be \"tdx\", \"snp\" or \"sgx\"");
}

SgxIdentity QuoteService::sgx_identity() const {
  SgxIdentity id = config_.sgx.value_or(SgxIdentity{});
  id.config_id = measurements_.config_id;
  return id;
}

Json QuoteService::report(const Json& request) {
  if (!config_.sgx) return error_answer("unsupported", "this enclave is not an SGX enclave");
  auto ti = request.find("target_info");
  if (ti == request.end() || !ti->is_object())
    return error_answer("bad_request", "report needs \"target_info\" {\"mr_enclave\": hex}");
  auto hex = json_string(*ti, "mr_enclave");
  auto target = hex_decode(hex ? *hex : "-");
  if (!target || target->size() != 32)
    return error_answer("bad_request", "target_info.mr_enclave must be 32 bytes of hex");
  Bytes rd;
  if (auto b64 = json_optional_string(request, "report_data")) {
    auto d = base64_decode(*b64);
    if (!d || d->size() > 64)
      return error_answer("bad_request", "report_data must be base64 of at most 64 bytes");
    rd = std::move(*d);
  }
  Fixed<32> t{};
  std::copy(target->begin(), target->end(), t.begin());
  std::lock_guard lock(mu_);
  auto r = make_sgx_report(pki_, sgx_identity(), t, rd);
  if (!r) return error_answer(r.error().code, r.error().message);
  return {{"report", base64_encode(*r)}};
}

Json QuoteService::verify_report(const Json& request) {
  if (!config_.sgx) return error_answer("unsupported", "this enclave is not an SGX enclave");
  auto b64 = json_string(request, "report");
  auto raw = base64_decode(b64 ? *b64 : "-");
  if (!raw) return error_answer("bad_request", "verify_report needs \"report\" (base64)");
  std::lock_guard lock(mu_);
  auto body = verify_sgx_report(pki_, sgx_identity(), *raw);
  if (!body) return error_answer(body.error().code, body.error().message);
  std::uint8_t attrs[16];
  std::copy(body->attributes_flags.begin(), body->attributes_flags.end(), attrs);
  std::copy(body->attributes_xfrm.begin(), body->attributes_xfrm.end(), attrs + 8);
  return {{"ok", true},
          {"mr_enclave", hex_encode(body->mr_enclave)},
          {"mr_signer", hex_encode(body->mr_signer)},
          {"isv_prod_id", body->isv_prod_id},
          {"isv_svn", body->isv_svn},
          {"attributes", hex_encode(attrs)},
          {"config_id", hex_encode(body->config_id)},
          {"report_data", base64_encode(body->report_data)}};
}

Json QuoteService::seal_key(const Json& request) {
  if (!config_.sgx) return error_answer("unsupported", "this enclave is not an SGX enclave");
  auto policy_name = json_string(request, "policy");
  SealPolicy policy;
  if (policy_name && *policy_name == "mrenclave") {
    policy = SealPolicy::kMrEnclave;
  } else if (policy_name && *policy_name == "mrsigner") {
    policy = SealPolicy::kMrSigner;
  } else {
    return error_answer("bad_request", "seal_key needs \"policy\": \"mrenclave\" or \"mrsigner\"");
  }
  auto hex = json_string(request, "key_id");
  auto key_id = hex_decode(hex ? *hex : "-");
  if (!key_id || key_id->size() != 32)
    return error_answer("bad_request", "key_id must be 32 bytes of hex");
  std::uint16_t svn = config_.sgx->isv_svn;
  if (auto it = request.find("isv_svn"); it != request.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 0 || it->get<std::int64_t>() > 0xffff)
      return error_answer("bad_request", "isv_svn must be 0..65535");
    svn = static_cast<std::uint16_t>(it->get<std::int64_t>());
  }
  std::lock_guard lock(mu_);
  auto key = sgx_seal_key(pki_, sgx_identity(), policy, svn, *key_id);
  if (!key) return error_answer(key.error().code, key.error().message);
  Json answer = {{"key", hex_encode(*key)}};
  crypto::cleanse(*key);
  return answer;
}

Json QuoteService::extend(const Json& request) {
  auto it = request.find("rtmr");
  if (it == request.end() || !it->is_number_unsigned())
    return error_answer("bad_request", "extend needs \"rtmr\" (2 or 3)");
  auto index = it->get<std::uint64_t>();
  // As on TDX, the TD can extend RTMR2 and RTMR3; RTMR0/1 belong to firmware and boot loader.
  if (index != 2 && index != 3) return error_answer("bad_request", "rtmr must be 2 or 3");
  auto hex = json_string(request, "digest");
  if (!hex) return error_answer("bad_request", "extend needs \"digest\" (hex SHA-384)");
  auto digest = hex_decode(*hex);
  if (!digest || digest->size() != 48)
    return error_answer("bad_request", "digest must be 48 bytes of hex");
  std::string event = json_optional_string(request, "event").value_or("");
  if (event.size() > 4096) return error_answer("bad_request", "event text over 4 KiB");
  std::lock_guard lock(mu_);
  measurements_.event_log.append_digest(static_cast<unsigned>(index), tdx::kEvEventTag,
                                        as_bytes(event), *digest);
  return {{"rtmr", hex_encode(measurements_.rtmrs()[index])}};
}

Json QuoteService::measurements() {
  std::lock_guard lock(mu_);
  Json rtmrs = Json::array();
  for (const auto& r : measurements_.rtmrs()) rtmrs.push_back(hex_encode(r));
  Json m = {{"mr_td", hex_encode(measurements_.mr_td)},
            {"mr_config_id", hex_encode(measurements_.mr_config_id)},
            {"host_data", hex_encode(measurements_.host_data)},
            {"rtmr", rtmrs},
            {"td_attributes", config_.td_attributes},
            {"snp_policy", config_.snp_policy},
            {"cc_eventlog", base64_encode(measurements_.event_log.serialize())}};
  if (config_.sgx) {
    SgxIdentity id = sgx_identity();
    m["sgx"] = {{"mr_enclave", hex_encode(id.mr_enclave)},
                {"mr_signer", hex_encode(id.mr_signer)},
                {"isv_prod_id", id.isv_prod_id},
                {"isv_svn", id.isv_svn},
                {"config_id", hex_encode(id.config_id)}};
  }
  return m;
}

}  // namespace coffer::evidence::sim
