#include "runtime/snapshotter/filter.h"

#include <cctype>

#include <re2/re2.h>

namespace coffer::runtime::snapshotter {

enum class Op { kPresent, kEqual, kNotEqual, kMatch };

struct Filter::Selector {
  std::vector<std::string> path;
  Op op = Op::kPresent;
  std::string value;
  std::shared_ptr<RE2> regex;
};

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  Result<std::vector<Filter::Selector>> parse() {
    std::vector<Filter::Selector> out;
    skip_space();
    if (at_end()) {
      return bad("empty filter");
    }
    while (true) {
      auto selector = COFFER_TRY(parse_selector());
      out.push_back(std::move(selector));
      skip_space();
      if (at_end()) {
        return out;
      }
      if (text_[pos_] != ',') {
        return bad("expected ',' between selectors");
      }
      ++pos_;
      skip_space();
    }
  }

 private:
  [[nodiscard]] bool at_end() const { return pos_ >= text_.size(); }
  void skip_space() {
    while (!at_end() && std::isspace(static_cast<unsigned char>(text_[pos_])) != 0) {
      ++pos_;
    }
  }
  std::unexpected<Error> bad(std::string_view what) const {
    return make_error("invalid_argument", "filter '" + std::string(text_.substr(0, 200)) +
                                              "': " + std::string(what) + " at offset " +
                                              std::to_string(pos_));
  }

  // "..." with backslash escapes of the quote and the backslash (the delimiter is `quote`).
  Result<std::string> parse_quoted(char quote) {
    std::string out;
    ++pos_;
    while (!at_end()) {
      char c = text_[pos_++];
      if (c == quote) {
        return out;
      }
      if (c == '\\' && !at_end()) {
        char next = text_[pos_++];
        if (next != quote && next != '\\') {
          out.push_back('\\');  // kept for a regular expression's own escapes
        }
        out.push_back(next);
        continue;
      }
      out.push_back(c);
    }
    return bad("unterminated quoted string");
  }

  Result<std::string> parse_field() {
    if (at_end()) {
      return bad("expected a field name");
    }
    if (text_[pos_] == '"') {
      return parse_quoted('"');
    }
    std::size_t start = pos_;
    while (!at_end() &&
           (std::isalnum(static_cast<unsigned char>(text_[pos_])) != 0 || text_[pos_] == '_')) {
      ++pos_;
    }
    if (start == pos_) {
      return bad("expected a field name");
    }
    return std::string(text_.substr(start, pos_ - start));
  }

  Result<Filter::Selector> parse_selector() {
    Filter::Selector selector;
    selector.path.push_back(COFFER_TRY(parse_field()));
    while (!at_end() && text_[pos_] == '.') {
      ++pos_;
      selector.path.push_back(COFFER_TRY(parse_field()));
    }
    skip_space();
    if (at_end() || text_[pos_] == ',') {
      return selector;
    }
    auto op = text_.substr(pos_, 2);
    if (op == "==") {
      selector.op = Op::kEqual;
    } else if (op == "!=") {
      selector.op = Op::kNotEqual;
    } else if (op == "~=") {
      selector.op = Op::kMatch;
    } else {
      return bad("expected ==, != or ~=");
    }
    pos_ += 2;
    skip_space();
    if (!at_end() && (text_[pos_] == '"' || (selector.op == Op::kMatch && text_[pos_] == '/'))) {
      selector.value = COFFER_TRY(parse_quoted(text_[pos_]));
    } else {
      std::size_t start = pos_;
      while (!at_end() && text_[pos_] != ',') {
        ++pos_;
      }
      auto bare = text_.substr(start, pos_ - start);
      while (!bare.empty() && std::isspace(static_cast<unsigned char>(bare.back())) != 0) {
        bare.remove_suffix(1);
      }
      if (bare.empty()) {
        return bad("expected a value");
      }
      selector.value = std::string(bare);
    }
    if (selector.op == Op::kMatch) {
      RE2::Options options;
      options.set_log_errors(false);
      options.set_max_mem(1 << 20);
      selector.regex = std::make_shared<RE2>(selector.value, options);
      if (!selector.regex->ok()) {
        return bad("invalid regular expression: " + selector.regex->error());
      }
    }
    return selector;
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

bool matches(const Filter::Selector& selector, const FieldLookup& lookup) {
  auto value = lookup(selector.path);
  switch (selector.op) {
    case Op::kPresent:
      return value.has_value() && !value->empty();
    case Op::kEqual:
      return value.has_value() && *value == selector.value;
    case Op::kNotEqual:
      return !value.has_value() || *value != selector.value;
    case Op::kMatch:
      return value.has_value() && RE2::PartialMatch(*value, *selector.regex);
  }
  return false;
}

}  // namespace

Filter::Filter() = default;
Filter::~Filter() = default;
Filter::Filter(Filter&&) noexcept = default;
Filter& Filter::operator=(Filter&&) noexcept = default;

Result<Filter> Filter::parse(const std::vector<std::string>& filters) {
  if (filters.size() > kMaxFilters) {
    return make_error("invalid_argument", "more than " + std::to_string(kMaxFilters) + " filters");
  }
  Filter out;
  for (const auto& text : filters) {
    if (text.size() > kMaxFilterBytes) {
      return make_error("invalid_argument",
                        "a filter is over " + std::to_string(kMaxFilterBytes) + " bytes");
    }
    if (text.find_first_not_of(" \t") == std::string::npos) {
      out.match_all_ = true;  // containerd's parser reads an empty filter as "always"
      continue;
    }
    out.any_of_.push_back(COFFER_TRY(Parser(text).parse()));
  }
  return out;
}

bool Filter::match(const FieldLookup& lookup) const {
  if (any_of_.empty() || match_all_) {
    return true;
  }
  for (const auto& all_of : any_of_) {
    bool all = true;
    for (const auto& selector : all_of) {
      if (!matches(selector, lookup)) {
        all = false;
        break;
      }
    }
    if (all) {
      return true;
    }
  }
  return false;
}

}  // namespace coffer::runtime::snapshotter
