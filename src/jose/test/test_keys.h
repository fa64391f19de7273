// Keys shared by the jose tests, generated once per process (RSA generation is slow).
#pragma once

#include <map>

#include "crypto/pkey.h"

namespace coffer::jose::test {

inline const crypto::Key& test_key(crypto::KeyType type) {
  static std::map<crypto::KeyType, crypto::Key>* keys =
      new std::map<crypto::KeyType, crypto::Key>();
  auto it = keys->find(type);
  if (it == keys->end()) {
    auto k = crypto::Key::generate(type, 2048);
    if (!k) std::abort();
    it = keys->emplace(type, std::move(*k)).first;
  }
  return it->second;
}

}  // namespace coffer::jose::test
