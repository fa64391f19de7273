#include "net/http_client.h"

#include <mutex>
#include <string_view>

#include <curl/curl.h>

namespace coffer::net {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;

// State of one transfer, shared with the libcurl callbacks.
struct Transfer {
  CURL* curl = nullptr;
  Response* response = nullptr;
  const BodySink* sink = nullptr;  // streaming; otherwise the body goes to response->body
  std::size_t limit = 0;           // buffered only; 0 = none
  bool too_large = false;
  bool reserved = false;
  const BodyReader* reader = nullptr;
  std::optional<Error> callback_error;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// libcurl calls this once per header line of every response, redirects and 1xx included; a
// status line starts a new response, so only the final response's fields remain.
std::size_t on_header(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  const std::string_view line = trim(std::string_view(data, n));
  if (line.starts_with("HTTP/")) {
    t.response->headers = Headers{};
  } else if (const auto colon = line.find(':'); colon != std::string_view::npos && colon > 0) {
    t.response->headers.add(std::string(line.substr(0, colon)),
                            std::string(trim(line.substr(colon + 1))));
  }
  return n;
}

std::size_t on_write(char* data, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t n = size * count;
  if (t.sink != nullptr) {
    try {
      if (auto status = (*t.sink)(ByteView(reinterpret_cast<const std::uint8_t*>(data), n));
          !status) {
        t.callback_error = std::move(status).error();
        return 0;  // != n: libcurl aborts with CURLE_WRITE_ERROR
      }
    } catch (const std::exception& e) {
      t.callback_error = Error{"callback_failed", std::string("body callback threw: ") + e.what()};
      return 0;
    }
    return n;
  }
  std::string& body = t.response->body;
  if (t.limit != 0 && body.size() + n > t.limit) {
    t.too_large = true;
    return 0;
  }
  if (!t.reserved) {
    t.reserved = true;
    curl_off_t length = -1;
    if (curl_easy_getinfo(t.curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length) == CURLE_OK &&
        length > 0) {
      const auto want = static_cast<std::size_t>(length);
      body.reserve(t.limit != 0 ? std::min(want, t.limit) : want);
    }
  }
  body.append(data, n);
  return n;
}

std::size_t on_read(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  const std::size_t capacity = size * count;
  if (t.reader == nullptr) return 0;
  try {
    auto got =
        (*t.reader)(std::span<std::uint8_t>(reinterpret_cast<std::uint8_t*>(buffer), capacity));
    if (!got) {
      t.callback_error = std::move(got).error();
      return CURL_READFUNC_ABORT;
    }
    if (*got > capacity) {
      t.callback_error = Error{"callback_failed", "body reader returned more bytes than asked"};
      return CURL_READFUNC_ABORT;
    }
    return *got;
  } catch (const std::exception& e) {
    t.callback_error = Error{"callback_failed", std::string("body reader threw: ") + e.what()};
    return CURL_READFUNC_ABORT;
  }
}

Error map_curl_error(CURLcode code, const char* detail, const HttpClientOptions& options) {
  std::string message = detail[0] != '\0' ? std::string(detail) : curl_easy_strerror(code);
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return {"connect_failed", std::move(message)};
    case CURLE_OPERATION_TIMEDOUT:
      return {"timeout", std::move(message)};
    case CURLE_GOT_NOTHING:
      // Typically plain HTTP sent to a TLS port: the server drops the connection unanswered.
      return {"empty_reply", std::move(message)};
    case CURLE_PEER_FAILED_VERIFICATION:
      // Unknown CA, self-signed, expired or wrong host name: the server is not the one trusted.
      return {"tls_untrusted", std::move(message)};
    case CURLE_SSL_CACERT_BADFILE:
      return {"bad_ca_file",
              "cannot load CA certificates from '" + options.ca_file + "': " + message};
    case CURLE_SSL_CONNECT_ERROR:
      // OpenSSL's "wrong version number": the server answered in plain text, not TLS.
      if (message.find("wrong version number") != std::string::npos) {
        return {"tls_wrong_version", std::move(message)};
      }
      return {"tls_error", std::move(message)};
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return {"tls_error", std::move(message)};
    case CURLE_FILESIZE_EXCEEDED:
      return {"too_large", std::move(message)};
    case CURLE_TOO_MANY_REDIRECTS:
      return {"too_many_redirects", std::move(message)};
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return {"bad_url", std::move(message)};
    default:
      return {"network_error", std::move(message)};
  }
}

}  // namespace

class HttpClient::Impl {
 public:
  explicit Impl(HttpClientOptions options) : options_(std::move(options)) {
    global_init();
    curl_.reset(curl_easy_init());
    if (!curl_) return;
    // Options that never change for this client. No curl_easy_reset() between requests: in
    // libcurl 7.88 it leaks the CURLOPT_COOKIEFILE list, and the cookie engine must stay on.
    CURL* c = curl_.get();
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_write);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &on_read);
    set_timeouts(c);
    set_tls(c);
    if (options_.cookies) curl_easy_setopt(c, CURLOPT_COOKIEFILE, "");
  }

  Result<Response> perform(const ClientRequest& request, const BodySink* sink) {
    if (!curl_) return make_error("client_init", "libcurl could not create a handle");
    for (const auto& [name, value] : request.headers) {
      // libcurl sends header lines verbatim: CR or LF would inject fields.
      if (name.empty() || name.find_first_of(":\r\n") != std::string::npos ||
          value.find_first_of("\r\n") != std::string::npos) {
        return make_error("bad_request", "invalid request header field '" + name + "'");
      }
    }
    CURL* c = curl_.get();
    Response response;
    Transfer t;
    t.curl = c;
    t.response = &response;
    t.sink = sink;
    t.limit = sink != nullptr ? 0 : options_.max_response_bytes;
    t.reader = request.body_reader ? &request.body_reader : nullptr;
    char error_buffer[CURL_ERROR_SIZE] = {0};

    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    set_redirects(c, request.url);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t.limit));  // 0: none
    set_method_and_body(c, request, t);
    SlistPtr headers = make_headers(request);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

    const CURLcode code = curl_easy_perform(c);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
    if (t.callback_error) return std::unexpected(std::move(*t.callback_error));
    if (t.too_large || code == CURLE_FILESIZE_EXCEEDED) {
      return make_error("too_large", "response body from " + request.url + " exceeds " +
                                         std::to_string(options_.max_response_bytes) + " bytes");
    }
    if (code != CURLE_OK) return std::unexpected(map_curl_error(code, error_buffer, options_));
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    response.status = static_cast<int>(status);
    return response;
  }

  std::string effective_url() const {
    char* url = nullptr;
    if (curl_ && curl_easy_getinfo(curl_.get(), CURLINFO_EFFECTIVE_URL, &url) == CURLE_OK && url) {
      return url;
    }
    return {};
  }

  void clear_cookies() {
    if (curl_) curl_easy_setopt(curl_.get(), CURLOPT_COOKIELIST, "ALL");
  }

 private:
  void set_timeouts(CURL* c) const {
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout.count()));
    if (options_.stall_timeout.count() > 0) {
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
      curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
                       std::max(1L, static_cast<long>(options_.stall_timeout.count() / 1000)));
    }
  }

  void set_redirects(CURL* c, std::string_view url) const {
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, options_.follow_redirects ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects));
    // Never downgrade https to http. Custom Authorization and Cookie headers stay with the
    // original host, port and scheme: libcurl's default (CURLOPT_UNRESTRICTED_AUTH off).
    const bool https = url.size() >= 8 && iequals(url.substr(0, 8), "https://");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_UNRESTRICTED_AUTH, 0L);
  }

  void set_tls(CURL* c) const {
    curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
    if (!options_.client_cert_file.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLCERT, options_.client_cert_file.c_str());
    }
    if (!options_.client_key_file.empty()) {
      curl_easy_setopt(c, CURLOPT_SSLKEY, options_.client_key_file.c_str());
    }
    if (options_.insecure_skip_verify) {
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
  }

  static void set_method_and_body(CURL* c, const ClientRequest& request, Transfer& t) {
    const std::string& method = request.method;
    // Undo the previous request's method and body. Order matters: setting POSTFIELDS (even to
    // null) makes the method POST; HTTPGET then makes it GET and clears NOBODY and UPLOAD.
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, nullptr);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(-1));
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(-1));
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, nullptr);
    if (t.reader != nullptr) {
      curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);  // PUT unless overridden below
      // -1: unknown length, sent with Transfer-Encoding: chunked.
      curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE,
                       request.body_length ? static_cast<curl_off_t>(*request.body_length) : -1);
      if (method != "PUT") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    } else if (method == "HEAD") {
      curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (method == "GET" && request.body.empty()) {
      // already a GET
    } else if (!request.body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                       static_cast<curl_off_t>(request.body.size()));
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
      if (method != "POST") curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    } else {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
    }
  }

  static SlistPtr make_headers(const ClientRequest& request) {
    curl_slist* list = nullptr;
    auto append = [&list](const std::string& line) {
      if (auto* next = curl_slist_append(list, line.c_str())) list = next;
    };
    for (const auto& [name, value] : request.headers) {
      append(value.empty() ? name + ";" : name + ": " + value);  // "Name;" sends an empty value
    }
    const bool has_body = request.body_reader || !request.body.empty() ||
                          request.method == "POST" || request.method == "PUT" ||
                          request.method == "PATCH";
    // libcurl would add "Content-Type: application/x-www-form-urlencoded" to POSTs: omit it
    // unless the caller set one. "Expect: 100-continue" costs a round trip for in-memory bodies.
    if (has_body && !request.headers.contains("Content-Type")) append("Content-Type:");
    if (!request.body_reader && !request.headers.contains("Expect")) append("Expect:");
    return SlistPtr(list);
  }

  HttpClientOptions options_;
  CurlPtr curl_;
};

HttpClient::HttpClient(HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

Result<Response> HttpClient::request(const ClientRequest& request) {
  return impl_->perform(request, nullptr);
}

Result<Response> HttpClient::request_streaming(const ClientRequest& request,
                                               const BodySink& on_body) {
  return impl_->perform(request, &on_body);
}

std::string HttpClient::effective_url() const { return impl_->effective_url(); }

void HttpClient::clear_cookies() { impl_->clear_cookies(); }

}  // namespace coffer::net
