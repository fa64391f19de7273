// The KBS options shared by every command that talks to a Key Broker Service: `coffer kbs ...`
// and `coffer image encrypt|copy|decrypt|unpack`. One name per meaning everywhere, and an
// environment variable for each value scripts would otherwise repeat:
//
//   --kbs-url URL            COFFER_KBS_URL        KBS base URL (http://host:port, https://...)
//   --kbs-ca-file FILE       COFFER_KBS_CA_FILE    PEM CA bundle for an https KBS
//   --kbs-insecure                                 skip the KBS's TLS verification (development)
//   --kbs-admin-key FILE     COFFER_KBS_ADMIN_KEY  admin private key (Ed25519 or P-256 PEM)
//
// and for the commands that attest (kbs attest/get-resource, image decrypt/unpack/copy):
//
//   --tee NAME  --quote-service SOCKET  --init-data FILE
//
// In `coffer kbs` the short spellings --url, --ca-file, --insecure and --admin-key are the same
// options (the group talks to nothing but the KBS). A command-line value wins over the
// environment.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "guest/aa/attester.h"
#include "guest/aa/kbs_client.h"
#include "net/http_client.h"

namespace coffer::cli {

struct KbsConnection {
  std::string url;
  std::string ca_file;
  bool insecure = false;
  std::string admin_key;
};

struct KbsAttestation {
  std::string tee = "auto";
  std::string quote_service;
  std::string init_data;
};

// Adds --kbs-url, --kbs-ca-file, --kbs-insecure and, with `admin`, --kbs-admin-key (and their
// environment variables). `short_aliases` also accepts --url, --ca-file, --insecure, --admin-key.
void add_kbs_connection_options(CLI::App* app, KbsConnection& c, bool admin, bool short_aliases);

// Adds --tee, --quote-service and --init-data.
void add_kbs_attestation_options(CLI::App* app, KbsAttestation& a);

// The HTTP client options for the KBS (CA file, insecure, no cookies).
net::HttpClientOptions kbs_http_options(const KbsConnection& c);

// The KbsClient options (CA file, insecure, the init-data TOML read from its file).
Result<guest::aa::KbsClientOptions> kbs_client_options(const KbsConnection& c,
                                                       const KbsAttestation& a);

// A short-lived (5 minutes) admin bearer JWT signed by the key in `admin_key_path`.
// "bad_key" if the file is not a private key PEM.
Result<std::string> kbs_admin_token(const std::string& admin_key_path);

// Stores `value` at kbs:///`path` through the admin API (POST /kbs/v0/resource/PATH).
// "kbs_unreachable" if the KBS cannot be reached, "kbs_error" for any non-2xx answer.
Status kbs_set_resource(const KbsConnection& c, std::string_view path, const Bytes& value);

// An attesting key source: the first kid attests (once) and every kid is fetched through
// guest::aa::KbsClient, the code path the agent uses. Not thread-safe.
class KbsKeyFetcher {
 public:
  KbsKeyFetcher(KbsConnection c, KbsAttestation a);
  ~KbsKeyFetcher();
  KbsKeyFetcher(const KbsKeyFetcher&) = delete;
  KbsKeyFetcher& operator=(const KbsKeyFetcher&) = delete;
  // `kid` is "kbs:///repo/type/tag".
  Result<Bytes> fetch(const std::string& kid);

 private:
  KbsConnection conn_;
  KbsAttestation att_;
  std::unique_ptr<guest::aa::Attester> attester_;
  std::unique_ptr<guest::aa::KbsClient> client_;
};

}  // namespace coffer::cli
