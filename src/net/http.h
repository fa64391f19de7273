// HTTP message types shared by the server (http_server.h) and the client (http_client.h).
//
// They are plain values: the server fills a Request and serializes the Response the handler
// returns; the client does the opposite. Bodies are std::string (bytes, not necessarily text) so
// that they move into and out of the transport without copies.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/json.h"

namespace coffer::net {

// Header fields in arrival order. Names compare ASCII case-insensitively (RFC 9110 section 5.1);
// a name may repeat. A flat vector: messages carry a handful of fields, so a linear scan beats
// any map and keeps order for repeated fields such as Set-Cookie.
class Headers {
 public:
  using Field = std::pair<std::string, std::string>;

  // The first value of `name`, if present.
  [[nodiscard]] std::optional<std::string> get(std::string_view name) const;
  // Every value of `name`, in order.
  [[nodiscard]] std::vector<std::string> all(std::string_view name) const;
  [[nodiscard]] bool contains(std::string_view name) const;

  // Appends a field (keeps existing fields of the same name).
  void add(std::string name, std::string value);
  // Replaces every field of `name` by one field.
  void set(std::string name, std::string value);
  // Removes every field of `name`; returns how many were removed.
  std::size_t remove(std::string_view name);

  [[nodiscard]] const std::vector<Field>& fields() const { return fields_; }
  [[nodiscard]] std::size_t size() const { return fields_.size(); }
  [[nodiscard]] bool empty() const { return fields_.empty(); }
  void reserve(std::size_t n) { fields_.reserve(n); }
  [[nodiscard]] auto begin() const { return fields_.begin(); }
  [[nodiscard]] auto end() const { return fields_.end(); }

 private:
  std::vector<Field> fields_;
};

// ASCII case-insensitive comparison, for header names and tokens.
bool iequals(std::string_view a, std::string_view b);

// A request as the server received it.
struct Request {
  std::string method;  // "GET", "POST", ... as sent (case-sensitive, RFC 9110 9.1)
  std::string target;  // raw request-target, e.g. "/kbs/v0/resource/a/b/c?x=1"
  Headers headers;
  std::string body;
  std::string remote_address;  // peer IP address, e.g. "127.0.0.1" or "::1"

  // The target up to '?' (or the end), NOT percent-decoded: routers must decide themselves
  // whether and how to decode, so that "%2F" never silently becomes a path separator.
  [[nodiscard]] std::string path() const;
  // The target after the first '?', without it; empty when there is none.
  [[nodiscard]] std::string query() const;
};

// A response as a handler returns it (server) or as it arrived (client). The server computes
// Content-Length and Connection itself and ignores those fields if a handler sets them.
struct Response {
  int status = 200;
  Headers headers;
  std::string body;

  // `value` serialized compactly with Content-Type: application/json.
  static Response json(int status, const Json& value);
  // `text` with Content-Type: text/plain; charset=utf-8.
  static Response text(int status, std::string text);
  // Raw bytes with the given content type.
  static Response bytes(int status, std::string body,
                        std::string content_type = "application/octet-stream");
};

// The value of cookie `name` in the request's Cookie header(s) (RFC 6265 section 5.4 syntax:
// "a=1; b=2"), surrounding double quotes removed. The first occurrence wins.
std::optional<std::string> cookie(const Request& request, std::string_view name);

// Attributes of a Set-Cookie header (RFC 6265 section 4.1).
struct CookieAttributes {
  std::string path = "/";
  std::optional<std::int64_t> max_age_seconds;  // absent: a session cookie
  bool http_only = true;
  bool secure = false;
  std::string same_site;  // "Strict", "Lax", "None" or empty (attribute omitted)
};

// A Set-Cookie header value, e.g. set_cookie("kbs-session-id", id) ->
// "kbs-session-id=<id>; Path=/; HttpOnly". The caller supplies a valid name and value.
std::string set_cookie(std::string_view name, std::string_view value,
                       const CookieAttributes& attributes = {});

// The standard reason phrase for a status code ("Not Found"), or "" when unknown.
std::string_view reason_phrase(int status);

}  // namespace coffer::net
