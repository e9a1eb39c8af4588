#include "runtime/signature.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include <sys/stat.h>

#include <openssl/evp.h>

#include "runtime/bundle_format.h"

namespace ingot {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string base64_encode(const uint8_t* data, size_t n) {
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t v = uint32_t(data[i]) << 16 | (i + 1 < n ? uint32_t(data[i + 1]) << 8 : 0) | (i + 2 < n ? data[i + 2] : 0);
    out += kAlphabet[v >> 18 & 63];
    out += kAlphabet[v >> 12 & 63];
    out += i + 1 < n ? kAlphabet[v >> 6 & 63] : '=';
    out += i + 2 < n ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = text[i + k];
      uint32_t d = 0;
      if (c == '=') {
        // Padding only at the end, in the last two places.
        if (i + 4 != text.size() || k < 2) return std::nullopt;
        ++pad;
      } else {
        if (pad) return std::nullopt;
        const char* at = std::strchr(kAlphabet, c);
        if (!at || c == '\0') return std::nullopt;
        d = static_cast<uint32_t>(at - kAlphabet);
      }
      v = v << 6 | d;
    }
    out += static_cast<char>(v >> 16);
    if (pad < 2) out += static_cast<char>(v >> 8 & 0xff);
    if (pad < 1) out += static_cast<char>(v & 0xff);
  }
  return out;
}

std::string key_fingerprint(const Ed25519Key& key) {
  uint8_t d[32];
  unsigned len = 0;
  EVP_Digest(key.data(), key.size(), d, &len, EVP_sha256(), nullptr);
  std::string b = base64_encode(d, sizeof(d));
  while (!b.empty() && b.back() == '=') b.pop_back();
  return "SHA256:" + b;
}

std::string format_public_key(const PublicKey& key) {
  std::string line = std::string(kPublicKeyType) + " " + base64_encode(key.key.data(), key.key.size());
  if (!key.comment.empty()) line += " " + key.comment;
  return line;
}

StatusOr<PublicKey> parse_public_key(std::string_view line) {
  line = trim(line);
  const size_t sp = line.find_first_of(" \t");
  const std::string_view type = line.substr(0, sp);
  if (type != kPublicKeyType)
    return Status::Error("not an Ingot public key: expected '" + std::string(kPublicKeyType) + " <base64 key> <comment>'");
  std::string_view rest = sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp));
  const size_t sp2 = rest.find_first_of(" \t");
  const std::string_view b64 = rest.substr(0, sp2);
  const std::optional<std::string> raw = base64_decode(b64);
  if (!raw || raw->size() != 32) return Status::Error("the key is not the base64 of 32 bytes");
  PublicKey k;
  std::memcpy(k.key.data(), raw->data(), 32);
  if (sp2 != std::string_view::npos) k.comment = std::string(trim(rest.substr(sp2)));
  return k;
}

const PublicKey* TrustedKeys::find(const Ed25519Key& key) const {
  for (const PublicKey& k : keys)
    if (k.key == key) return &k;
  return nullptr;
}

StatusOr<TrustedKeys> read_trusted_keys(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::Error(StatusCode::io, path + ": cannot open the trusted-keys file: " + std::strerror(errno));
  TrustedKeys t;
  t.path = path;
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    const std::string_view l = trim(line);
    if (l.empty() || l[0] == '#') continue;
    auto k = parse_public_key(l);
    if (!k.ok()) return Status::Error(path + ":" + std::to_string(n) + ": " + k.message());
    t.keys.push_back(std::move(*k));
  }
  if (f.bad()) return Status::Error(StatusCode::io, path + ": read error");
  if (t.keys.empty())
    return Status::Error(path + ": the trusted-keys file lists no key (one '" + std::string(kPublicKeyType) +
                         " <base64 key> <comment>' per line)");
  return t;
}

std::string trusted_keys_path(const std::string& given) {
  if (!given.empty()) return given;
  if (const char* env = std::getenv("INGOT_TRUSTED_KEYS"); env && *env) return env;
  std::string config;
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) config = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home) config = std::string(home) + "/.config";
  else return "";
  const std::string path = config + "/ingot/trusted-keys";
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 ? path : "";
}

StatusOr<std::optional<TrustedKeys>> load_trusted_keys(const std::string& given) {
  const std::string path = trusted_keys_path(given);
  if (path.empty()) return std::optional<TrustedKeys>();
  INGOT_ASSIGN_OR_RETURN(TrustedKeys keys, read_trusted_keys(path));
  return std::optional<TrustedKeys>(std::move(keys));
}

StatusOr<std::array<uint8_t, 32>> bundle_signed_digest(const uint8_t* file, uint64_t signature_offset, uint64_t zeroed_at) {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  static const uint8_t kZeros[32] = {};
  std::array<uint8_t, 32> d{};
  unsigned len = 0;
  if (!ctx || zeroed_at + 32 > signature_offset || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), file, zeroed_at) != 1 || EVP_DigestUpdate(ctx.get(), kZeros, 32) != 1 ||
      EVP_DigestUpdate(ctx.get(), file + zeroed_at + 32, signature_offset - zeroed_at - 32) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), d.data(), &len) != 1 || len != 32)
    return Status::Error(StatusCode::internal, "SHA-256 of the bundle failed (OpenSSL)");
  return d;
}

std::string bundle_signed_message(const std::array<uint8_t, 32>& digest, std::string_view comment) {
  std::string m(bundle::kSignedMessagePrefix, sizeof(bundle::kSignedMessagePrefix));  // with the NUL
  uint8_t len[4];
  bundle::put_u32(len, static_cast<uint32_t>(comment.size()));
  m.append(reinterpret_cast<const char*>(len), 4);
  m.append(comment);
  m.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return m;
}

bool ed25519_verify(const Ed25519Key& key, const Ed25519Signature& signature, std::string_view message) {
  std::unique_ptr<EVP_PKEY, PkeyFree> pkey(EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.data(), key.size()));
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!pkey || !ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), signature.data(), signature.size(),
                          reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
}

}  // namespace ingot
