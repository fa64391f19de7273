#include "jose/concat_kdf.h"

#include <gtest/gtest.h>

namespace coffer::jose {
namespace {

// RFC 7518 Appendix C: the shared secret Z of the ECDH-ES example.
const Bytes kZ = {158, 86, 217, 29,  129, 113, 53,  211, 114, 131, 66,  131, 191, 132, 38,  156,
                  251, 49, 110, 163, 218, 128, 106, 72,  246, 218, 167, 121, 140, 254, 144, 196};

TEST(ConcatKdfTest, Rfc7518AppendixC) {
  Bytes key = concat_kdf_sha256(kZ, 128, "A128GCM", as_bytes("Alice"), as_bytes("Bob"));
  EXPECT_EQ(base64url_encode(key), "VqqN6vgjbSBcIijNcacQGg");
}

TEST(ConcatKdfTest, EcdhEsA256kwMatchesPythonCryptography) {
  // Computed with python3-cryptography's ConcatKDFHash (an independent implementation).
  Bytes key = concat_kdf_sha256(kZ, 256, "ECDH-ES+A256KW", {}, {});
  EXPECT_EQ(hex_encode(key), "89ab838633757805bd678cb164f2427776824e8f784152f23747096449921f46");
}

TEST(ConcatKdfTest, MultiBlockOutput) {
  Bytes key = concat_kdf_sha256(kZ, 512, "X", {}, {});
  EXPECT_EQ(key.size(), 64u);
  EXPECT_NE(Bytes(key.begin(), key.begin() + 32), Bytes(key.begin() + 32, key.end()));
}

}  // namespace
}  // namespace coffer::jose
