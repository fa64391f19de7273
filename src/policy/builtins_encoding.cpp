// Encodings and digests: json.*, base64*, hex.*, crypto.sha*.
#include "core/bytes.h"
#include "crypto/digest.h"
#include "policy/builtins.h"

namespace coffer::policy {

namespace {

using Args = std::span<const Value>;

Status need_string(std::string_view fn, const Value& v) {
  if (!v.is(Value::Type::kString)) return operand_error(fn, 1, "a string", v);
  return ok();
}

Result<Value> json_marshal(BuiltinContext& ctx, Args a) {
  std::string s = a[0].to_json_string();
  COFFER_TRY_STATUS(check_output_size("json.marshal", s.size(), ctx));
  return Value::string(std::move(s));
}

Result<Value> json_unmarshal(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_string("json.unmarshal", a[0]));
  JsonLimits limits{ctx.limits->max_output_bytes, ctx.limits->max_depth};
  auto j = parse_json(a[0].as_string(), limits);
  if (!j) return builtin_error("json.unmarshal", j.error().message);
  return Value::from_owned_json(std::move(*j));
}

Result<Value> decoded_string(std::string_view fn, Result<Bytes> bytes) {
  if (!bytes) return builtin_error(fn, bytes.error().message);
  return Value::string(to_string(*bytes));
}

Result<Value> b64_encode(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_string("base64.encode", a[0]));
  COFFER_TRY_STATUS(check_output_size("base64.encode", a[0].as_string().size() / 3 * 4, ctx));
  return Value::string(base64_encode(as_bytes(a[0].as_string())));
}
Result<Value> b64_decode(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_string("base64.decode", a[0]));
  return decoded_string("base64.decode", base64_decode(a[0].as_string()));
}
Result<Value> b64url_encode(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_string("base64url.encode", a[0]));
  COFFER_TRY_STATUS(check_output_size("base64url.encode", a[0].as_string().size() / 3 * 4, ctx));
  std::string s = base64url_encode(as_bytes(a[0].as_string()));
  while (s.size() % 4 != 0) s += '=';  // OPA's base64url.encode pads
  return Value::string(std::move(s));
}
Result<Value> b64url_encode_no_pad(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_string("base64url.encode_no_pad", a[0]));
  COFFER_TRY_STATUS(
      check_output_size("base64url.encode_no_pad", a[0].as_string().size() / 3 * 4, ctx));
  return Value::string(base64url_encode(as_bytes(a[0].as_string())));
}
Result<Value> b64url_decode(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_string("base64url.decode", a[0]));
  return decoded_string("base64url.decode", base64url_decode(a[0].as_string()));
}
Result<Value> hex_enc(BuiltinContext& ctx, Args a) {
  COFFER_TRY_STATUS(need_string("hex.encode", a[0]));
  COFFER_TRY_STATUS(check_output_size("hex.encode", a[0].as_string().size() * 2, ctx));
  return Value::string(hex_encode(as_bytes(a[0].as_string())));
}
Result<Value> hex_dec(BuiltinContext&, Args a) {
  COFFER_TRY_STATUS(need_string("hex.decode", a[0]));
  return decoded_string("hex.decode", hex_decode(a[0].as_string()));
}

Result<Value> digest(std::string_view fn, const Value& v, crypto::DigestAlg alg) {
  COFFER_TRY_STATUS(need_string(fn, v));
  return Value::string(hex_encode(crypto::digest(alg, as_bytes(v.as_string()))));
}
Result<Value> sha256(BuiltinContext&, Args a) {
  return digest("crypto.sha256", a[0], crypto::DigestAlg::kSha256);
}
Result<Value> sha384(BuiltinContext&, Args a) {
  return digest("crypto.sha384", a[0], crypto::DigestAlg::kSha384);
}
Result<Value> sha512(BuiltinContext&, Args a) {
  return digest("crypto.sha512", a[0], crypto::DigestAlg::kSha512);
}

}  // namespace

void add_encoding_builtins(std::vector<BuiltinDef>& out) {
  out.push_back({"json.marshal", 1, json_marshal, {kTAny}});
  out.push_back({"json.unmarshal", 1, json_unmarshal, {kTStr}});
  out.push_back({"base64.encode", 1, b64_encode, {kTStr}});
  out.push_back({"base64.decode", 1, b64_decode, {kTStr}});
  out.push_back({"base64url.encode", 1, b64url_encode, {kTStr}});
  out.push_back({"base64url.encode_no_pad", 1, b64url_encode_no_pad, {kTStr}});
  out.push_back({"base64url.decode", 1, b64url_decode, {kTStr}});
  out.push_back({"hex.encode", 1, hex_enc, {kTStr}});
  out.push_back({"hex.decode", 1, hex_dec, {kTStr}});
  out.push_back({"crypto.sha256", 1, sha256, {kTStr}});
  out.push_back({"crypto.sha384", 1, sha384, {kTStr}});
  out.push_back({"crypto.sha512", 1, sha512, {kTStr}});
}

}  // namespace coffer::policy
