#include "guest/aa/agent.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>

#include "crypto/digest.h"
#include "evidence/tdx/quote.h"

namespace coffer::guest {
namespace {

// AAEL: each field printable ASCII (0x21..0x7e), no spaces or delimiters.
Status check_field(std::string_view value, std::string_view name) {
  if (value.empty() || value.size() > kMaxEventFieldBytes)
    return make_error("bad_event", "event " + std::string(name) + " must be 1 to " +
                                       std::to_string(kMaxEventFieldBytes) + " bytes");
  if (!std::all_of(value.begin(), value.end(), [](char c) { return c > 0x20 && c < 0x7f; }))
    return make_error("bad_event",
                      "event " + std::string(name) + " must be printable ASCII without spaces");
  return ok();
}

// Writes `pem` to a fresh 0600 file under the temporary directory; removed by the destructor.
class TempPemFile {
 public:
  static Result<TempPemFile> create(const std::string& pem) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "coffer-kbs-ca-XXXXXX").string();
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) return make_error("io_error", "cannot create a file for the KBS certificate");
    std::size_t done = 0;
    while (done < pem.size()) {
      ssize_t n = ::write(fd, pem.data() + done, pem.size() - done);
      if (n <= 0) {
        ::close(fd);
        ::unlink(tmpl.c_str());
        return make_error("io_error", "cannot write the KBS certificate");
      }
      done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    TempPemFile f;
    f.path_ = tmpl;
    return f;
  }
  TempPemFile() = default;
  TempPemFile(TempPemFile&& o) noexcept : path_(std::exchange(o.path_, {})) {}
  TempPemFile& operator=(TempPemFile&& o) noexcept {
    std::swap(path_, o.path_);
    return *this;
  }
  TempPemFile(const TempPemFile&) = delete;
  TempPemFile& operator=(const TempPemFile&) = delete;
  ~TempPemFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

std::string aa_event_log_init_line(ByteView init) { return "INIT sha384/" + hex_encode(init); }

std::string aa_event_log_text(ByteView init, const std::vector<MeasurementEvent>& events) {
  std::string text = aa_event_log_init_line(init) + "\n";
  for (const auto& e : events) text += e.line() + "\n";
  return text;
}

class AttestationAgent::Impl {
 public:
  // What the KBS client attests with: the real attester, with the event log added to its
  // evidence under the same lock that extend() holds, so that log and RTMR3 always agree.
  class LoggingAttester final : public aa::Attester {
   public:
    explicit LoggingAttester(Impl& impl) : impl_(impl) {}
    [[nodiscard]] std::string_view tee() const override { return impl_.attester_->tee(); }
    Result<Json> evidence(ByteView report_data) override {
      return impl_.evidence_with_log(report_data);
    }
    Status extend_runtime_measurement(std::uint32_t index, ByteView digest,
                                      std::string_view description) override {
      return impl_.attester_->extend_runtime_measurement(index, digest, description);
    }
    Result<aa::InitDataBinding> check_init_data(ByteView digest) override {
      return impl_.attester_->check_init_data(digest);
    }

   private:
    Impl& impl_;
  };

  Impl(std::unique_ptr<aa::Attester> attester, const GuestConfig& config,
       aa::KbsClientOptions options)
      : attester_(std::move(attester)), logging_(*this) {
    if (config.from_init_data) options.init_data_toml = config.init_data_toml;
    if (config.kbs_url.empty()) return;
    if (!config.kbs_cert_pem.empty() && options.ca_file.empty()) {
      auto file = TempPemFile::create(config.kbs_cert_pem);
      if (!file) {
        setup_error_ = file.error();
        return;
      }
      ca_file_ = std::move(*file);
      options.ca_file = ca_file_.path();
    }
    kbs_.emplace(config.kbs_url, logging_, std::move(options));
  }

  Result<Json> evidence_with_log(ByteView report_data) {
    std::lock_guard lock(log_mu_);
    Json ev = COFFER_TRY(attester_->evidence(report_data));
    if (log_started_ && ev.is_object()) ev["aa_eventlog"] = aa_event_log_text(init_, events_);
    return ev;
  }

  // AAEL's INIT entry (as CoCo's AA writes it and Trustee replays it): RTMR3's value now, and
  // the INIT line itself extended into RTMR3. Called under log_mu_ before the first event.
  Status start_log() {
    // Only TDX has runtime registers we can read back from evidence.
    if (attester_->tee() != "tdx")
      return make_error("not_supported", "the " + std::string(attester_->tee()) +
                                             " TEE has no runtime measurement registers");
    Json ev = COFFER_TRY(attester_->evidence(Bytes(aa::kReportDataSize, 0)));
    auto quote_b64 = json_string(ev, "quote");
    if (!quote_b64) return make_error("bad_evidence", "TDX evidence without a quote");
    Bytes raw = COFFER_TRY(base64_decode(*quote_b64));
    auto quote = COFFER_TRY(evidence::tdx::parse_quote(raw));
    init_.assign(quote.body.rtmr[kAaEventRegister].begin(),
                 quote.body.rtmr[kAaEventRegister].end());
    const std::string line = aa_event_log_init_line(init_);
    COFFER_TRY_STATUS(attester_->extend_runtime_measurement(kAaEventRegister,
                                                            crypto::sha384(as_bytes(line)), line));
    log_started_ = true;
    return ok();
  }

  Status kbs_ready() const {
    if (setup_error_) return std::unexpected(*setup_error_);
    if (!kbs_) return make_error("no_kbs", "no KBS is configured (init-data aa.toml/cdh.toml)");
    return ok();
  }

  std::unique_ptr<aa::Attester> attester_;
  LoggingAttester logging_;
  std::optional<Error> setup_error_;
  TempPemFile ca_file_;

  std::mutex kbs_mu_;  // the KBS client is not thread-safe
  std::optional<aa::KbsClient> kbs_;

  mutable std::mutex log_mu_;  // events_ and the register they replay to
  bool log_started_ = false;   // the INIT entry is in RTMR3
  Bytes init_;
  std::vector<MeasurementEvent> events_;
};

AttestationAgent::AttestationAgent(std::unique_ptr<aa::Attester> attester,
                                   const GuestConfig& config, aa::KbsClientOptions kbs_options)
    : impl_(std::make_unique<Impl>(std::move(attester), config, std::move(kbs_options))) {}
AttestationAgent::~AttestationAgent() = default;

std::string_view AttestationAgent::tee() const { return impl_->attester_->tee(); }

Result<std::string> AttestationAgent::token() {
  COFFER_TRY_STATUS(impl_->kbs_ready());
  std::lock_guard lock(impl_->kbs_mu_);
  if (auto held = impl_->kbs_->token()) return *held;
  return impl_->kbs_->attest();
}

Result<Json> AttestationAgent::evidence(ByteView runtime_data) {
  Bytes report_data = crypto::sha384(runtime_data);
  report_data.resize(aa::kReportDataSize, 0);
  return impl_->evidence_with_log(report_data);
}

Status AttestationAgent::extend(const MeasurementEvent& event) {
  COFFER_TRY_STATUS(check_field(event.domain, "domain"));
  COFFER_TRY_STATUS(check_field(event.operation, "operation"));
  COFFER_TRY_STATUS(check_field(event.content, "content"));
  std::lock_guard lock(impl_->log_mu_);
  if (impl_->events_.size() >= kMaxEvents)
    return make_error("event_log_full", "the runtime event log holds its maximum of " +
                                            std::to_string(kMaxEvents) + " events");
  if (!impl_->log_started_) COFFER_TRY_STATUS(impl_->start_log());
  const std::string line = event.line();
  COFFER_TRY_STATUS(impl_->attester_->extend_runtime_measurement(
      kAaEventRegister, crypto::sha384(as_bytes(line)), line));
  impl_->events_.push_back(event);
  return ok();
}

std::vector<MeasurementEvent> AttestationAgent::event_log() const {
  std::lock_guard lock(impl_->log_mu_);
  return impl_->events_;
}

std::string AttestationAgent::event_log_text() const {
  std::lock_guard lock(impl_->log_mu_);
  return aa_event_log_text(impl_->init_, impl_->events_);
}

Result<Bytes> AttestationAgent::get_resource(std::string_view uri) {
  COFFER_TRY_STATUS(impl_->kbs_ready());
  std::lock_guard lock(impl_->kbs_mu_);
  return impl_->kbs_->get_resource(uri);
}

}  // namespace coffer::guest
