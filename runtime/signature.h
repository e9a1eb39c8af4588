// Bundle signatures (docs/security.md, docs/bundle.md "Signatures"): Ed25519 public keys in their
// one-line text form, trusted-keys files, the digest and message a bundle's signature covers, and
// verification. Signing (private keys) lives in codegen/bundle_signer.h: the runtime only checks.
// Cryptography is OpenSSL's libcrypto (EVP); errors are Status values, nothing throws.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ingot {

using Ed25519Key = std::array<uint8_t, 32>;
using Ed25519Signature = std::array<uint8_t, 64>;

// A public key as written in KEY.pub and in trusted-keys files, one per line:
//   ingot-ed25519 <base64 of the 32-byte key> <comment>
struct PublicKey {
  Ed25519Key key{};
  std::string comment;  // free text to the end of the line; may be empty
};

inline constexpr char kPublicKeyType[] = "ingot-ed25519";

// "SHA256:" and the unpadded base64 of the key's SHA-256 (as OpenSSH prints fingerprints).
std::string key_fingerprint(const Ed25519Key& key);
std::string format_public_key(const PublicKey& key);  // one line, no newline
StatusOr<PublicKey> parse_public_key(std::string_view line);

std::string base64_encode(const uint8_t* data, size_t n);
// Strict: padded standard alphabet only.
std::optional<std::string> base64_decode(std::string_view text);

// A trusted-keys file: one public key per line; blank lines and lines starting with '#' are skipped.
struct TrustedKeys {
  std::string path;  // where they were read, for messages
  std::vector<PublicKey> keys;
  // The entry for `key`, or null.
  const PublicKey* find(const Ed25519Key& key) const;
};
// Errors name the file and the line. A file without any key is an error (it would refuse every bundle).
StatusOr<TrustedKeys> read_trusted_keys(const std::string& path);

// The trusted-keys file that applies: `given` (an option) when not empty; else $INGOT_TRUSTED_KEYS
// when set and not empty; else $XDG_CONFIG_HOME/ingot/trusted-keys (XDG_CONFIG_HOME defaulting to
// ~/.config) when that file exists; else "" (none: signatures are reported, not required).
std::string trusted_keys_path(const std::string& given);
// read_trusted_keys(trusted_keys_path(given)), or nullopt when none applies.
StatusOr<std::optional<TrustedKeys>> load_trusted_keys(const std::string& given);

// SHA-256 (OpenSSL's, on the SHA extensions when the CPU has them) of a bundle's first
// `signature_offset` bytes, with the 32 bytes at `zeroed_at` (the signature entry's sha256 field in
// the section table) counted as zeros.
StatusOr<std::array<uint8_t, 32>> bundle_signed_digest(const uint8_t* file, uint64_t signature_offset, uint64_t zeroed_at);
// What Ed25519 signs: kSignedMessagePrefix with its NUL, u32 comment length, the comment, the digest.
std::string bundle_signed_message(const std::array<uint8_t, 32>& digest, std::string_view comment);
// True when `signature` is `key`'s Ed25519 signature of `message`.
bool ed25519_verify(const Ed25519Key& key, const Ed25519Signature& signature, std::string_view message);

}  // namespace ingot
