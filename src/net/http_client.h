// HttpClient: HTTP/1.1 and HTTPS client on libcurl.
//
//   HttpClient client({.ca_file = "ca.pem"});
//   auto r = client.request({.method = "POST", .url = "https://kbs:8080/kbs/v0/auth", .body = b});
//   if (!r) { r.error().code == "tls_untrusted" ... }
//
// One client object owns one curl easy handle and reuses it, so consecutive requests to the
// same host share a connection (keep-alive) and TLS session, and cookies set by a response (the
// KBS "kbs-session-id") are sent with the following requests to that host (libcurl's in-memory
// cookie engine, RFC 6265 rules). A client is NOT thread-safe: use one per thread or guard it.
//
// Errors (Error::code): "connect_failed" (DNS, refused, unreachable), "timeout", "empty_reply"
// (the server closed the connection without answering: often http:// sent to an HTTPS port),
// "tls_untrusted" (the server's certificate does not verify: unknown or self-signed CA, expired,
// wrong host name), "tls_wrong_version" (the server did not answer in TLS: https:// sent to a
// plain HTTP port), "bad_ca_file" (ca_file missing or unreadable), "tls_error" (any other
// handshake or client certificate failure), "too_large" (response body over
// max_response_bytes), "too_many_redirects", "bad_url", "network_error" (reset, truncated
// response, ...), or the error a body callback returned. HTTP error statuses (4xx, 5xx) are not
// errors: they come back as a Response.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "core/bytes.h"
#include "core/error.h"
#include "net/http.h"

namespace coffer::net {

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  // Whole request, connection to last byte; 0 = none (for multi-GB transfers, rely on
  // stall_timeout instead).
  std::chrono::milliseconds timeout{60'000};
  // Fail when less than 1 byte/s flows for this long; 0 = off.
  std::chrono::milliseconds stall_timeout{0};
  // PEM file of trusted CAs for HTTPS; empty: the system store.
  std::string ca_file;
  // Optional client certificate (PEM) and its key for mutual TLS.
  std::string client_cert_file;
  std::string client_key_file;
  // Disables HTTPS certificate and host name verification. Only for tests/development.
  bool insecure_skip_verify = false;
  // Redirects (301, 302, 303, 307, 308) are followed at most max_redirects times. An
  // Authorization or Cookie header given in ClientRequest::headers is never sent to a different
  // host, port or scheme; a redirect from https to http is refused.
  bool follow_redirects = true;
  int max_redirects = 5;
  // Limit for bodies buffered by request(); request_streaming() leaves bounding to its callback.
  std::size_t max_response_bytes = 64 * 1024 * 1024;
  std::string user_agent = "coffer/0.1";
  // In-memory cookie jar for this client (Set-Cookie from responses, Cookie on requests).
  bool cookies = true;
};

// Fills `buffer` with the next bytes of an upload; returns how many (0 = end of body) or an error
// that aborts the request.
using BodyReader = std::function<Result<std::size_t>(std::span<std::uint8_t> buffer)>;

// Receives one chunk of a response body; an error aborts the transfer and is returned by
// request_streaming().
using BodySink = std::function<Status(ByteView chunk)>;

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // http:// or https://
  Headers headers;  // Content-Type is omitted unless set here
  std::string body;
  // Upload from a callback instead of `body` (for large blobs). With body_length the request
  // carries Content-Length; without it, Transfer-Encoding: chunked.
  BodyReader body_reader;
  std::optional<std::uint64_t> body_length;
};

class HttpClient {
 public:
  explicit HttpClient(HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends the request and buffers the response body. Response::headers holds the final
  // response's fields (after redirects).
  Result<Response> request(const ClientRequest& request);

  // As request(), but hands the body to `on_body` in chunks as it arrives; the returned
  // Response has an empty body. Bodies of followed redirects are not passed on.
  Result<Response> request_streaming(const ClientRequest& request, const BodySink& on_body);

  // The URL of the last response, after redirects.
  [[nodiscard]] std::string effective_url() const;

  // Discards every cookie received so far.
  void clear_cookies();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace coffer::net
