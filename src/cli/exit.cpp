#include "cli/exit.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <utility>

#include "core/bytes.h"
#include "core/version.h"

namespace coffer::cli {
namespace {

// The option names the hints give. When an option is renamed, change it here only.
constexpr std::string_view kKbsCaOption = "--kbs-ca-file";
constexpr std::string_view kKbsInsecureOption = "--kbs-insecure";
constexpr std::string_view kRegistryCaOption = "--registry-ca-file";
constexpr std::string_view kRegistryNoVerifyOption = "--tls-verify=false";
constexpr std::string_view kInsecureRegistryOption = "--insecure-registry HOST[:PORT]";
constexpr std::string_view kJweKeyOption = "--decryption-key PRIVATE.pem";
constexpr std::string_view kKbsKeyFileOption = "--kbs-key-file kbs:///REPO/TYPE/TAG=FILE";

constexpr std::size_t kMaxPrinted = 4096;

// Error::code -> exit code, for every code that is not kRefused. Codes come from the modules the
// commands call (net, guest/aa, oci, evidence, verifier, policy, core) and from the commands.
constexpr std::pair<std::string_view, ExitCode> kTable[] = {
    // The command line or a local input named on it.
    {"usage", ExitCode::kUsage},
    {"bad_argument", ExitCode::kUsage},
    {"bad_url", ExitCode::kUsage},
    {"bad_ca_file", ExitCode::kUsage},
    {"not_found", ExitCode::kUsage},  // a local file, directory or layout tag named as argument
    {"io_error", ExitCode::kUsage},
    {"permission_denied", ExitCode::kUsage},
    {"bad_image_name", ExitCode::kUsage},
    {"bad_reference", ExitCode::kUsage},
    {"bad_platform", ExitCode::kUsage},
    {"bad_resource_path", ExitCode::kUsage},
    {"bad_auth_file", ExitCode::kUsage},
    {"bad_config", ExitCode::kUsage},
    {"bad_key", ExitCode::kUsage},
    {"bad_key_file", ExitCode::kUsage},
    {"no_private_key", ExitCode::kUsage},
    {"missing_private_key", ExitCode::kUsage},
    {"wrong_password", ExitCode::kUsage},
    {"bad_policy", ExitCode::kUsage},
    {"bad_init_data", ExitCode::kUsage},
    {"bad_enclave", ExitCode::kUsage},
    {"sim_pki_invalid", ExitCode::kUsage},
    {"bad_socket_path", ExitCode::kUsage},
    {"unknown_tee", ExitCode::kUsage},
    {"tee_not_found", ExitCode::kUsage},
    {"bad_json", ExitCode::kUsage},
    {"bad_hex", ExitCode::kUsage},
    {"bad_base64", ExitCode::kUsage},
    {"bad_timestamp", ExitCode::kUsage},
    {"rego_parse_error", ExitCode::kUsage},
    {"rego_compile_error", ExitCode::kUsage},
    // The server could not be reached, or not securely.
    {"connect_failed", ExitCode::kUnreachable},
    {"timeout", ExitCode::kUnreachable},
    {"network_error", ExitCode::kUnreachable},
    {"empty_reply", ExitCode::kUnreachable},
    {"tls_untrusted", ExitCode::kUnreachable},
    {"tls_wrong_version", ExitCode::kUnreachable},
    {"tls_error", ExitCode::kUnreachable},
    {"kbs_unreachable", ExitCode::kUnreachable},
    {"quote_service_unavailable", ExitCode::kUnreachable},
    {"ttrpc_unavailable", ExitCode::kUnreachable},
    {"collateral_fetch_failed", ExitCode::kUnreachable},
    {"vek_fetch_failed", ExitCode::kUnreachable},
    {"crl_fetch_failed", ExitCode::kUnreachable},
    // The server failed or answered nonsense.
    {"kbs_server_error", ExitCode::kRemoteError},
    {"kbs_bad_response", ExitCode::kRemoteError},
    {"kbs_unexpected_status", ExitCode::kRemoteError},
    {"kbs_busy", ExitCode::kRemoteError},
    {"registry_error", ExitCode::kRemoteError},
    {"too_many_redirects", ExitCode::kRemoteError},
    {"quote_service_error", ExitCode::kRemoteError},
    // Already there.
    {"already_exists", ExitCode::kConflict},
    {"target_exists", ExitCode::kConflict},
    {"socket_path_in_use", ExitCode::kConflict},
    {"kbs_conflict", ExitCode::kConflict},
    // Not on the server.
    {"kbs_not_found", ExitCode::kNotFound},
    {"manifest_unknown", ExitCode::kNotFound},
    {"blob_unknown", ExitCode::kNotFound},
};

std::string kbs_ca_hint() {
  return "pass the KBS's CA certificate with the KBS CA option (" + std::string(kKbsCaOption) +
         " FILE) or, for development only, " + std::string(kKbsInsecureOption);
}

}  // namespace

ExitCode exit_code_for(std::string_view error_code) {
  const auto* it =
      std::ranges::find(kTable, error_code, &std::pair<std::string_view, ExitCode>::first);
  return it != std::ranges::end(kTable) ? it->second : ExitCode::kRefused;
}

std::string hint_for(const Error& e, Peer peer) {
  const std::string& c = e.code;
  if (c == "tls_untrusted") {
    if (peer == Peer::kKbs) return "the KBS's certificate is not trusted: " + kbs_ca_hint();
    if (peer == Peer::kRegistry) {
      return "the registry's certificate is not trusted: pass its CA certificate with " +
             std::string(kRegistryCaOption) + " FILE or, for development only, " +
             std::string(kRegistryNoVerifyOption);
    }
    return "the server's certificate is not trusted: pass its CA certificate";
  }
  if (c == "tls_wrong_version") {
    if (peer == Peer::kRegistry) {
      return "the registry does not speak TLS on this port: for a plain HTTP registry pass " +
             std::string(kInsecureRegistryOption);
    }
    return "the server does not speak TLS on this port: use an http:// URL";
  }
  if (c == "empty_reply") {
    if (peer == Peer::kRegistry) {
      return "the registry closed the connection without answering: if it serves HTTPS on this "
             "port, do not name it in " +
             std::string(kInsecureRegistryOption.substr(0, kInsecureRegistryOption.find(' ')));
    }
    return "the server closed the connection without answering: if it serves HTTPS on this port, "
           "use an https:// URL";
  }
  if (c == "connect_failed" || c == "kbs_unreachable") {
    return "check the URL and that the server is running";
  }
  if (c == "missing_decryption_key") {
    return "give the key of one of the layer's recipients: " + std::string(kJweKeyOption) +
           " for a JWE recipient, " + std::string(kKbsKeyFileOption) + " for a KBS key";
  }
  return {};
}

std::string printable(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  const std::string_view kept = text.substr(0, kMaxPrinted);
  std::string out;
  out.reserve(kept.size() + 8);
  for (std::size_t start = 0; start <= kept.size();) {
    // Lines stay lines (a Rego explanation is several), indented so that no received line can
    // pass for one of ours; tabs stay; everything else that is not printable ASCII is \xNN.
    const std::size_t end = std::min(kept.find('\n', start), kept.size());
    const std::string_view line = kept.substr(start, end - start);
    for (std::size_t i = 0; i < line.size();) {
      const std::size_t tab = std::min(line.find('\t', i), line.size());
      out += printable_excerpt(line.substr(i, tab - i), tab - i);
      if (tab < line.size()) out += '\t';
      i = tab + 1;
    }
    if (end < kept.size()) out += "\n    ";
    start = end + 1;
  }
  if (text.size() > kMaxPrinted) out += "...";
  return out;
}

void fail(std::string_view prefix, const Error& e, Peer peer) {
  std::cerr << prefix << ": " << printable(e.code) << ": " << printable(e.message) << "\n";
  if (auto hint = hint_for(e, peer); !hint.empty()) std::cerr << "hint: " << hint << "\n";
  exit_for(e);
}

void fail(std::string_view prefix, ExitCode code, std::string_view message) {
  std::cerr << prefix << ": " << printable(message) << "\n";
  throw CLI::RuntimeError(static_cast<int>(code));
}

void exit_for(const Error& e) { throw CLI::RuntimeError(static_cast<int>(exit_code_for(e.code))); }

bool is_terminal_safe(std::string_view text) {
  if (!is_valid_utf8(text)) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if ((b < 0x20 && b != '\t' && b != '\n' && b != '\r') || b == 0x7F) return false;
    // C1 controls U+0080..U+009F (0xC2 0x80..0x9F), e.g. CSI
    if (b == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
      return false;
    }
  }
  return true;
}

Result<std::string> normalize_url(std::string_view option, std::string_view url) {
  std::string u(url);
  const bool http = u.starts_with("http://");
  const bool https = u.starts_with("https://");
  if (!http && !https) {
    return make_error("bad_url", std::string(option) + " '" + printable(url) +
                                     "' needs a scheme: http://HOST[:PORT] or https://HOST[:PORT]");
  }
  while (u.ends_with('/')) u.pop_back();
  const std::size_t host_start = http ? 7 : 8;
  if (u.size() <= host_start || u[host_start] == '/' || std::ranges::any_of(u, [](char ch) {
        const auto b = static_cast<unsigned char>(ch);
        return b <= 0x20 || b >= 0x7F;
      })) {
    return make_error("bad_url", std::string(option) + " '" + printable(url) +
                                     "' is not a URL (http[s]://HOST[:PORT][/PATH])");
  }
  return u;
}

CLI::Validator http_url() {
  return {[](std::string& value) -> std::string {
            auto u = normalize_url("URL", value);
            if (!u) return u.error().message;
            value = std::move(*u);
            return {};
          },
          "URL"};
}

CLI::Validator readable_file() {
  return {[](std::string& path) -> std::string {
            std::error_code ec;
            auto status = std::filesystem::status(path, ec);
            if (ec || !std::filesystem::exists(status)) {
              return "file '" + printable(path) + "' does not exist";
            }
            if (!std::filesystem::is_regular_file(status)) {
              return "'" + printable(path) + "' is not a regular file";
            }
            if (::access(path.c_str(), R_OK) != 0) {
              return "file '" + printable(path) + "' is not readable";
            }
            return {};
          },
          "FILE"};
}

void one_value_per_option(CLI::App& app) {
  for (CLI::Option* opt : app.get_options()) {
    if (opt->nonpositional() && opt->get_items_expected_max() > 1) opt->allow_extra_args(false);
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    one_value_per_option(*sub);
  }
}

void add_version_flag(CLI::App& app, std::string_view program) {
  app.set_version_flag("--version", version_line(program), "print the version and exit");
}

int run(CLI::App& app, int argc, char** argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own exit code, from fail()
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every command-line error is a usage error (exit 2), not one
    // of CLI11's internal codes (105-109).
    return app.exit(e) == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  return 0;
}

}  // namespace coffer::cli
