#include "core/bytes.h"

#include <gtest/gtest.h>

namespace coffer {
namespace {

TEST(Utf8, AcceptsWellFormedAndRefusesTheRest) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92"));
  EXPECT_FALSE(is_valid_utf8("\xff"));              // never a lead byte
  EXPECT_FALSE(is_valid_utf8("\x80"));              // lone continuation
  EXPECT_FALSE(is_valid_utf8("a\xe2\x82"));         // cut at a byte limit
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST(Utf8, PrintableExcerptIsAsciiAndBounded) {
  EXPECT_EQ(printable_excerpt("ok"), "ok");
  EXPECT_EQ(printable_excerpt("a\nb\xff\\"), "a\\x0ab\\xff\\x5c");
  EXPECT_EQ(printable_excerpt(std::string(100, 'x'), 4), "xxxx...");
}

TEST(Hex, RoundTrip) {
  Bytes b{0x00, 0x01, 0xab, 0xff};
  EXPECT_EQ(hex_encode(b), "0001abff");
  EXPECT_EQ(*hex_decode("0001ABff"), b);
}

TEST(Hex, RejectsOddAndNonHex) {
  EXPECT_EQ(hex_decode("abc").error().code, "bad_hex");
  EXPECT_EQ(hex_decode("zz").error().code, "bad_hex");
}

// RFC 4648 section 10 test vectors.
TEST(Base64, Rfc4648Vectors) {
  const std::pair<const char*, const char*> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (auto [plain, enc] : vectors) {
    EXPECT_EQ(base64_encode(as_bytes(plain)), enc);
    EXPECT_EQ(to_string(*base64_decode(enc)), plain);
  }
}

TEST(Base64, RejectsBadInput) {
  EXPECT_EQ(base64_decode("Zg=").error().code, "bad_base64");   // wrong padding length
  EXPECT_EQ(base64_decode("Z!==").error().code, "bad_base64");  // bad character
  EXPECT_EQ(base64_decode("Zh==").error().code, "bad_base64");  // non-canonical trailing bits
  EXPECT_EQ(base64_decode("Zm9v-_==").error().code, "bad_base64");
}

TEST(Base64Url, NoPaddingAndUrlAlphabet) {
  Bytes b{0xfb, 0xff, 0xfe};
  EXPECT_EQ(base64url_encode(b), "-__-");
  EXPECT_EQ(base64url_encode(as_bytes("f")), "Zg");
  EXPECT_EQ(to_string(*base64url_decode("Zg")), "f");
  EXPECT_EQ(to_string(*base64url_decode("Zg==")), "f");
  EXPECT_EQ(base64url_decode("Z+==").error().code, "bad_base64");
  EXPECT_EQ(base64url_decode("Z").error().code, "bad_base64");
}

TEST(ConstantTime, Equality) {
  EXPECT_TRUE(constant_time_equal(std::string_view("abc"), std::string_view("abc")));
  EXPECT_FALSE(constant_time_equal(std::string_view("abc"), std::string_view("abd")));
  EXPECT_FALSE(constant_time_equal(std::string_view("abc"), std::string_view("ab")));
}

TEST(LittleEndian, LoadStore) {
  std::uint8_t buf[8];
  store_le64(buf, 0x0102030405060708ULL);
  EXPECT_EQ(buf[0], 0x08);
  EXPECT_EQ(load_le64(buf), 0x0102030405060708ULL);
  EXPECT_EQ(load_le32(buf), 0x05060708U);
  EXPECT_EQ(load_le16(buf), 0x0708);
}

}  // namespace
}  // namespace coffer
