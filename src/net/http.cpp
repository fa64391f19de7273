#include "net/http.h"

#include <algorithm>

#include <boost/beast/http/status.hpp>

namespace coffer::net {
namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + ('a' - 'A')) : c; }

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Looks for `name` in one Cookie header value: pairs separated by ';'.
std::optional<std::string> find_cookie(std::string_view header, std::string_view name) {
  while (!header.empty()) {
    const auto semi = header.find(';');
    std::string_view pair = trim_ows(header.substr(0, semi));
    header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
    const auto eq = pair.find('=');
    if (eq == std::string_view::npos) continue;
    if (trim_ows(pair.substr(0, eq)) != name) continue;
    std::string_view value = trim_ows(pair.substr(eq + 1));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return std::string(value);
  }
  return std::nullopt;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return ascii_lower(x) == ascii_lower(y);
         });
}

std::optional<std::string> Headers::get(std::string_view name) const {
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> Headers::all(std::string_view name) const {
  std::vector<std::string> out;
  for (const auto& [n, v] : fields_) {
    if (iequals(n, name)) out.push_back(v);
  }
  return out;
}

bool Headers::contains(std::string_view name) const {
  return std::any_of(fields_.begin(), fields_.end(),
                     [&](const Field& f) { return iequals(f.first, name); });
}

void Headers::add(std::string name, std::string value) {
  fields_.emplace_back(std::move(name), std::move(value));
}

void Headers::set(std::string name, std::string value) {
  remove(name);
  add(std::move(name), std::move(value));
}

std::size_t Headers::remove(std::string_view name) {
  return std::erase_if(fields_, [&](const Field& f) { return iequals(f.first, name); });
}

std::string Request::path() const {
  const auto q = target.find('?');
  return target.substr(0, q);
}

std::string Request::query() const {
  const auto q = target.find('?');
  return q == std::string::npos ? std::string{} : target.substr(q + 1);
}

Response Response::json(int status, const Json& value) {
  return bytes(status, value.dump(), "application/json");
}

Response Response::text(int status, std::string text) {
  return bytes(status, std::move(text), "text/plain; charset=utf-8");
}

Response Response::bytes(int status, std::string body, std::string content_type) {
  Response r;
  r.status = status;
  r.headers.add("Content-Type", std::move(content_type));
  r.body = std::move(body);
  return r;
}

std::optional<std::string> cookie(const Request& request, std::string_view name) {
  for (const auto& [n, v] : request.headers) {
    if (!iequals(n, "Cookie")) continue;
    if (auto found = find_cookie(v, name)) return found;
  }
  return std::nullopt;
}

std::string set_cookie(std::string_view name, std::string_view value,
                       const CookieAttributes& attributes) {
  std::string out;
  out.reserve(name.size() + value.size() + 48);
  out.append(name).append("=").append(value);
  if (!attributes.path.empty()) out.append("; Path=").append(attributes.path);
  if (attributes.max_age_seconds) {
    out.append("; Max-Age=").append(std::to_string(*attributes.max_age_seconds));
  }
  if (attributes.http_only) out.append("; HttpOnly");
  if (attributes.secure) out.append("; Secure");
  if (!attributes.same_site.empty()) out.append("; SameSite=").append(attributes.same_site);
  return out;
}

std::string_view reason_phrase(int status) {
  if (status < 100 || status > 999) return {};
  const auto s = boost::beast::http::int_to_status(static_cast<unsigned>(status));
  if (s == boost::beast::http::status::unknown) return {};
  const auto r = boost::beast::http::obsolete_reason(s);
  return {r.data(), r.size()};
}

}  // namespace coffer::net
