// Cryptographically secure randomness (OpenSSL's DRBG).
#pragma once

#include <string>

#include "core/bytes.h"

namespace coffer::crypto {

Bytes random_bytes(std::size_t n);
// 128 random bits as 32 lower-case hex digits (a UUIDv4 without dashes, version bits set).
std::string random_uuid_hex();

}  // namespace coffer::crypto
