#include "cli/evidence_command.h"

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "cli/exit.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/x509.h"
#include "evidence/sgx/quote.h"
#include "evidence/snp/report.h"
#include "evidence/snp/report_json.h"
#include "evidence/tdx/ccel.h"
#include "evidence/tdx/quote.h"
#include "verifier/dcap/dcap_verifier.h"
#include "verifier/dcap/intel_root.h"
#include "verifier/dcap/pcs_source.h"
#include "verifier/sgx/sgx_verifier.h"
#include "verifier/snp/amd_roots.h"
#include "verifier/snp/kds_source.h"
#include "verifier/snp/snp_verifier.h"
#include "verifier/tdx/eventlog_claims.h"
#include "verifier/tdx/tdx_verifier.h"

namespace coffer::cli {
namespace {

constexpr std::size_t kMaxFile = 64 * 1024 * 1024;

namespace esnp = evidence::snp;
namespace etdx = evidence::tdx;

// A file that is not evidence, or an option that does not fit: a usage error (exit 2).
[[noreturn]] void die(const std::string& msg) { fail("coffer evidence", ExitCode::kUsage, msg); }

enum class Kind { kTdx, kSgx, kSnp, kEventLog };

// What a file holds, with the evidence JSON a verifier takes.
struct Loaded {
  Kind kind = Kind::kTdx;
  Json evidence;  // {"quote": ...} / {"attestation_report": ...}
  Bytes raw;      // quote, report or event log bytes
};

std::optional<Kind> binary_kind(ByteView b) {
  if (b.size() >= 8 && load_le32(b.data()) == 0 && load_le32(b.data() + 4) == etdx::kEvNoAction) {
    return Kind::kEventLog;
  }
  if (b.size() == esnp::kReportSize && esnp::parse_report(b)) return Kind::kSnp;
  if (b.size() < 2) return std::nullopt;
  switch (load_le16(b.data())) {
    case 3:
      return Kind::kSgx;
    case 4:
    case 5:
      return Kind::kTdx;
    default:
      return std::nullopt;
  }
}

Bytes quote_bytes(const Json& evidence, const char* key) {
  auto it = evidence.find(key);
  if (it == evidence.end() || !it->is_string()) die(std::string("no '") + key + "' string");
  auto b = base64_decode(it->get<std::string>());
  if (!b) b = base64url_decode(it->get<std::string>());
  if (!b) die(std::string("'") + key + "' is not base64");
  return *b;
}

Loaded load(const std::string& path) {
  auto data = read_file(path, kMaxFile);
  if (!data) die(path + ": " + data.error().to_string());
  Loaded out;
  auto text = to_string(*data);
  auto first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '{') {
    auto json = parse_json(text);
    if (!json) die(path + ": " + json.error().to_string());
    out.evidence = std::move(*json);
    if (out.evidence.contains("quote")) {
      out.raw = quote_bytes(out.evidence, "quote");
      auto k = binary_kind(out.raw);
      if (!k || (*k != Kind::kTdx && *k != Kind::kSgx)) die(path + ": 'quote' is not a DCAP quote");
      out.kind = *k;
    } else if (out.evidence.contains("attestation_report")) {
      out.kind = Kind::kSnp;
    } else if (out.evidence.contains("version") && out.evidence.contains("signature")) {
      out.kind = Kind::kSnp;  // a bare CoCo report object
      out.evidence = Json{{"attestation_report", out.evidence}};
    } else {
      die(path + ": unknown evidence JSON (expected 'quote' or 'attestation_report')");
    }
    return out;
  }
  auto k = binary_kind(*data);
  if (!k) die(path + ": not a TDX/SGX quote, SEV-SNP report or CC event log");
  out.kind = *k;
  out.raw = std::move(*data);
  if (out.kind == Kind::kSnp) {
    out.evidence = Json{{"attestation_report", base64_encode(out.raw)}};
  } else if (out.kind != Kind::kEventLog) {
    out.evidence = Json{{"quote", base64_encode(out.raw)}};
  }
  return out;
}

esnp::Report snp_report(const Loaded& l) {
  const Json& r = l.evidence["attestation_report"];
  auto report = r.is_object() ? esnp::report_from_json(r)
                              : esnp::parse_report(quote_bytes(l.evidence, "attestation_report"));
  if (!report) die(report.error().to_string());
  return *report;
}

Json inspect(const Loaded& l) {
  switch (l.kind) {
    case Kind::kTdx: {
      auto q = etdx::parse_quote(l.raw);
      if (!q) die(q.error().to_string());
      Json out = {{"format", "tdx_quote_v" + std::to_string(q->header.version)},
                  {"claims", verifier::tdx::tdx_quote_claims(*q)}};
      out["pck_chain"] = to_string(q->signature_data.qe.certification_data);
      return out;
    }
    case Kind::kSgx: {
      auto q = evidence::sgx::parse_quote(l.raw);
      if (!q) die(q.error().to_string());
      return Json{{"format", "sgx_quote_v3"}, {"claims", verifier::sgx::sgx_quote_claims(*q)}};
    }
    case Kind::kSnp: {
      auto report = snp_report(l);
      return Json{{"format", "snp_report_v" + std::to_string(report.version)},
                  {"claims", verifier::snp::snp_report_claims(report, report.product_from_cpuid())},
                  {"report", esnp::report_to_json(report)}};
    }
    case Kind::kEventLog: {
      auto log = etdx::parse_event_log(l.raw);
      if (!log) die(log.error().to_string());
      Json rtmrs = Json::array();
      if (auto r = etdx::replay_rtmrs(*log)) {
        for (const auto& m : *r) rtmrs.push_back(hex_encode(m));
      }
      return Json{{"format", "cc_eventlog"},
                  {"rtmrs", rtmrs},
                  {"uefi_event_logs", verifier::tdx::event_log_claims(*log)}};
    }
  }
  return Json::object();
}

struct VerifyOptions {
  std::string file;
  std::string collateral;
  std::string pccs;
  std::string at;
  std::string root;
  std::string eventlog;
  std::string vek_dir;
  std::string kds;
  std::string report_data;
};

std::unique_ptr<verifier::Verifier> dcap_verifier(const VerifyOptions& o, bool tdx) {
  std::vector<crypto::Certificate> anchors;
  if (!o.root.empty()) {
    auto pem = read_text_file(o.root);
    if (!pem) die(o.root + ": " + pem.error().to_string());
    auto certs = crypto::Certificate::chain_from_pem(*pem);
    if (!certs || certs->empty()) die(o.root + ": no certificate");
    anchors = std::move(*certs);
  } else {
    anchors.push_back(*crypto::Certificate::from_pem(verifier::dcap::kIntelSgxRootCaPem));
  }
  std::shared_ptr<const verifier::dcap::CollateralSource> source;
  if (!o.collateral.empty()) {
    auto dir = verifier::dcap::DirectoryCollateralSource::open(o.collateral);
    if (!dir) die(dir.error().to_string());
    source = std::make_shared<verifier::dcap::DirectoryCollateralSource>(std::move(*dir));
  } else if (!o.pccs.empty()) {
    verifier::dcap::PcsOptions p;
    p.base_url = o.pccs;
    source = std::make_shared<verifier::dcap::PcsCollateralSource>(p);
  }
  auto engine =
      std::make_shared<const verifier::dcap::DcapVerifier>(std::move(anchors), std::move(source));
  if (tdx) return std::make_unique<verifier::tdx::TdxVerifier>(engine);
  return std::make_unique<verifier::sgx::SgxVerifier>(engine);
}

std::unique_ptr<verifier::Verifier> snp_verifier(const VerifyOptions& o) {
  namespace vsnp = verifier::snp;
  std::vector<std::string> pems;
  if (!o.root.empty()) {
    auto pem = read_text_file(o.root);
    if (!pem) die(o.root + ": " + pem.error().to_string());
    pems.push_back(*pem);
  } else {
    pems = {std::string(vsnp::kAmdMilanChainPem), std::string(vsnp::kAmdGenoaChainPem),
            std::string(vsnp::kAmdTurinChainPem)};
  }
  std::map<esnp::Product, vsnp::VendorChain> vendors;
  for (const auto& pem : pems) {
    auto chain = vsnp::vendor_chain_from_pem(pem);
    if (!chain) die(chain.error().to_string());
    std::string cn = chain->ark.subject_common_name();
    auto product = esnp::product_from_name(cn.substr(cn.find('-') + 1));
    if (!product) die("unknown product in '" + cn + "'");
    vendors.insert_or_assign(*product, std::move(*chain));
  }
  std::shared_ptr<const vsnp::VekSource> source;
  if (!o.vek_dir.empty()) source = std::make_shared<vsnp::DirectoryVekSource>(o.vek_dir);
  if (!o.kds.empty())
    source = std::make_shared<vsnp::KdsVekSource>(vsnp::KdsOptions{o.kds, {}, {}});
  vsnp::SnpChainVerifier::Options options;
  options.trust_configured_arks = !o.root.empty();
  return std::make_unique<vsnp::SnpVerifier>(
      std::make_shared<const vsnp::SnpChainVerifier>(std::move(vendors), source, options));
}

void run_verify(const VerifyOptions& o) {
  if (!o.collateral.empty() && !o.pccs.empty()) die("--collateral and --pccs exclude each other");
  Loaded l = load(o.file);
  if (l.kind == Kind::kEventLog) die(o.file + ": an event log alone cannot be verified");
  TimePoint now = std::chrono::system_clock::now();
  if (!o.at.empty()) {
    auto t = parse_rfc3339(o.at);
    if (!t) die("--at: " + t.error().message);
    now = *t;
  }
  if (!o.eventlog.empty()) {
    auto log = read_file(o.eventlog, kMaxFile);
    if (!log) die(o.eventlog + ": " + log.error().to_string());
    l.evidence["cc_eventlog"] = base64_encode(*log);
  }
  // REPORTDATA: given, or the evidence's own (freshness is then not checked)
  Bytes report_data;
  if (!o.report_data.empty()) {
    auto b = hex_decode(o.report_data);
    if (!b) die("--report-data is not hex");
    report_data = *b;
  } else if (l.kind == Kind::kSnp) {
    auto r = snp_report(l);
    report_data.assign(r.report_data.begin(), r.report_data.end());
  } else if (l.kind == Kind::kTdx) {
    auto q = etdx::parse_quote(l.raw);
    if (q) report_data.assign(q->body.report_data.begin(), q->body.report_data.end());
  } else {
    auto q = evidence::sgx::parse_quote(l.raw);
    if (q) report_data.assign(q->body.report_data.begin(), q->body.report_data.end());
  }
  auto v = l.kind == Kind::kSnp ? snp_verifier(o) : dcap_verifier(o, l.kind == Kind::kTdx);
  auto claims = v->verify({l.evidence, report_data, std::nullopt, now});
  Json out = {{"tee", std::string(v->tee())}, {"verified_at", format_rfc3339(now)}};
  if (!claims) {
    out["verdict"] = "rejected";
    out["status"] = claims.error().code;
    out["error"] = claims.error().message;
    std::cout << out.dump(2) << "\n";
    // Rejected (1), unless the verifier could not fetch collateral it needed (3 or 4). The DCAP
    // verifier wraps its collateral source's error: "collateral_unavailable", "<code>: ...".
    const Error& e = claims.error();
    ExitCode code = exit_code_for(e.code == "collateral_unavailable"
                                      ? std::string_view(e.message).substr(0, e.message.find(':'))
                                      : std::string_view(e.code));
    if (code != ExitCode::kUnreachable && code != ExitCode::kRemoteError) code = ExitCode::kRefused;
    throw CLI::RuntimeError(static_cast<int>(code));
  }
  out["verdict"] = "accepted";
  out["status"] = claims->value("tcb_status", std::string("verified"));
  out["claims"] = *claims;
  std::cout << out.dump(2) << "\n";
}

}  // namespace

void add_evidence_command(CLI::App& app) {
  auto* evidence = app.add_subcommand("evidence", "Decode and verify TEE evidence");
  evidence->require_subcommand(1);

  auto file = std::make_shared<std::string>();
  auto* inspect_cmd = evidence->add_subcommand("inspect", "Decode evidence to JSON");
  inspect_cmd->add_option("file", *file, "quote, report, event log or evidence JSON")
      ->required()
      ->check(CLI::ExistingFile);
  inspect_cmd->callback([file] { std::cout << inspect(load(*file)).dump(2) << "\n"; });

  auto o = std::make_shared<VerifyOptions>();
  auto* verify = evidence->add_subcommand("verify", "Verify evidence against the vendor roots");
  verify->add_option("file", o->file, "quote, report or evidence JSON")
      ->required()
      ->check(CLI::ExistingFile);
  auto* collateral = verify->add_option("--collateral", o->collateral, "DCAP collateral directory")
                         ->check(CLI::ExistingDirectory);
  verify->add_option("--pccs", o->pccs, "Intel PCS/PCCS base URL")->excludes(collateral);
  verify->add_option("--at", o->at, "verification time (RFC 3339), default now");
  verify->add_option("--root", o->root, "trust anchor PEM (Intel root / AMD ARK+ASK bundle)")
      ->check(CLI::ExistingFile);
  verify->add_option("--eventlog", o->eventlog, "CC event log (TDX)")->check(CLI::ExistingFile);
  auto* vek = verify->add_option("--vek", o->vek_dir, "directory of VCEK/VLEK certificates (SNP)")
                  ->check(CLI::ExistingDirectory);
  verify->add_option("--kds", o->kds, "AMD KDS base URL (SNP)")->excludes(vek);
  verify->add_option("--report-data", o->report_data, "expected REPORTDATA (hex)");
  verify->callback([o] { run_verify(*o); });
}

}  // namespace coffer::cli
