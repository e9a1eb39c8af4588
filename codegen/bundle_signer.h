// Signing bundles (docs/security.md; the format in docs/bundle.md, "Signatures"): Ed25519 keys
// made and read with OpenSSL, the signature section of a bundle being written (`ingotc compile
// --sign`) and the re-signing of an existing bundle (`ingotc sign`). Checking is the runtime's
// (runtime/signature.h, Bundle::check_signature). Errors are Status values naming the file.
#pragma once

#include <memory>
#include <string>

#include "base/status.h"
#include "runtime/signature.h"

namespace ingot {

class SigningKey {
 public:
  // Reads an Ed25519 private key (PEM, PKCS#8, as `ingotc keygen` writes). The signer's comment
  // comes from KEY.pub when that file exists (it must hold the same key); otherwise it is empty.
  static StatusOr<std::shared_ptr<const SigningKey>> load(const std::string& path);
  ~SigningKey();
  SigningKey(const SigningKey&) = delete;
  SigningKey& operator=(const SigningKey&) = delete;

  const PublicKey& public_key() const { return public_; }
  StatusOr<Ed25519Signature> sign(std::string_view message) const;

 private:
  SigningKey() = default;
  void* pkey_ = nullptr;  // EVP_PKEY
  PublicKey public_;
};

// Writes a new Ed25519 private key to `path` (PEM, mode 0600) and its public key to `path`.pub (one
// line: format_public_key). Refuses to replace an existing file (a private key is not overwritten).
StatusOr<PublicKey> generate_signing_key(const std::string& path, const std::string& comment);

// Fills in the signature section of the bundle being written to `fd` (`path` for messages): every
// byte before it is in place, the section is section `index` of the table and the last of the file,
// sized for the key's comment. Writes the signature and the section's SHA-256 in the table.
Status write_bundle_signature(int fd, const std::string& path, uint64_t file_size, uint32_t index, const SigningKey& key);

// The bytes of the signature section for `key` before signing (their size is what matters).
std::string signature_placeholder(const SigningKey& key);

// Signs the bundle at `path` in place, atomically (a temporary file next to it, renamed over it):
// the sections are copied, an existing signature section is replaced.
Status sign_bundle(const std::string& path, const SigningKey& key);

}  // namespace ingot
