// Streaming layer decompression: gzip (isa-l's inflate, several times faster than zlib's),
// zstd, or none; a truncated or corrupt stream fails instead of ending early.
#pragma once

#include <memory>

#include "oci/io.h"
#include "oci/manifest.h"

namespace coffer::oci::unpack {

// The returned reader pulls from `compressed`, which must outlive it. Errors:
// "corrupt_layer" (bad data, checksum), "truncated_layer" (stream ends inside a frame).
std::unique_ptr<Reader> decompress_reader(Compression compression, Reader& compressed);

}  // namespace coffer::oci::unpack
