#include "jose/concat_kdf.h"

#include <cstdint>

#include "crypto/digest.h"

namespace coffer::jose {
namespace {

void put_be32(crypto::Hasher& h, std::uint32_t v) {
  const std::uint8_t b[4] = {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                             static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)};
  h.update(ByteView(b, 4));
}

void put_prefixed(crypto::Hasher& h, ByteView data) {
  put_be32(h, static_cast<std::uint32_t>(data.size()));
  h.update(data);
}

}  // namespace

Bytes concat_kdf_sha256(ByteView z, std::size_t key_bits, std::string_view algorithm_id,
                        ByteView apu, ByteView apv) {
  const std::size_t key_bytes = key_bits / 8;
  Bytes out;
  out.reserve(key_bytes + 32);
  for (std::uint32_t counter = 1; out.size() < key_bytes; ++counter) {
    crypto::Hasher h(crypto::DigestAlg::kSha256);
    put_be32(h, counter);
    h.update(z);
    put_prefixed(h, as_bytes(algorithm_id));
    put_prefixed(h, apu);
    put_prefixed(h, apv);
    put_be32(h, static_cast<std::uint32_t>(key_bits));
    Bytes block = h.finish();
    out.insert(out.end(), block.begin(), block.end());
  }
  out.resize(key_bytes);
  return out;
}

}  // namespace coffer::jose
