#include "codegen/bundle_signer.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "runtime/bundle.h"
#include "runtime/bundle_format.h"
#include "runtime/sha256.h"

namespace ingot {

using namespace bundle;

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

EVP_PKEY* pkey_of(void* p) { return static_cast<EVP_PKEY*>(p); }

std::string errno_text() { return std::strerror(errno); }

Status write_all(int fd, uint64_t offset, const void* data, size_t n, const std::string& path) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, static_cast<off_t>(offset));
    if (w < 0) {
      if (errno == EINTR) continue;
      return Status::Error(StatusCode::io, path + ": write failed: " + errno_text());
    }
    p += w;
    n -= static_cast<size_t>(w);
    offset += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

Status read_all(int fd, uint64_t offset, void* data, size_t n, const std::string& path) {
  uint8_t* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    const ssize_t r = ::pread(fd, p, n, static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Status::Error(StatusCode::io, path + ": read failed");
    p += r;
    n -= static_cast<size_t>(r);
    offset += static_cast<uint64_t>(r);
  }
  return Status::Ok();
}

// Creates `path` with `data` and `mode`, never replacing an existing file: written under a
// temporary name and hard-linked into place (link fails when `path` exists).
Status create_new_file(const std::string& path, const std::string& data, mode_t mode) {
  const std::string tmp = path + ".tmp-keygen-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::Error(StatusCode::io, path + ": cannot create file: " + errno_text());
  Status st = ::fchmod(fd, mode) == 0 ? write_all(fd, 0, data.data(), data.size(), path)
                                      : Status::Error(StatusCode::io, path + ": cannot set its mode: " + errno_text());
  if (st.ok() && ::fsync(fd) != 0) st = Status::Error(StatusCode::io, path + ": write failed: " + errno_text());
  ::close(fd);
  if (st.ok() && ::link(tmp.c_str(), path.c_str()) != 0)
    st = Status::Error(StatusCode::io, path + (errno == EEXIST ? ": exists; not replaced (remove it first)"
                                                               : ": cannot create file: " + errno_text()));
  ::unlink(tmp.c_str());
  return st;
}

StatusOr<Ed25519Key> raw_public_key(EVP_PKEY* pkey, const std::string& path) {
  Ed25519Key k{};
  size_t n = k.size();
  if (EVP_PKEY_get_raw_public_key(pkey, k.data(), &n) != 1 || n != k.size())
    return Status::Error(path + ": cannot read the public key (OpenSSL)");
  return k;
}

bool has_control_character(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f) return true;
  return false;
}

}  // namespace

SigningKey::~SigningKey() { EVP_PKEY_free(pkey_of(pkey_)); }

StatusOr<std::shared_ptr<const SigningKey>> SigningKey::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::Error(StatusCode::io, path + ": cannot open the signing key: " + errno_text());
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string pem = ss.str();
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  EVP_PKEY* pkey = bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr;
  if (!pkey) return Status::Error(path + ": not a PEM private key (make one with `ingotc keygen -o KEY`)");
  std::shared_ptr<SigningKey> key(new SigningKey());
  key->pkey_ = pkey;
  if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) return Status::Error(path + ": not an Ed25519 private key");
  INGOT_ASSIGN_OR_RETURN(key->public_.key, raw_public_key(pkey, path));
  if (std::ifstream pub(path + ".pub"); pub) {
    std::string line;
    std::getline(pub, line);
    auto k = parse_public_key(line);
    if (!k.ok()) return Status::Error(path + ".pub: " + k.message());
    if (k->key != key->public_.key) return Status::Error(path + ".pub holds another key than " + path);
    key->public_.comment = k->comment;
  }
  if (has_control_character(key->public_.comment) || key->public_.comment.size() > kMaxSignatureComment)
    return Status::Error(path + ".pub: the comment has a control character or is longer than " +
                         std::to_string(kMaxSignatureComment) + " bytes");
  return std::shared_ptr<const SigningKey>(std::move(key));
}

StatusOr<Ed25519Signature> SigningKey::sign(std::string_view message) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  Ed25519Signature sig{};
  size_t n = sig.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, pkey_of(pkey_)) != 1 ||
      EVP_DigestSign(ctx.get(), sig.data(), &n, reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      n != sig.size())
    return Status::Error(StatusCode::internal, "Ed25519 signing failed (OpenSSL)");
  return sig;
}

StatusOr<PublicKey> generate_signing_key(const std::string& path, const std::string& comment) {
  if (has_control_character(comment) || comment.size() > kMaxSignatureComment)
    return Status::Error("the key comment must be one line of at most " + std::to_string(kMaxSignatureComment) + " bytes");
  struct stat st;
  for (const std::string& p : {path, path + ".pub"})
    if (::lstat(p.c_str(), &st) == 0) return Status::Error(StatusCode::io, p + ": exists; not replaced (remove it first)");
  EVP_PKEY* raw = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (!raw) return Status::Error(StatusCode::internal, "Ed25519 key generation failed (OpenSSL)");
  std::unique_ptr<EVP_PKEY, void (*)(EVP_PKEY*)> pkey(raw, EVP_PKEY_free);
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return Status::Error(StatusCode::internal, "cannot encode the private key (OpenSSL)");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  const std::string pem(data, static_cast<size_t>(n));
  PublicKey pub;
  INGOT_ASSIGN_OR_RETURN(pub.key, raw_public_key(pkey.get(), path));
  pub.comment = comment;
  INGOT_RETURN_IF_ERROR(create_new_file(path, pem, 0600));
  if (Status s = create_new_file(path + ".pub", format_public_key(pub) + "\n", 0644); !s.ok()) {
    ::unlink(path.c_str());
    return s;
  }
  return pub;
}

std::string signature_placeholder(const SigningKey& key) {
  SignatureBlock b;
  b.comment = key.public_key().comment;
  return encode_signature(b);
}

Status write_bundle_signature(int fd, const std::string& path, uint64_t file_size, uint32_t index, const SigningKey& key) {
  // The descriptor may be write-only: read the file through a descriptor of its own.
  const int rfd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  if (rfd < 0) return Status::Error(StatusCode::io, path + ": cannot read back the file to sign it: " + errno_text());
  const uint64_t entry_at = FileHeader::kSize + uint64_t(index) * SectionEntry::kSize;
  uint8_t entry_bytes[SectionEntry::kSize];
  if (Status st = read_all(rfd, entry_at, entry_bytes, sizeof(entry_bytes), path); !st.ok()) {
    ::close(rfd);
    return st;
  }
  const SectionEntry e = decode_section(entry_bytes);
  if (e.kind != uint32_t(SectionKind::signature) || e.offset + e.size != file_size ||
      e.size != signature_placeholder(key).size() || e.offset == 0) {
    ::close(rfd);
    return Status::Error(StatusCode::internal, path + ": internal: the signature section is not where it was planned");
  }
  void* m = ::mmap(nullptr, e.offset, PROT_READ, MAP_SHARED, rfd, 0);
  ::close(rfd);
  if (m == MAP_FAILED) return Status::Error(StatusCode::io, path + ": cannot map the file to sign it: " + errno_text());
  ::madvise(m, e.offset, MADV_SEQUENTIAL);
  StatusOr<std::array<uint8_t, 32>> digest = bundle_signed_digest(static_cast<const uint8_t*>(m), e.offset, entry_at + 24);
  ::munmap(m, e.offset);
  if (!digest.ok()) return digest.status().with_context(path);
  SignatureBlock block;
  block.comment = key.public_key().comment;
  std::memcpy(block.public_key, key.public_key().key.data(), 32);
  INGOT_ASSIGN_OR_RETURN(Ed25519Signature sig, key.sign(bundle_signed_message(*digest, block.comment)));
  std::memcpy(block.signature, sig.data(), 64);
  const std::string bytes = encode_signature(block);
  INGOT_RETURN_IF_ERROR(write_all(fd, e.offset, bytes.data(), bytes.size(), path));
  const Sha256::Digest h = Sha256::hash(bytes.data(), bytes.size());
  return write_all(fd, entry_at + 24, h.data(), h.size(), path);
}

Status sign_bundle(const std::string& path, const SigningKey& key) {
  INGOT_ASSIGN_OR_RETURN(std::unique_ptr<Bundle> b, Bundle::open(path, BundleOpenOptions{.check_cpu = false, .tier = {}}));
  // A signature vouches for the bytes: they must be the ones the section table records.
  if (Status st = b->verify(); !st.ok()) return st.with_context("not signed");
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::Error(StatusCode::io, path + ": " + errno_text());

  // The sections in table order, but for an old signature; then the new one, last.
  std::vector<SectionEntry> table;
  std::vector<const BundleSection*> from;
  for (const BundleSection& s : b->sections()) {
    if (s.kind == uint32_t(SectionKind::signature)) continue;
    SectionEntry e;
    e.kind = s.kind;
    e.size = s.size;
    std::memcpy(e.sha256, s.sha256.data(), 32);
    table.push_back(e);
    from.push_back(&s);
  }
  const std::string placeholder = signature_placeholder(key);
  SectionEntry sig_entry;
  sig_entry.kind = uint32_t(SectionKind::signature);
  sig_entry.size = placeholder.size();
  table.push_back(sig_entry);
  if (table.size() > kMaxSections)
    return Status::Error(path + ": not signed: the bundle already has " + std::to_string(kMaxSections) + " sections");
  uint64_t offset = align_up(FileHeader::kSize + table.size() * SectionEntry::kSize, kSectionAlignment);
  for (SectionEntry& e : table) {
    e.offset = offset;
    offset = align_up(offset + e.size, kSectionAlignment);
  }
  const uint64_t file_size = table.back().offset + table.back().size;

  std::vector<uint8_t> head(table.front().offset, 0);
  encode_header_and_table(table.data(), static_cast<uint32_t>(table.size()), file_size, head.data());

  const std::string tmp = path + ".tmp-sign-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 0777);
  if (fd < 0) return Status::Error(StatusCode::io, path + ": cannot create a temporary file next to it: " + errno_text());
  Status result = [&]() -> Status {
    INGOT_RETURN_IF_ERROR(write_all(fd, 0, head.data(), head.size(), tmp));
    for (size_t i = 0; i < from.size(); ++i) {
      const std::span<const uint8_t> bytes = b->bytes(*from[i]);
      INGOT_RETURN_IF_ERROR(write_all(fd, table[i].offset, bytes.data(), bytes.size(), tmp));
    }
    INGOT_RETURN_IF_ERROR(write_all(fd, table.back().offset, placeholder.data(), placeholder.size(), tmp));
    // Gaps between sections read as zeros; the size must be exact.
    if (::ftruncate(fd, static_cast<off_t>(file_size)) != 0)
      return Status::Error(StatusCode::io, tmp + ": cannot set its size: " + errno_text());
    INGOT_RETURN_IF_ERROR(write_bundle_signature(fd, path, file_size, static_cast<uint32_t>(table.size() - 1), key));
    if (::fsync(fd) != 0) return Status::Error(StatusCode::io, tmp + ": write failed: " + errno_text());
    return Status::Ok();
  }();
  if (::close(fd) != 0 && result.ok()) result = Status::Error(StatusCode::io, tmp + ": write failed: " + errno_text());
  if (result.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    result = Status::Error(StatusCode::io, path + ": cannot replace file: " + errno_text());
  if (!result.ok()) ::unlink(tmp.c_str());
  return result;
}

}  // namespace ingot
