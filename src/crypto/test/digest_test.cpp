#include "crypto/digest.h"

#include <gtest/gtest.h>

namespace coffer::crypto {
namespace {

// FIPS 180-2 "abc" vectors and RFC 4231 test case 2.
TEST(Digest, KnownVectors) {
  EXPECT_EQ(hex_encode(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex_encode(sha384(as_bytes("abc"))),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
            "8086072ba1e7cc2358baeca134c825a7");
  Hasher h(DigestAlg::kSha256);
  h.update(as_bytes("a"));
  h.update(as_bytes("bc"));
  EXPECT_EQ(h.finish(), sha256(as_bytes("abc")));
}

TEST(Hmac, Rfc4231Case2) {
  EXPECT_EQ(hex_encode(hmac(DigestAlg::kSha256, as_bytes("Jefe"),
                            as_bytes("what do ya want for nothing?"))),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace coffer::crypto
