#include "runtime/efs/filesystem.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <list>

#include <openssl/evp.h>

#include "crypto/cipher.h"
#include "crypto/digest.h"
#include "crypto/kdf.h"
#include "crypto/ossl.h"
#include "crypto/random.h"

namespace coffer::runtime::efs {

namespace fs = std::filesystem;

// The in-memory tree. Everything here was authenticated when it was loaded (or created by us);
// file contents stay on the host and are checked block by block against `tags`.
struct Filesystem::Node {
  Kind kind = Kind::kFile;
  ObjectId id{};
  Hash hash{};  // dir: SHA-256 of its object; file: file_hash(); symlink: zero
  std::uint32_t mode = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::int64_t mtime_ns = 0;
  std::uint64_t size = 0;
  std::string target;
  Node* parent = nullptr;
  // directories
  bool loaded = false;
  std::map<std::string, std::unique_ptr<Node>, std::less<>> children;
  // files
  bool tags_loaded = false;
  std::vector<Tag> tags;
  bool dirty = false;  // dir: object to rewrite; file: hash to recompute

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  ~Node() = default;
};

namespace {

constexpr std::size_t kSuperblockSize = 168;
constexpr std::size_t kSuperblockMacOffset = 136;
constexpr std::array<std::uint8_t, 8> kMagic = {'c', 'o', 'f', 'f', 'e', 'f', 's', '1'};
constexpr std::size_t kMaxDirObject = 64 * 1024 * 1024;
constexpr int kMaxDepth = 1024;
constexpr std::size_t kMaxOpenObjects = 64;  // descriptors of file objects kept open
constexpr std::string_view kDirAad = "coffer-efs dir v1";
constexpr std::string_view kBlockAad = "coffer-efs block v1";
constexpr std::string_view kFileHash = "coffer-efs file v1";

std::unexpected<Error> err(std::string_view code, std::string message) {
  return make_error(std::string(code), std::move(message));
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void put_u8(Bytes& b, std::uint8_t v) { b.push_back(v); }
void put_u16(Bytes& b, std::uint16_t v) {
  b.resize(b.size() + 2);
  store_le16(b.data() + b.size() - 2, v);
}
void put_u32(Bytes& b, std::uint32_t v) {
  b.resize(b.size() + 4);
  store_le32(b.data() + b.size() - 4, v);
}
void put_u64(Bytes& b, std::uint64_t v) {
  b.resize(b.size() + 8);
  store_le64(b.data() + b.size() - 8, v);
}
void put(Bytes& b, ByteView v) { b.insert(b.end(), v.begin(), v.end()); }

// Bounds-checked reader over authenticated bytes (still parsed defensively).
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}
  bool take(std::size_t n, ByteView& out) {
    if (data_.size() - pos_ < n) return false;
    out = data_.subspan(pos_, n);
    pos_ += n;
    return true;
  }
  bool u8(std::uint8_t& v) {
    ByteView b;
    if (!take(1, b)) return false;
    v = b[0];
    return true;
  }
  bool u16(std::uint16_t& v) {
    ByteView b;
    if (!take(2, b)) return false;
    v = load_le16(b.data());
    return true;
  }
  bool u32(std::uint32_t& v) {
    ByteView b;
    if (!take(4, b)) return false;
    v = load_le32(b.data());
    return true;
  }
  bool u64(std::uint64_t& v) {
    ByteView b;
    if (!take(8, b)) return false;
    v = load_le64(b.data());
    return true;
  }
  template <std::size_t N>
  bool array(std::array<std::uint8_t, N>& out) {
    ByteView b;
    if (!take(N, b)) return false;
    std::copy(b.begin(), b.end(), out.begin());
    return true;
  }
  [[nodiscard]] bool done() const { return pos_ == data_.size(); }

 private:
  ByteView data_;
  std::size_t pos_ = 0;
};

bool valid_name(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

Status check_name(std::string_view name) {
  if (name.size() > kMaxNameLength) return err(kNameTooLong, "name longer than 255 bytes");
  if (!valid_name(name)) return err(kInvalid, "invalid file name");
  return ok();
}

std::string id_hex(const ObjectId& id) { return hex_encode(id); }

bool is_pow2_block(std::uint32_t b) { return b >= 4096 && b <= (1U << 20) && (b & (b - 1)) == 0; }

// Writes `data` to `path` through a temporary file and rename: the object is replaced whole.
Status replace_file(const fs::path& path, ByteView data, bool durable = false) {
  fs::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return err(kIo, "cannot write " + tmp.filename().string() + ": " + strerror(errno));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      return err(kIo, "cannot write " + tmp.filename().string());
    }
    off += static_cast<std::size_t>(n);
  }
  if ((durable && ::fsync(fd) != 0) || ::close(fd) != 0 || ::rename(tmp.c_str(), path.c_str()) != 0)
    return err(kIo, "cannot replace " + path.filename().string() + ": " + strerror(errno));
  return ok();
}

Result<Bytes> read_whole(const fs::path& path, std::size_t max, std::string_view what) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return err(kIntegrity, std::string(what) + " is missing on the host");
    return err(kIo, "cannot open " + std::string(what) + ": " + strerror(errno));
  }
  Bytes out;
  std::uint8_t buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return err(kIo, "cannot read " + std::string(what));
    }
    if (n == 0) break;
    if (out.size() + static_cast<std::size_t>(n) > max) {
      ::close(fd);
      return err(kIntegrity, std::string(what) + " is larger than any object we write");
    }
    out.insert(out.end(), buf, buf + n);
  }
  ::close(fd);
  return out;
}

Status pread_exact(int fd, std::uint8_t* buf, std::size_t n, std::uint64_t off) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return err(kIo, std::string("read failed: ") + strerror(errno));
    if (r == 0) return err(kIntegrity, "file object is shorter than its authenticated size");
    done += static_cast<std::size_t>(r);
  }
  return ok();
}

Status pwrite_all(int fd, const std::uint8_t* buf, std::size_t n, std::uint64_t off) {
  std::size_t done = 0;
  while (done < n) {
    ssize_t r = ::pwrite(fd, buf + done, n - done, static_cast<off_t>(off + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return err(kIo, std::string("write failed: ") + strerror(errno));
    done += static_cast<std::size_t>(r);
  }
  return ok();
}

// AES-256-GCM for file blocks with the key schedule done once: each block only sets a new IV,
// and decrypts straight into the caller's buffer (crypto::aes_gcm_* set the key up and allocate
// per call).
class BlockCipher {
 public:
  BlockCipher() = default;
  Status init(ByteView key) {
    enc_.reset(EVP_CIPHER_CTX_new());
    dec_.reset(EVP_CIPHER_CTX_new());
    if (!enc_ || !dec_ ||
        EVP_EncryptInit_ex(enc_.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1 ||
        EVP_DecryptInit_ex(dec_.get(), EVP_aes_256_gcm(), nullptr, key.data(), nullptr) != 1)
      return crypto::ossl::error("crypto_error", "AES-GCM setup failed");
    return ok();
  }
  // out: len bytes of ciphertext, then the 16-byte tag.
  Status seal(const std::uint8_t* iv, ByteView plain, ByteView aad, std::uint8_t* out) {
    EVP_CIPHER_CTX* c = enc_.get();
    int n = 0;
    if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, iv) != 1 ||
        EVP_EncryptUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) != 1 ||
        EVP_EncryptUpdate(c, out, &n, plain.data(), static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(c, out + plain.size(), &n) != 1 ||
        EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTagSize),
                            out + plain.size()) != 1)
      return crypto::ossl::error("crypto_error", "AES-GCM encryption failed");
    return ok();
  }
  // Writes the plaintext to `out` only if the tag verifies (false otherwise); `out` must not be
  // trusted by the caller before this returns true.
  bool open(const std::uint8_t* iv, ByteView ct, const std::uint8_t* tag, ByteView aad,
            std::uint8_t* out) {
    EVP_CIPHER_CTX* c = dec_.get();
    int n = 0;
    Tag t{};
    std::copy_n(tag, kTagSize, t.begin());
    return EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, iv) == 1 &&
           EVP_DecryptUpdate(c, nullptr, &n, aad.data(), static_cast<int>(aad.size())) == 1 &&
           EVP_DecryptUpdate(c, out, &n, ct.data(), static_cast<int>(ct.size())) == 1 &&
           EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTagSize), t.data()) ==
               1 &&
           EVP_DecryptFinal_ex(c, out + ct.size(), &n) == 1;
  }

 private:
  crypto::ossl::CipherCtxPtr enc_;
  crypto::ossl::CipherCtxPtr dec_;
};

}  // namespace

int errno_for(const Error& e) {
  static const std::map<std::string, int, std::less<>> kMap = {
      {std::string(kNotFound), ENOENT},          {std::string(kExists), EEXIST},
      {std::string(kNotDir), ENOTDIR},           {std::string(kIsDir), EISDIR},
      {std::string(kNotEmpty), ENOTEMPTY},       {std::string(kInvalid), EINVAL},
      {std::string(kNameTooLong), ENAMETOOLONG}, {std::string(kUnsupported), EPERM},
  };
  auto it = kMap.find(e.code);
  return it == kMap.end() ? EIO : it->second;
}

struct Filesystem::State {
  fs::path dir;
  fs::path objects;
  Bytes content_key;
  Bytes dir_key;
  Bytes sb_key;
  Bytes check_value;
  ObjectId fs_id{};
  std::uint32_t block_size = kDefaultBlockSize;
  std::uint64_t generation = 0;
  std::unique_ptr<Node> root;
  bool dirty = false;
  std::vector<ObjectId> doomed;  // objects to delete after the next superblock write
  BlockCipher blocks;
  std::list<std::pair<ObjectId, int>> fds;  // open file objects, most recently used first
  bool durable = false;                     // during a durable commit: fsync what is written
  std::uint64_t serial = next_serial();     // tells filesystems apart in thread-local caches
  Bytes scratch;  // one sealed block (nonce, ciphertext, tag), or a chunk of the tag scan

  State() = default;
  State(const State&) = delete;
  State& operator=(const State&) = delete;
  ~State() {
    for (auto& [id, fd] : fds) ::close(fd);
    crypto::cleanse(content_key);
    crypto::cleanse(dir_key);
    crypto::cleanse(sb_key);
  }

  static std::uint64_t next_serial() {
    static std::atomic<std::uint64_t> counter{0};
    return ++counter;
  }

  [[nodiscard]] fs::path object_path(const ObjectId& id) const { return objects / id_hex(id); }
  [[nodiscard]] std::uint64_t slot() const { return block_size + kNonceSize + kTagSize; }
  // load_tags reads the object in chunks of about this many bytes
  static constexpr std::uint64_t kTagScanChunk = 1U << 20;
  [[nodiscard]] std::uint64_t blocks_for(std::uint64_t size) const {
    return (size + block_size - 1) / block_size;
  }
  [[nodiscard]] std::uint64_t blob_size(std::uint64_t size) const {
    return size + (blocks_for(size) * (kNonceSize + kTagSize));
  }
  [[nodiscard]] std::size_t block_len(const Node& n, std::uint64_t i) const {
    return static_cast<std::size_t>(std::min<std::uint64_t>(block_size, n.size - (i * block_size)));
  }

  // ---- keys and superblock ----
  Status derive(ByteView key) {
    // RFC 5869 HKDF-SHA256, one 32-byte key per purpose, the filesystem id as salt
    const auto derive_one = [&](std::string_view info) {
      return crypto::hkdf_sha256(key, fs_id, as_bytes(info), 32);
    };
    content_key = COFFER_TRY(derive_one("coffer-efs v1 contents"));
    dir_key = COFFER_TRY(derive_one("coffer-efs v1 directories"));
    sb_key = COFFER_TRY(derive_one("coffer-efs v1 superblock"));
    Bytes check_key = COFFER_TRY(derive_one("coffer-efs v1 key check"));
    check_value =
        crypto::hmac(crypto::DigestAlg::kSha256, check_key, as_bytes("coffer-efs key check"));
    crypto::cleanse(check_key);
    return blocks.init(content_key);
  }

  [[nodiscard]] Bytes superblock() const {
    Bytes b;
    put(b, kMagic);
    put_u32(b, block_size);
    put(b, fs_id);
    put(b, check_value);
    put_u64(b, generation);
    put_u32(b, root->mode);
    put_u32(b, root->uid);
    put_u32(b, root->gid);
    put_u64(b, static_cast<std::uint64_t>(root->mtime_ns));
    put(b, root->id);
    put(b, root->hash);
    put(b, crypto::hmac(crypto::DigestAlg::kSha256, sb_key, b));
    return b;
  }

  // ---- directories ----
  [[nodiscard]] Bytes dir_aad(const ObjectId& id) const {
    Bytes aad = to_bytes(kDirAad);
    put(aad, id);
    return aad;
  }

  static Bytes serialize_entries(const Node& dir) {
    Bytes b;
    put_u32(b, static_cast<std::uint32_t>(dir.children.size()));
    for (const auto& [name, child] : dir.children) {
      put_u8(b, static_cast<std::uint8_t>(child->kind));
      put_u16(b, static_cast<std::uint16_t>(name.size()));
      put(b, as_bytes(name));
      put_u32(b, child->mode);
      put_u32(b, child->uid);
      put_u32(b, child->gid);
      put_u64(b, static_cast<std::uint64_t>(child->mtime_ns));
      put_u64(b, child->size);
      put(b, child->id);
      put(b, child->hash);
      put_u16(b, static_cast<std::uint16_t>(child->target.size()));
      put(b, as_bytes(child->target));
    }
    return b;
  }

  static Status parse_entries(ByteView plain, Node& dir) {
    Reader r(plain);
    std::uint32_t count = 0;
    if (!r.u32(count)) return err(kIntegrity, "directory object is malformed");
    for (std::uint32_t i = 0; i < count; ++i) {
      auto node = std::make_unique<Node>();
      std::uint8_t kind = 0;
      std::uint16_t name_len = 0;
      std::uint16_t target_len = 0;
      ByteView name;
      ByteView target;
      std::uint64_t mtime = 0;
      if (!r.u8(kind) || !r.u16(name_len) || !r.take(name_len, name) || !r.u32(node->mode) ||
          !r.u32(node->uid) || !r.u32(node->gid) || !r.u64(mtime) || !r.u64(node->size) ||
          !r.array(node->id) || !r.array(node->hash) || !r.u16(target_len) ||
          !r.take(target_len, target)) {
        return err(kIntegrity, "directory object is malformed");
      }
      node->kind = static_cast<Kind>(kind);
      node->mtime_ns = static_cast<std::int64_t>(mtime);
      node->target = to_string(target);
      std::string n = to_string(name);
      bool kind_ok = kind >= 1 && kind <= 3;
      bool target_ok = node->kind == Kind::kSymlink
                           ? !node->target.empty() && node->target.size() <= kMaxSymlinkLength &&
                                 node->size == node->target.size()
                           : node->target.empty();
      if (!kind_ok || !target_ok || !valid_name(n) || n.size() > kMaxNameLength ||
          node->mode > 07777 || (node->kind == Kind::kDir && node->size != 0)) {
        return err(kIntegrity, "directory object holds an invalid entry");
      }
      node->parent = &dir;
      if (!dir.children.emplace(std::move(n), std::move(node)).second)
        return err(kIntegrity, "directory object holds a name twice");
    }
    if (!r.done()) return err(kIntegrity, "directory object has trailing bytes");
    return ok();
  }

  Status load_dir(Node& dir) {
    if (dir.loaded) return ok();
    Bytes blob = COFFER_TRY(read_whole(object_path(dir.id), kMaxDirObject, "a directory object"));
    // The hash comes from the authenticated parent: check it before decrypting anything.
    Bytes h = crypto::sha256(blob);
    if (!constant_time_equal(h, dir.hash))
      return err(kIntegrity, "directory object " + id_hex(dir.id) + " does not match its hash");
    if (blob.size() < kNonceSize + kTagSize)
      return err(kIntegrity, "directory object is truncated");
    ByteView all(blob);
    auto plain =
        crypto::aes_gcm_decrypt(dir_key, all.first(kNonceSize),
                                all.subspan(kNonceSize, blob.size() - kNonceSize - kTagSize),
                                all.last(kTagSize), dir_aad(dir.id));
    if (!plain) return err(kIntegrity, "directory object does not decrypt");
    COFFER_TRY_STATUS(parse_entries(*plain, dir));
    dir.loaded = true;
    return ok();
  }

  Status write_dir(Node& dir) {
    Bytes plain = serialize_entries(dir);
    Bytes nonce = crypto::random_bytes(kNonceSize);
    auto sealed = COFFER_TRY(crypto::aes_gcm_encrypt(dir_key, nonce, plain, dir_aad(dir.id)));
    Bytes blob = nonce;
    put(blob, sealed.ciphertext);
    put(blob, sealed.tag);
    COFFER_TRY_STATUS(replace_file(object_path(dir.id), blob, durable));
    Bytes h = crypto::sha256(blob);
    std::copy(h.begin(), h.end(), dir.hash.begin());
    return ok();
  }

  // ---- files ----
  [[nodiscard]] Hash file_hash(const Node& f) const {
    crypto::Hasher hasher(crypto::DigestAlg::kSha256);
    hasher.update(as_bytes(kFileHash));
    hasher.update(f.id);
    Bytes v;
    put_u64(v, f.size);
    put_u32(v, block_size);
    hasher.update(v);
    for (const Tag& t : f.tags) hasher.update(t);
    Bytes h = hasher.finish();
    Hash out{};
    std::copy(h.begin(), h.end(), out.begin());
    return out;
  }

  // The descriptor of a file object, from a small cache (a rootfs has more files than the
  // descriptor limit allows to keep open).
  Result<int> fd_of(const Node& f, bool create = false) {
    for (auto it = fds.begin(); it != fds.end(); ++it) {
      if (it->first == f.id) {
        fds.splice(fds.begin(), fds, it);
        return it->second;
      }
    }
    int flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_EXCL : 0);
    int fd = ::open(object_path(f.id).c_str(), flags, 0600);
    if (fd < 0 && !create && errno == EACCES)
      fd = ::open(object_path(f.id).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
      if (errno == ENOENT) return err(kIntegrity, "file object is missing on the host");
      return err(kIo, std::string("cannot open a file object: ") + strerror(errno));
    }
    if (fds.size() >= kMaxOpenObjects) {
      ::close(fds.back().second);
      fds.pop_back();
    }
    fds.emplace_front(f.id, fd);
    return fd;
  }

  void close_fd(const ObjectId& id) {
    for (auto it = fds.begin(); it != fds.end(); ++it) {
      if (it->first == id) {
        ::close(it->second);
        fds.erase(it);
        return;
      }
    }
  }

  // Reads the block table (each block's GCM tag) and checks it against the file's hash.
  Status load_tags(Node& f) {
    if (f.tags_loaded) return ok();
    int fd = COFFER_TRY(fd_of(f));
    struct stat st {};
    if (::fstat(fd, &st) != 0) return err(kIo, "cannot stat a file object");
    if (static_cast<std::uint64_t>(st.st_size) != blob_size(f.size))
      return err(kIntegrity, "file object " + id_hex(f.id) + " has the wrong size");
    std::uint64_t n = blocks_for(f.size);
    f.tags.assign(n, Tag{});
    // The tags sit at the end of every block, so the scan touches the whole object: it reads it
    // in large sequential chunks (a cold host cache then streams it from the disk once, and the
    // block reads that follow find it cached) rather than one small synchronous read per block.
    // Only the copied tags are used: the file hash below authenticates exactly those bytes.
    const std::uint64_t per_chunk = std::max<std::uint64_t>(1, kTagScanChunk / slot());
    for (std::uint64_t first = 0; first < n; first += per_chunk) {
      const std::uint64_t last = std::min(n, first + per_chunk);  // exclusive
      const std::uint64_t begin = first * slot();
      const std::uint64_t end =
          ((last - 1) * slot()) + kNonceSize + block_len(f, last - 1) + kTagSize;
      scratch.resize(static_cast<std::size_t>(end - begin));
      COFFER_TRY_STATUS(pread_exact(fd, scratch.data(), scratch.size(), begin));
      for (std::uint64_t i = first; i < last; ++i) {
        const std::uint64_t at = ((i - first) * slot()) + kNonceSize + block_len(f, i);
        std::copy_n(scratch.begin() + static_cast<std::ptrdiff_t>(at), kTagSize, f.tags[i].begin());
      }
    }
    Hash h = file_hash(f);
    if (!constant_time_equal(h, f.hash)) {
      f.tags.clear();
      return err(kIntegrity, "file object " + id_hex(f.id) + " does not match its hash");
    }
    f.tags_loaded = true;
    return ok();
  }

  [[nodiscard]] Bytes block_aad(const Node& f, std::uint64_t i) const {
    Bytes aad = to_bytes(kBlockAad);
    put(aad, f.id);
    put_u64(aad, i);
    return aad;
  }

  // Decrypts block i into out (block_len bytes); nothing there is valid unless this succeeds.
  // Decrypts block i into out (block_len bytes); nothing there is valid unless this succeeds.
  // Touches only `fd`, `cipher` and `buf` besides immutable state, so concurrent callers with their
  // own cipher and buffer are safe.
  Status decrypt_block(const Node& f, std::uint64_t i, int fd, BlockCipher& cipher, Bytes& buf,
                       std::uint8_t* out) const {
    std::size_t len = block_len(f, i);
    buf.resize(len + kNonceSize + kTagSize);
    COFFER_TRY_STATUS(pread_exact(fd, buf.data(), buf.size(), i * slot()));
    ByteView all(buf);
    if (!constant_time_equal(all.last(kTagSize), f.tags[i]))
      return err(kIntegrity, "block " + std::to_string(i) + " of file object " + id_hex(f.id) +
                                 " was replaced");
    if (!cipher.open(buf.data(), all.subspan(kNonceSize, len), all.last(kTagSize).data(),
                     block_aad(f, i), out)) {
      std::memset(out, 0, len);  // unauthenticated output is not left behind
      return err(kIntegrity,
                 "block " + std::to_string(i) + " of file object " + id_hex(f.id) + " is corrupt");
    }
    return ok();
  }

  // Reads [offset, offset + out.size()) clamped to the file; the file's block table is loaded.
  Result<std::size_t> read_range(const Node& n, std::uint64_t offset, std::span<std::uint8_t> out,
                                 int fd, BlockCipher& cipher, Bytes& buf) const {
    if (offset >= n.size) return 0;
    std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), n.size - offset));
    std::size_t done = 0;
    const std::uint64_t bs = block_size;
    Bytes partial;
    while (done < want) {
      std::uint64_t pos = offset + done;
      std::uint64_t i = pos / bs;
      std::size_t in_block = static_cast<std::size_t>(pos - (i * bs));
      std::size_t len = block_len(n, i);
      std::size_t take = std::min(want - done, len - in_block);
      if (in_block == 0 && take == len) {
        // a whole block: decrypt in place; on failure the caller gets the error, never `out`
        COFFER_TRY_STATUS(decrypt_block(n, i, fd, cipher, buf, out.data() + done));
      } else {
        partial.resize(len);
        COFFER_TRY_STATUS(decrypt_block(n, i, fd, cipher, buf, partial.data()));
        std::memcpy(out.data() + done, partial.data() + in_block, take);
      }
      done += take;
    }
    return done;
  }

  Status read_block_into(Node& f, std::uint64_t i, std::uint8_t* out) {
    int fd = COFFER_TRY(fd_of(f));
    return decrypt_block(f, i, fd, blocks, scratch, out);
  }

  Result<Bytes> read_block(Node& f, std::uint64_t i) {
    Bytes plain(block_len(f, i));
    COFFER_TRY_STATUS(read_block_into(f, i, plain.data()));
    return plain;
  }

  Status write_block(Node& f, std::uint64_t i, ByteView plain) {
    scratch.resize(plain.size() + kNonceSize + kTagSize);
    Bytes nonce = crypto::random_bytes(kNonceSize);
    std::copy(nonce.begin(), nonce.end(), scratch.begin());
    COFFER_TRY_STATUS(
        blocks.seal(scratch.data(), plain, block_aad(f, i), scratch.data() + kNonceSize));
    int fd = COFFER_TRY(fd_of(f));
    COFFER_TRY_STATUS(pwrite_all(fd, scratch.data(), scratch.size(), i * slot()));
    if (i >= f.tags.size()) f.tags.resize(i + 1);
    std::copy_n(scratch.end() - kTagSize, kTagSize, f.tags[i].begin());
    return ok();
  }

  // ---- tree ----
  void mark_dirty(Node* n) {
    for (; n != nullptr; n = n->parent) n->dirty = true;
    dirty = true;
  }
  // A node's attributes live in its parent's entry (the root's in the superblock).
  void mark_meta_dirty(Node* n) {
    if (n->parent != nullptr) mark_dirty(n->parent);
    dirty = true;
  }

  // may_load false: touch nothing (concurrent readers); a directory not loaded yet is
  // efs_not_loaded.
  Result<Node*> resolve(std::string_view path, bool may_load = true) {
    if (path.empty() || path.front() != '/') return err(kInvalid, "path must be absolute");
    Node* cur = root.get();
    std::size_t pos = 0;
    while (pos < path.size()) {
      std::size_t next = path.find('/', pos);
      if (next == std::string_view::npos) next = path.size();
      std::string_view comp = path.substr(pos, next - pos);
      pos = next + 1;
      if (comp.empty()) continue;
      if (comp == "." || comp == "..") return err(kInvalid, "path holds . or ..");
      if (cur->kind != Kind::kDir) return err(kNotDir, "not a directory");
      if (!cur->loaded && !may_load) return err(kNotLoaded, "directory not loaded yet");
      COFFER_TRY_STATUS(load_dir(*cur));
      auto it = cur->children.find(comp);
      if (it == cur->children.end()) return err(kNotFound, "no such file or directory");
      cur = it->second.get();
    }
    return cur;
  }

  Result<std::pair<Node*, std::string>> resolve_parent(std::string_view path) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    std::size_t slash = path.rfind('/');
    if (slash == std::string_view::npos) return err(kInvalid, "path must be absolute");
    std::string_view name = path.substr(slash + 1);
    if (name.empty()) return err(kInvalid, "the root has no parent");
    COFFER_TRY_STATUS(check_name(name));
    Node* parent = COFFER_TRY(resolve(path.substr(0, slash + 1)));
    if (parent->kind != Kind::kDir) return err(kNotDir, "not a directory");
    COFFER_TRY_STATUS(load_dir(*parent));
    return std::pair<Node*, std::string>{parent, std::string(name)};
  }

  Result<Node*> add_child(Node* parent, const std::string& name, std::unique_ptr<Node> node) {
    if (parent->children.contains(name)) return err(kExists, "file exists");
    node->parent = parent;
    Node* raw = node.get();
    parent->children.emplace(name, std::move(node));
    parent->mtime_ns = now_ns();
    mark_meta_dirty(parent);
    mark_dirty(raw);
    return raw;
  }

  void forget(Node& n) {
    if (n.kind == Kind::kSymlink) return;
    if (n.kind == Kind::kFile) close_fd(n.id);
    doomed.push_back(n.id);
    for (auto& [name, child] : n.children) forget(*child);
  }

  Status commit_node(Node& n) {
    if (!n.dirty) return ok();
    if (n.kind == Kind::kDir) {
      for (auto& [name, child] : n.children) COFFER_TRY_STATUS(commit_node(*child));
      COFFER_TRY_STATUS(write_dir(n));
    } else if (n.kind == Kind::kFile) {
      if (durable) {
        int fd = COFFER_TRY(fd_of(n));
        if (::fdatasync(fd) != 0)
          return err(kIo, std::string("cannot sync a file object: ") + strerror(errno));
      }
      n.hash = file_hash(n);
    }
    n.dirty = false;
    return ok();
  }

  Status check_node(Node& n, int depth) {
    if (depth > kMaxDepth) return err(kIntegrity, "directory tree too deep");
    if (n.kind == Kind::kDir) {
      COFFER_TRY_STATUS(load_dir(n));
      for (auto& [name, child] : n.children) COFFER_TRY_STATUS(check_node(*child, depth + 1));
    } else if (n.kind == Kind::kFile) {
      COFFER_TRY_STATUS(load_tags(n));
      for (std::uint64_t i = 0; i < n.tags.size(); ++i) COFFER_TRY(read_block(n, i));
    }
    return ok();
  }
};

Filesystem::Filesystem(std::unique_ptr<State> state) : state_(std::move(state)) {}
Filesystem::~Filesystem() = default;

Status create(const fs::path& dir, ByteView key, const CreateOptions& options) {
  if (key.size() != kKeySize) return err(kInvalid, "the filesystem key must be 32 bytes");
  if (!is_pow2_block(options.block_size))
    return err(kInvalid, "block size must be a power of two from 4096 to 1048576");
  std::error_code ec;
  fs::create_directories(dir / "objects", ec);
  if (ec) return err(kIo, "cannot create " + dir.string() + ": " + ec.message());
  if (fs::exists(dir / "superblock", ec))
    return err(kExists, dir.string() + " already holds a filesystem");
  Filesystem::State s;
  s.dir = dir;
  s.objects = dir / "objects";
  s.block_size = options.block_size;
  Bytes fs_id = crypto::random_bytes(kIdSize);
  std::copy(fs_id.begin(), fs_id.end(), s.fs_id.begin());
  COFFER_TRY_STATUS(s.derive(key));
  s.root = std::make_unique<Filesystem::Node>();
  s.root->kind = Kind::kDir;
  Bytes root_id = crypto::random_bytes(kIdSize);
  std::copy(root_id.begin(), root_id.end(), s.root->id.begin());
  s.root->mode = options.root_mode & 07777;
  s.root->uid = options.root_uid;
  s.root->gid = options.root_gid;
  s.root->mtime_ns = now_ns();
  s.root->loaded = true;
  COFFER_TRY_STATUS(s.write_dir(*s.root));
  s.generation = 1;
  return replace_file(dir / "superblock", s.superblock());
}

Result<std::unique_ptr<Filesystem>> Filesystem::open(const fs::path& dir, ByteView key,
                                                     const OpenOptions& options) {
  if (key.size() != kKeySize) return err(kInvalid, "the filesystem key must be 32 bytes");
  std::error_code ec;
  if (!fs::exists(dir / "superblock", ec))
    return err(kBadFormat, dir.string() + " holds no encrypted filesystem (no superblock)");
  Bytes sb = COFFER_TRY(read_whole(dir / "superblock", 4096, "the superblock"));
  if (sb.size() < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(), sb.begin()))
    return err(kBadFormat, dir.string() + " holds no coffer-efs v1 superblock");
  if (sb.size() != kSuperblockSize) return err(kIntegrity, "the superblock has the wrong size");
  auto s = std::make_unique<State>();
  // absolute: a daemonized FUSE server changes its working directory to /
  s->dir = fs::absolute(dir, ec);
  if (ec) return err(kIo, "cannot resolve " + dir.string());
  s->objects = s->dir / "objects";
  std::copy_n(sb.begin() + 12, kIdSize, s->fs_id.begin());
  COFFER_TRY_STATUS(s->derive(key));
  // 1. the key check value tells a wrong key from a tampered superblock
  if (!constant_time_equal(ByteView(sb).subspan(28, 32), s->check_value))
    return err(kWrongKey, "the key does not open this filesystem");
  // 2. the superblock MAC authenticates the root and the generation
  Bytes mac =
      crypto::hmac(crypto::DigestAlg::kSha256, s->sb_key, ByteView(sb).first(kSuperblockMacOffset));
  if (!constant_time_equal(mac, ByteView(sb).subspan(kSuperblockMacOffset)))
    return err(kIntegrity, "the superblock was modified");
  // 3. authenticated fields
  s->block_size = load_le32(sb.data() + 8);
  if (!is_pow2_block(s->block_size)) return err(kBadFormat, "unsupported block size");
  s->generation = load_le64(sb.data() + 60);
  if (s->generation < options.min_generation)
    return err(kRollback, "filesystem generation " + std::to_string(s->generation) +
                              " is older than the expected minimum " +
                              std::to_string(options.min_generation));
  s->root = std::make_unique<Node>();
  s->root->kind = Kind::kDir;
  s->root->mode = load_le32(sb.data() + 68) & 07777;
  s->root->uid = load_le32(sb.data() + 72);
  s->root->gid = load_le32(sb.data() + 76);
  s->root->mtime_ns = static_cast<std::int64_t>(load_le64(sb.data() + 80));
  std::copy_n(sb.begin() + 88, kIdSize, s->root->id.begin());
  std::copy_n(sb.begin() + 104, kHashSize, s->root->hash.begin());
  // 4. the root directory must match the authenticated hash
  COFFER_TRY_STATUS(s->load_dir(*s->root));
  return std::unique_ptr<Filesystem>(new Filesystem(std::move(s)));
}

namespace {
Attr attr_of(const Filesystem::Node& n) {
  return Attr{n.kind, n.mode, n.uid, n.gid, n.mtime_ns, n.size, 1};
}
}  // namespace

Result<Attr> Filesystem::stat(std::string_view path) {
  Node* n = COFFER_TRY(state_->resolve(path));
  return attr_of(*n);
}

Result<std::vector<std::pair<std::string, Attr>>> Filesystem::list(std::string_view path) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (n->kind != Kind::kDir) return err(kNotDir, "not a directory");
  COFFER_TRY_STATUS(state_->load_dir(*n));
  std::vector<std::pair<std::string, Attr>> out;
  out.reserve(n->children.size());
  for (const auto& [name, child] : n->children) out.emplace_back(name, attr_of(*child));
  return out;
}

Result<std::string> Filesystem::readlink(std::string_view path) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (n->kind != Kind::kSymlink) return err(kInvalid, "not a symbolic link");
  return n->target;
}

Result<std::size_t> Filesystem::read(std::string_view path, std::uint64_t offset,
                                     std::span<std::uint8_t> out) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (n->kind == Kind::kDir) return err(kIsDir, "is a directory");
  if (n->kind != Kind::kFile) return err(kInvalid, "not a regular file");
  COFFER_TRY_STATUS(state_->load_tags(*n));
  int fd = COFFER_TRY(state_->fd_of(*n));
  return state_->read_range(*n, offset, out, fd, state_->blocks, state_->scratch);
}

namespace {
// Each thread's cipher context and buffer for read_concurrent, keyed by the filesystem's serial.
// The thread also keeps the descriptor of the last object it read: a sequential read arrives as
// many requests, and the host kernel's read-ahead state lives in the open file (a descriptor per
// request would start every request cold, one synchronous disk read each).
struct ThreadReader {
  std::uint64_t serial = 0;
  BlockCipher cipher;
  Bytes buf;
  ObjectId fd_id{};
  int fd = -1;
  ThreadReader() = default;
  ThreadReader(const ThreadReader&) = delete;
  ThreadReader& operator=(const ThreadReader&) = delete;
  ~ThreadReader() { close_fd(); }
  void close_fd() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};
thread_local ThreadReader t_reader;
}  // namespace

Result<std::size_t> Filesystem::read_concurrent(std::string_view path, std::uint64_t offset,
                                                std::span<std::uint8_t> out) const {
  State& s = *state_;
  Node* n = COFFER_TRY(s.resolve(path, false));
  if (n->kind == Kind::kDir) return err(kIsDir, "is a directory");
  if (n->kind != Kind::kFile) return err(kInvalid, "not a regular file");
  if (!n->tags_loaded) return err(kNotLoaded, "block table not loaded yet");
  if (t_reader.serial != s.serial) {
    t_reader.close_fd();
    COFFER_TRY_STATUS(t_reader.cipher.init(s.content_key));
    t_reader.serial = s.serial;
  }
  // its own descriptor (the shared cache is not touched), kept for the next request
  if (t_reader.fd < 0 || t_reader.fd_id != n->id) {
    t_reader.close_fd();
    t_reader.fd = ::open(s.object_path(n->id).c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (t_reader.fd < 0) {
      if (errno == ENOENT) return err(kIntegrity, "file object is missing on the host");
      return err(kIo, std::string("cannot open a file object: ") + strerror(errno));
    }
    t_reader.fd_id = n->id;
  }
  return s.read_range(*n, offset, out, t_reader.fd, t_reader.cipher, t_reader.buf);
}

Result<Bytes> Filesystem::read_all(std::string_view path) {
  Attr a = COFFER_TRY(stat(path));
  Bytes out(static_cast<std::size_t>(a.size));
  std::size_t n = COFFER_TRY(read(path, 0, out));
  out.resize(n);
  return out;
}

Status Filesystem::create_file(std::string_view path, std::uint32_t mode, std::uint32_t uid,
                               std::uint32_t gid) {
  auto [parent, name] = COFFER_TRY(state_->resolve_parent(path));
  if (parent->children.contains(name)) return err(kExists, "file exists");
  auto node = std::make_unique<Node>();
  node->kind = Kind::kFile;
  Bytes id = crypto::random_bytes(kIdSize);
  std::copy(id.begin(), id.end(), node->id.begin());
  node->mode = mode & 07777;
  node->uid = uid;
  node->gid = gid;
  node->mtime_ns = now_ns();
  node->tags_loaded = true;
  COFFER_TRY(state_->fd_of(*node, true));
  COFFER_TRY(state_->add_child(parent, name, std::move(node)));
  return ok();
}

Status Filesystem::mkdir(std::string_view path, std::uint32_t mode, std::uint32_t uid,
                         std::uint32_t gid) {
  auto [parent, name] = COFFER_TRY(state_->resolve_parent(path));
  auto node = std::make_unique<Node>();
  node->kind = Kind::kDir;
  Bytes id = crypto::random_bytes(kIdSize);
  std::copy(id.begin(), id.end(), node->id.begin());
  node->mode = mode & 07777;
  node->uid = uid;
  node->gid = gid;
  node->mtime_ns = now_ns();
  node->loaded = true;
  COFFER_TRY(state_->add_child(parent, name, std::move(node)));
  return ok();
}

Status Filesystem::symlink(std::string_view target, std::string_view path, std::uint32_t uid,
                           std::uint32_t gid) {
  if (target.empty() || target.size() > kMaxSymlinkLength || target.find('\0') != target.npos)
    return err(kInvalid, "invalid symlink target");
  auto [parent, name] = COFFER_TRY(state_->resolve_parent(path));
  auto node = std::make_unique<Node>();
  node->kind = Kind::kSymlink;
  node->mode = 0777;
  node->uid = uid;
  node->gid = gid;
  node->mtime_ns = now_ns();
  node->target = std::string(target);
  node->size = target.size();
  COFFER_TRY(state_->add_child(parent, name, std::move(node)));
  return ok();
}

Status Filesystem::write(std::string_view path, std::uint64_t offset, ByteView data) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (n->kind == Kind::kDir) return err(kIsDir, "is a directory");
  if (n->kind != Kind::kFile) return err(kInvalid, "not a regular file");
  if (data.empty()) return ok();
  if (offset > (1ULL << 50) || data.size() > (1ULL << 30)) return err(kInvalid, "offset too large");
  COFFER_TRY_STATUS(state_->load_tags(*n));
  if (offset > n->size) COFFER_TRY_STATUS(truncate(path, offset));
  const std::uint64_t bs = state_->block_size;
  const std::uint64_t end = offset + data.size();
  Bytes plain;
  for (std::uint64_t i = offset / bs; i * bs < end; ++i) {
    std::uint64_t start = i * bs;
    std::size_t old_len = start < n->size ? state_->block_len(*n, i) : 0;
    std::size_t new_len = std::max<std::size_t>(
        old_len, static_cast<std::size_t>(std::min<std::uint64_t>(bs, end - start)));
    std::size_t from = static_cast<std::size_t>(std::max(offset, start) - start);
    std::size_t to = static_cast<std::size_t>(std::min(end, start + bs) - start);
    if (old_len > 0 && (from > 0 || to < old_len)) {
      plain = COFFER_TRY(state_->read_block(*n, i));  // keep the bytes the write does not cover
    } else {
      plain.clear();
    }
    plain.resize(new_len, 0);
    std::memcpy(plain.data() + from, data.data() + (start + from - offset), to - from);
    COFFER_TRY_STATUS(state_->write_block(*n, i, plain));
    n->size = std::max<std::uint64_t>(n->size, start + new_len);
  }
  n->mtime_ns = now_ns();
  state_->mark_dirty(n);
  return ok();
}

Status Filesystem::truncate(std::string_view path, std::uint64_t size) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (n->kind == Kind::kDir) return err(kIsDir, "is a directory");
  if (n->kind != Kind::kFile) return err(kInvalid, "not a regular file");
  if (size > (1ULL << 50)) return err(kInvalid, "size too large");
  COFFER_TRY_STATUS(state_->load_tags(*n));
  const std::uint64_t bs = state_->block_size;
  if (size < n->size) {
    std::uint64_t blocks = state_->blocks_for(size);
    if (size % bs != 0) {
      Bytes last = COFFER_TRY(state_->read_block(*n, blocks - 1));
      last.resize(static_cast<std::size_t>(size % bs));
      n->size = size;
      COFFER_TRY_STATUS(state_->write_block(*n, blocks - 1, last));
    }
    n->size = size;
    n->tags.resize(blocks);
    int fd = COFFER_TRY(state_->fd_of(*n));
    if (::ftruncate(fd, static_cast<off_t>(state_->blob_size(size))) != 0)
      return err(kIo, std::string("cannot truncate a file object: ") + strerror(errno));
  } else if (size > n->size) {
    Bytes zeros(static_cast<std::size_t>(std::min<std::uint64_t>(size - n->size, 1 << 20)), 0);
    while (n->size < size) {
      std::size_t len =
          static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), size - n->size));
      COFFER_TRY_STATUS(write(path, n->size, ByteView(zeros).first(len)));
    }
  }
  n->mtime_ns = now_ns();
  state_->mark_dirty(n);
  return ok();
}

Status Filesystem::unlink(std::string_view path) {
  auto [parent, name] = COFFER_TRY(state_->resolve_parent(path));
  auto it = parent->children.find(name);
  if (it == parent->children.end()) return err(kNotFound, "no such file or directory");
  if (it->second->kind == Kind::kDir) return err(kIsDir, "is a directory");
  state_->forget(*it->second);
  parent->children.erase(it);
  parent->mtime_ns = now_ns();
  state_->mark_dirty(parent);
  state_->mark_meta_dirty(parent);
  return ok();
}

Status Filesystem::rmdir(std::string_view path) {
  auto [parent, name] = COFFER_TRY(state_->resolve_parent(path));
  auto it = parent->children.find(name);
  if (it == parent->children.end()) return err(kNotFound, "no such file or directory");
  Node& d = *it->second;
  if (d.kind != Kind::kDir) return err(kNotDir, "not a directory");
  COFFER_TRY_STATUS(state_->load_dir(d));
  if (!d.children.empty()) return err(kNotEmpty, "directory not empty");
  state_->forget(d);
  parent->children.erase(it);
  parent->mtime_ns = now_ns();
  state_->mark_dirty(parent);
  state_->mark_meta_dirty(parent);
  return ok();
}

Status Filesystem::rename(std::string_view from, std::string_view to, bool no_replace) {
  auto [src_parent, src_name] = COFFER_TRY(state_->resolve_parent(from));
  auto src_it = src_parent->children.find(src_name);
  if (src_it == src_parent->children.end()) return err(kNotFound, "no such file or directory");
  auto [dst_parent, dst_name] = COFFER_TRY(state_->resolve_parent(to));
  Node* node = src_it->second.get();
  // a directory cannot move below itself
  for (Node* p = dst_parent; p != nullptr; p = p->parent)
    if (p == node) return err(kInvalid, "cannot move a directory into itself");
  if (src_parent == dst_parent && src_name == dst_name) return ok();
  auto dst_it = dst_parent->children.find(dst_name);
  if (dst_it != dst_parent->children.end()) {
    if (no_replace) return err(kExists, "file exists");
    Node& old = *dst_it->second;
    if (old.kind == Kind::kDir) {
      if (node->kind != Kind::kDir) return err(kIsDir, "is a directory");
      COFFER_TRY_STATUS(state_->load_dir(old));
      if (!old.children.empty()) return err(kNotEmpty, "directory not empty");
    } else if (node->kind == Kind::kDir) {
      return err(kNotDir, "not a directory");
    }
    state_->forget(old);
    dst_parent->children.erase(dst_it);
  }
  std::unique_ptr<Node> moving = std::move(src_parent->children.find(src_name)->second);
  src_parent->children.erase(src_name);
  moving->parent = dst_parent;
  dst_parent->children.emplace(dst_name, std::move(moving));
  std::int64_t now = now_ns();
  src_parent->mtime_ns = now;
  dst_parent->mtime_ns = now;
  state_->mark_dirty(src_parent);
  state_->mark_dirty(dst_parent);
  state_->mark_meta_dirty(src_parent);
  state_->mark_meta_dirty(dst_parent);
  return ok();
}

Status Filesystem::chmod(std::string_view path, std::uint32_t mode) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (n->kind == Kind::kSymlink) return ok();
  n->mode = mode & 07777;
  state_->mark_meta_dirty(n);
  return ok();
}

Status Filesystem::chown(std::string_view path, std::optional<std::uint32_t> uid,
                         std::optional<std::uint32_t> gid) {
  Node* n = COFFER_TRY(state_->resolve(path));
  if (uid) n->uid = *uid;
  if (gid) n->gid = *gid;
  state_->mark_meta_dirty(n);
  return ok();
}

Status Filesystem::set_mtime(std::string_view path, std::int64_t mtime_ns) {
  Node* n = COFFER_TRY(state_->resolve(path));
  n->mtime_ns = mtime_ns;
  state_->mark_meta_dirty(n);
  return ok();
}

Status Filesystem::commit(bool durable) {
  State& s = *state_;
  if (!s.dirty) return ok();
  s.durable = durable;
  Status st = s.commit_node(*s.root);
  s.durable = false;
  COFFER_TRY_STATUS(st);
  ++s.generation;
  COFFER_TRY_STATUS(replace_file(s.dir / "superblock", s.superblock(), durable));
  if (durable) {
    for (const fs::path& d : {s.objects, s.dir}) {  // the renames themselves
      int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0 || ::fsync(fd) != 0) {
        if (fd >= 0) ::close(fd);
        return err(kIo, "cannot sync the filesystem directory");
      }
      ::close(fd);
    }
  }
  s.dirty = false;
  for (const ObjectId& id : s.doomed) ::unlink(s.object_path(id).c_str());
  s.doomed.clear();
  return ok();
}

Status Filesystem::check() { return state_->check_node(*state_->root, 0); }

std::uint64_t Filesystem::generation() const { return state_->generation; }
std::uint32_t Filesystem::block_size() const { return state_->block_size; }
const fs::path& Filesystem::directory() const { return state_->dir; }

}  // namespace coffer::runtime::efs
