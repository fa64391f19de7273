#include "cli/kbs_command.h"

#include <unistd.h>

#include <iostream>
#include <memory>

#include "cli/exit.h"
#include "cli/kbs_options.h"
#include "core/file.h"
#include "core/json.h"
#include "crypto/pkey.h"
#include "guest/aa/attester.h"
#include "guest/aa/kbs_client.h"
#include "jose/jwt.h"
#include "net/http_client.h"
#include "trustee/as/attestation_service.h"

namespace coffer::cli {
namespace {

// url, ca_file, insecure, admin_key (KbsConnection) and tee, quote_service, init_data
// (KbsAttestation) are the options every KBS-talking command shares (cli/kbs_options.h).
struct KbsOptions : KbsConnection, KbsAttestation {
  KbsOptions() { url = "http://127.0.0.1:8080"; }
  // client
  bool decode = false;  // attest --decode
  std::string out;
  // admin
  std::string path;
  std::string file;
  bool allow_affirming = false;
  bool deny_all = false;
  std::string policy_id = "default_cpu";
  std::string builtin;  // set-attestation-policy --builtin default|development
  std::string name;
  std::vector<std::string> values;
  std::string key_type = "ed25519";
};

constexpr std::string_view kPrefix = "coffer kbs";

[[noreturn]] void fail(ExitCode code, const std::string& message) {
  cli::fail(kPrefix, code, message);
}

// Exits with the code for `e`; prints it unless the KBS's own problem report was printed already.
[[noreturn]] void fail_with(const Error& e, bool already_reported = false) {
  if (already_reported) exit_for(e);
  cli::fail(kPrefix, e, Peer::kKbs);
}

// The admin side of the KBS API: bearer JWTs signed by the admin key, fresh per request.
class AdminClient {
 public:
  explicit AdminClient(const KbsOptions& o) : url_(o.url) {
    if (o.admin_key.empty())
      fail(ExitCode::kUsage,
           "this command needs --admin-key FILE or COFFER_KBS_ADMIN_KEY (private key PEM; see "
           "`coffer kbs keygen`)");
    auto pem = read_text_file(o.admin_key, 64 * 1024);
    if (!pem) fail(ExitCode::kUsage, "admin key: " + pem.error().to_string());
    auto key = crypto::Key::from_pem(*pem);
    if (!key || !key->has_private())
      fail(ExitCode::kUsage, "admin key '" + o.admin_key + "' is not a private key PEM");
    key_ = std::make_unique<crypto::Key>(std::move(*key));
    net::HttpClientOptions http;
    http.ca_file = o.ca_file;
    http.insecure_skip_verify = o.insecure;
    http.cookies = false;
    client_ = std::make_unique<net::HttpClient>(http);
  }

  Json call(const std::string& method, const std::string& path, std::string body,
            const std::string& content_type) {
    auto now = unix_seconds(system_clock()->now());
    Json claims = {{"iat", now}, {"exp", now + 300}};
    auto alg =
        key_->type() == crypto::KeyType::kEd25519 ? jose::JwsAlg::kEdDSA : jose::JwsAlg::kES256;
    auto token = jose::jwt_sign(claims, *key_, alg);
    if (!token) fail_with(token.error());
    net::ClientRequest req;
    req.method = method;
    req.url = url_ + path;
    req.body = std::move(body);
    req.headers.set("Authorization", "Bearer " + *token);
    if (!content_type.empty()) req.headers.set("Content-Type", content_type);
    auto resp = client_->request(req);
    if (!resp) fail_with(wrap_error(resp.error(), "cannot reach the KBS at " + url_).error());
    auto parsed = parse_json(resp->body);
    if (resp->status != 200) {
      auto field = [&](const char* name) {
        return parsed && parsed->is_object() && parsed->contains(name) &&
                       (*parsed)[name].is_string()
                   ? (*parsed)[name].get<std::string>()
                   : std::string();
      };
      std::string detail = field("detail");
      if (detail.empty()) detail = resp->body;
      std::string type = field("type");
      type = type.substr(type.rfind('/') + 1);
      fail_with(Error{kbs_status_code(resp->status),
                      "KBS answered " + std::to_string(resp->status) +
                          (type.empty() ? "" : " " + type) + ": " + detail});
    }
    return parsed ? *parsed : Json::object();
  }

 private:
  std::string url_;
  std::unique_ptr<crypto::Key> key_;
  std::unique_ptr<net::HttpClient> client_;
};

std::string read_input_file(const std::string& path) {
  auto text = read_text_file(path, 64 * 1024 * 1024);
  if (!text) fail(ExitCode::kUsage, text.error().to_string());
  return *text;
}

std::unique_ptr<guest::aa::Attester> attester_for(const KbsOptions& o) {
  guest::aa::AttesterOptions opts;
  if (!o.quote_service.empty()) opts.quote_service_socket = o.quote_service;
  auto a = guest::aa::make_attester(o.tee, opts);
  if (!a) fail_with(a.error());
  return std::move(*a);
}

guest::aa::KbsClientOptions client_options(const KbsOptions& o) {
  guest::aa::KbsClientOptions c;
  c.ca_file = o.ca_file;
  c.insecure = o.insecure;
  if (!o.init_data.empty()) c.init_data_toml = read_input_file(o.init_data);
  return c;
}

// Prints the KBS's RFC 7807 answer behind the last failure, if there was one.
bool print_problem(const guest::aa::KbsClient& client) {
  const auto& p = client.last_problem();
  if (!p) return false;
  std::cerr << kPrefix << ": KBS " << p->status << " " << printable(p->variant) << ": "
            << printable(p->detail) << "\n";
  return true;
}

void run_attest(const KbsOptions& o) {
  auto attester = attester_for(o);
  guest::aa::KbsClient client(o.url, *attester, client_options(o));
  auto token = client.attest();
  if (!token) {
    fail_with(token.error(), print_problem(client));
  }
  if (o.decode) {
    // Display only: the claims of the token just received from the KBS, not verified here.
    auto dot1 = token->find('.');
    auto dot2 = dot1 == std::string::npos ? dot1 : token->find('.', dot1 + 1);
    auto payload = dot2 == std::string::npos
                       ? std::nullopt
                       : std::optional(base64url_decode(token->substr(dot1 + 1, dot2 - dot1 - 1)));
    Result<Json> claims = make_error("bad_token", "not a JWS compact token");
    if (payload && *payload) claims = parse_json(to_string(**payload));
    if (!claims || !claims->is_object()) {
      fail(ExitCode::kRefused, "the KBS answered a token whose payload is not a JSON object");
    }
    std::cout << claims->dump(2) << "\n";
    return;
  }
  std::cout << *token << "\n";
}

void run_get_resource(const KbsOptions& o) {
  auto attester = attester_for(o);
  guest::aa::KbsClient client(o.url, *attester, client_options(o));
  auto value = client.get_resource(o.path);
  if (!value) {
    fail_with(value.error(), print_problem(client));
  }
  if (o.out.empty() && ::isatty(STDOUT_FILENO) != 0 && !is_terminal_safe(to_string(*value))) {
    fail(ExitCode::kUsage,
         "the resource is binary and stdout is a terminal: pass --out FILE (or --out - to write "
         "it anyway)");
  }
  if (o.out.empty() || o.out == "-") {
    std::cout.write(reinterpret_cast<const char*>(value->data()),
                    static_cast<std::streamsize>(value->size()));
    std::cout.flush();
  } else if (auto w = write_file_atomic(o.out, *value, 0600); !w) {
    fail(ExitCode::kUsage, w.error().to_string());
  }
}

void run_keygen(const KbsOptions& o) {
  if (o.out.empty()) fail(ExitCode::kUsage, "keygen needs --out FILE");
  auto type = o.key_type == "ed25519" ? crypto::KeyType::kEd25519
              : o.key_type == "p256"  ? crypto::KeyType::kEcP256
                                      : (fail(ExitCode::kUsage, "--type must be ed25519 or p256"),
                                        crypto::KeyType::kEd25519);
  if (std::filesystem::exists(o.out))
    fail(ExitCode::kConflict, "'" + o.out + "' exists; refusing to overwrite a key");
  auto key = crypto::Key::generate(type);
  if (!key) fail_with(key.error());
  auto pem = key->private_pem();
  if (!pem) fail_with(pem.error());
  if (auto w = write_file_atomic(o.out, as_bytes(*pem), 0600); !w)
    fail(ExitCode::kUsage, w.error().to_string());
  if (auto w = write_file_atomic(o.out + ".pub", as_bytes(key->public_pem()), 0644); !w) {
    fail(ExitCode::kUsage, w.error().to_string());
  }
  std::cout << "private key: " << o.out << " (mode 0600)\npublic key:  " << o.out
            << ".pub  (list it in [admin] auth_public_keys)\n";
}

constexpr const char* kAllowAffirming =
    "package policy\nimport rego.v1\n\ndefault allow := false\n\nallow if "
    "{\n\tcount(input.submods) > 0\n"
    "\tevery submod in input.submods {\n\t\tsubmod[\"ear.status\"] == \"affirming\"\n\t}\n}\n";
constexpr const char* kDenyAll = "package policy\nimport rego.v1\n\ndefault allow := false\n";

void run_admin(const std::string& what, const KbsOptions& o) {
  AdminClient admin(o);
  if (what == "set-resource") {
    admin.call("POST", "/kbs/v0/resource/" + o.path, read_input_file(o.file),
               "application/octet-stream");
    std::cout << "stored " << o.path << "\n";
  } else if (what == "delete-resource") {
    admin.call("DELETE", "/kbs/v0/resource/" + o.path, "", "");
    std::cout << "deleted " << o.path << "\n";
  } else if (what == "set-resource-policy") {
    int chosen = (o.file.empty() ? 0 : 1) + (o.allow_affirming ? 1 : 0) + (o.deny_all ? 1 : 0);
    if (chosen != 1)
      fail(ExitCode::kUsage, "give exactly one of --file, --allow-affirming, --deny-all");
    std::string text = !o.file.empty() ? read_input_file(o.file)
                                       : (o.allow_affirming ? kAllowAffirming : kDenyAll);
    admin.call("POST", "/kbs/v0/resource-policy",
               Json{{"policy", base64url_encode(as_bytes(text))}}.dump(), "application/json");
    std::cout << "resource policy updated\n";
  } else if (what == "get-resource-policy") {
    auto r = admin.call("GET", "/kbs/v0/resource-policy", "", "");
    auto text = base64url_decode(r.value("policy", ""));
    if (!text) fail(ExitCode::kRemoteError, "the KBS answered a policy that is not base64url");
    std::cout << to_string(*text);
  } else if (what == "set-attestation-policy") {
    // The policies this coffer ships with, by name: the default (never affirms simulated or
    // sample evidence) and the development one (affirms them, for sim-tdx/sim-snp/sim-sgx/sample).
    std::string text;
    if (o.builtin == "default") {
      text = std::string(trustee::as::default_attestation_policy());
    } else if (o.builtin == "development") {
      text = std::string(trustee::as::development_attestation_policy());
    } else {
      text = read_input_file(o.file);
    }
    Json body = {
        {"type", "rego"}, {"policy_id", o.policy_id}, {"policy", base64url_encode(as_bytes(text))}};
    admin.call("POST", "/kbs/v0/attestation-policy", body.dump(), "application/json");
    std::cout << "attestation policy '" << o.policy_id << "' updated"
              << (o.builtin.empty() ? "" : " to the built-in " + o.builtin + " policy") << "\n";
  } else if (what == "get-attestation-policy") {
    auto r = admin.call("GET", "/kbs/v0/attestation-policy?policy_id=" + o.policy_id, "", "");
    auto text = base64url_decode(r.value("policy", ""));
    if (!text) fail(ExitCode::kRemoteError, "the KBS answered a policy that is not base64url");
    std::cout << to_string(*text);
  } else if (what == "set-reference-value") {
    Json payload = {{o.name, o.values}};
    Json msg = {{"version", "0.1.0"},
                {"type", "sample"},
                {"payload", base64_encode(as_bytes(payload.dump()))}};
    admin.call("POST", "/kbs/v0/reference-value", msg.dump(), "application/json");
    std::cout << "reference value " << o.name << " = " << Json(o.values).dump() << "\n";
  } else if (what == "set-reference-values") {
    // A whole RVPS message as `coffer sim measure --format rvps` prints it; checked here so a
    // wrong file gets a clear local error rather than a 400.
    auto msg = parse_json(read_input_file(o.file));
    if (!msg || !msg->is_object() || !msg->contains("payload") || !msg->contains("version")) {
      fail(ExitCode::kUsage,
           "'" + o.file + "' is not an RVPS message {\"version\",\"type\",\"payload\"}");
    }
    auto payload = base64_decode(msg->value("payload", ""));
    Result<Json> values = Json();
    if (payload) values = parse_json(to_string(*payload));
    if (!payload || !values || !values->is_object())
      fail(ExitCode::kUsage,
           "'" + o.file + "': payload is not base64 of a {name: [values]} object");
    admin.call("POST", "/kbs/v0/reference-value", msg->dump(), "application/json");
    for (const auto& [name, v] : values->items()) {
      std::cout << "reference value " << name << " = " << v.dump() << "\n";
    }
  } else if (what == "get-reference-value") {
    auto r = admin.call("GET", "/kbs/v0/reference-value/" + o.name, "", "");
    std::cout << r.value("values", Json::array()).dump() << "\n";
  }
}

}  // namespace

void add_kbs_command(CLI::App& app) {
  auto o = std::make_shared<KbsOptions>();
  auto* kbs =
      app.add_subcommand("kbs", "Talk to a Key Broker Service (coffer-trustee or CoCo Trustee)");
  kbs->require_subcommand(1);
  add_kbs_connection_options(kbs, *o, /*admin=*/true, /*short_aliases=*/true);
  kbs->get_option("--kbs-url")->capture_default_str();

  auto add_client = [&](CLI::App* c) { add_kbs_attestation_options(c, *o); };
  auto* attest = kbs->add_subcommand("attest", "Attest to the KBS and print the attestation token");
  add_client(attest);
  attest->add_flag("--decode", o->decode,
                   "print the token's claims as JSON instead of the token (for reading; the "
                   "signature is not checked here)");
  attest->callback([o] { run_attest(*o); });

  auto* get = kbs->add_subcommand("get-resource",
                                  "Attest and fetch a resource (plaintext to stdout or --out)");
  add_client(get);
  get->add_option("--path", o->path, "repo/type/tag")->required();
  get->add_option("--out", o->out, "write the resource to this file (mode 0600)");
  get->callback([o] { run_get_resource(*o); });

  auto* keygen = kbs->add_subcommand("keygen", "Generate an admin key pair");
  keygen->add_option("--out", o->out, "private key file; the public key goes to FILE.pub")
      ->required();
  keygen->add_option("--type", o->key_type, "ed25519 or p256")->capture_default_str();
  keygen->callback([o] { run_keygen(*o); });

  auto* set = kbs->add_subcommand("set-resource", "Store a resource (admin)");
  set->add_option("--path", o->path, "repo/type/tag")->required();
  set->add_option("--file", o->file, "file holding the resource bytes")
      ->required()
      ->check(CLI::ExistingFile);
  set->callback([o] { run_admin("set-resource", *o); });

  auto* del = kbs->add_subcommand("delete-resource", "Delete a resource (admin)");
  del->add_option("--path", o->path, "repo/type/tag")->required();
  del->callback([o] { run_admin("delete-resource", *o); });

  auto* rp = kbs->add_subcommand("set-resource-policy", "Replace the resource policy (admin)");
  rp->add_option("--file", o->file, "Rego file")->check(CLI::ExistingFile);
  rp->add_flag("--allow-affirming", o->allow_affirming,
               "release when every submodule is affirming");
  rp->add_flag("--deny-all", o->deny_all, "release nothing");
  rp->callback([o] { run_admin("set-resource-policy", *o); });

  auto* grp = kbs->add_subcommand("get-resource-policy", "Print the resource policy (admin)");
  grp->callback([o] { run_admin("get-resource-policy", *o); });

  auto* ap = kbs->add_subcommand("set-attestation-policy", "Replace an attestation policy (admin)");
  auto* ap_file = ap->add_option("--file", o->file, "Rego file")->check(CLI::ExistingFile);
  auto* ap_builtin =
      ap->add_option("--builtin", o->builtin,
                     "a policy shipped with coffer: 'default' (never affirms simulated or sample "
                     "evidence) or 'development' (affirms sim-tdx, sim-snp, sim-sgx and sample)")
          ->check(CLI::IsMember({"default", "development"}));
  ap_file->excludes(ap_builtin);
  ap->add_option("--id", o->policy_id, "policy id")->capture_default_str();
  ap->callback([o] {
    if (o->file.empty() && o->builtin.empty()) {
      fail(ExitCode::kUsage,
           "set-attestation-policy needs --file FILE or --builtin default|development");
    }
    run_admin("set-attestation-policy", *o);
  });

  auto* gap = kbs->add_subcommand("get-attestation-policy", "Print an attestation policy (admin)");
  gap->add_option("--id", o->policy_id, "policy id")->capture_default_str();
  gap->callback([o] { run_admin("get-attestation-policy", *o); });

  auto* srv =
      kbs->add_subcommand("set-reference-value", "Register accepted values for a name (admin)");
  srv->add_option("name", o->name, "reference value name, e.g. tdx.mr_td")->required();
  srv->add_option("values", o->values, "accepted values")->required();
  srv->callback([o] { run_admin("set-reference-value", *o); });

  auto* srvs = kbs->add_subcommand(
      "set-reference-values",
      "Register an RVPS message, e.g. from `coffer sim measure --format rvps` (admin)");
  srvs->add_option("--file", o->file, "RVPS message JSON")->required()->check(CLI::ExistingFile);
  srvs->callback([o] { run_admin("set-reference-values", *o); });

  auto* grv =
      kbs->add_subcommand("get-reference-value", "Print the accepted values for a name (admin)");
  grv->add_option("name", o->name, "reference value name")->required();
  grv->callback([o] { run_admin("get-reference-value", *o); });
}

}  // namespace coffer::cli
