// Bundle signatures and integrity (docs/security.md): public-key text and trusted-keys files;
// keygen/sign/verify round trips through ingotc and ingot; every changed byte of a signed bundle
// refused under trusted keys; unsigned and untrusted bundles refused (CLI, Engine, C API);
// `ingot verify` loading no code; the manifest's and kernels' SHA-256 checked on every load.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "codegen/bundle_signer.h"
#include "codegen/bundle_writer.h"
#include "runtime/bundle.h"
#include "runtime/bundle_format.h"
#include "runtime/cpu_features.h"
#include "runtime/engine.h"
#include "runtime/ingot.h"
#include "runtime/sha256.h"
#include "runtime/signature.h"
#include "tests/common/command.h"
#include "tests/common/files.h"
#include "tests/common/status.h"

namespace ingot {
namespace {

using ::ingot::testing::run;
using ::ingot::testing::kIngotc;
using ::ingot::testing::kIngot;
using ::ingot::testing::make_temp_dir;
using ::ingot::testing::read_file;
using ::ingot::testing::CmdResult;

// Commands run without the environment's trust settings unless a test sets them.
using ::ingot::testing::kCleanEnv;

using ::ingot::testing::write_file;

// A small bundle by hand (no real kernels): a manifest, one kernels section of `kernels` bytes for
// the host's best tier, a weights section.
BundleContents small_contents(const std::string& kernels, bool list_kernel = true) {
  BundleContents c;
  c.manifest.set_model_name("small");
  auto* p = c.manifest.mutable_memory_plan();
  p->set_arena_bytes(4096);
  p->set_alignment(64);
  if (list_kernel) {
    auto* k = c.manifest.add_kernels();
    k->set_symbol("ingot_k0_matmul");
    k->set_kind("matmul");
  }
  const CpuTier* tier = best_cpu_tier(usable_cpu_features());
  c.kernel_sets.push_back({tier->name, tier->llvm_cpu, tier->features, kernels});
  BundleTensor t;
  t.name = "w";
  t.type = "u8";
  t.shape = {3000};
  t.size = 3000;
  t.produce = [] {
    std::vector<uint8_t> v(3000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i * 7 + 1);
    return StatusOr<std::vector<uint8_t>>(std::move(v));
  };
  c.tensors.push_back(t);
  return c;
}

std::string not_elf_kernels() {
  std::string s(5000, '\0');
  for (size_t i = 0; i < s.size(); ++i) s[i] = static_cast<char>(i * 31 + 5);
  return s;
}

// A key pair in `dir` (name, name.pub) and its loaded signing key.
std::shared_ptr<const SigningKey> make_key(const std::string& dir, const std::string& name, const std::string& comment) {
  std::string error;
  EXPECT_TRUE(take(generate_signing_key(dir + "/" + name, comment), &error).comment == comment) << error;
  auto key = take(SigningKey::load(dir + "/" + name), &error);
  EXPECT_NE(key, nullptr) << error;
  return key;
}

TrustedKeys trusting(const std::vector<std::shared_ptr<const SigningKey>>& keys) {
  TrustedKeys t;
  t.path = "test-keys";
  for (const auto& k : keys) t.keys.push_back(k->public_key());
  return t;
}

// Opens bytes requiring a signature by one of `keys`; "" when accepted, else the message.
std::string open_trusting(const std::string& bytes, const TrustedKeys& keys) {
  std::string error;
  auto b = take(Bundle::from_bytes("b.ingot", bytes, BundleOpenOptions{.check_cpu = false, .tier = {}, .trusted_keys = &keys}),
                &error);
  if (b) return "";
  return error.empty() ? "refused without a message" : error;
}

// Recomputes the SHA-256 of every section in the table (as someone editing a bundle would).
std::string rehash(std::string bytes) {
  const uint32_t n = bundle::get_u32(reinterpret_cast<const uint8_t*>(bytes.data()) + 12);
  for (uint32_t i = 0; i < n && bundle::FileHeader::kSize + (i + 1) * bundle::SectionEntry::kSize <= bytes.size(); ++i) {
    const size_t at = bundle::FileHeader::kSize + i * bundle::SectionEntry::kSize;
    const bundle::SectionEntry e = bundle::decode_section(reinterpret_cast<const uint8_t*>(bytes.data()) + at);
    if (e.offset > bytes.size() || e.size > bytes.size() - e.offset) continue;
    const Sha256::Digest d = Sha256::hash(bytes.data() + e.offset, e.size);
    bytes.replace(at + 24, 32, std::string(d.begin(), d.end()));
  }
  return bytes;
}

// ---------------------------------------------------------------- keys

TEST(Signature, PublicKeyLinesAndTrustedKeysFiles) {
  PublicKey k;
  for (size_t i = 0; i < 32; ++i) k.key[i] = static_cast<uint8_t>(i * 9);
  k.comment = "alice@build host";
  const std::string line = format_public_key(k);
  EXPECT_EQ(line.rfind("ingot-ed25519 ", 0), 0u) << line;
  std::string error;
  PublicKey back = take(parse_public_key(line + "\n"), &error);
  EXPECT_EQ(error, "");
  EXPECT_EQ(back.key, k.key);
  EXPECT_EQ(back.comment, "alice@build host");
  EXPECT_EQ(key_fingerprint(k.key).rfind("SHA256:", 0), 0u);
  EXPECT_EQ(key_fingerprint(k.key).size(), 7u + 43u);
  // Not a key: another type, a short key, bad base64.
  for (const std::string& bad : {"ssh-ed25519 " + line.substr(14), std::string("ingot-ed25519 AAAA c"),
                                "ingot-ed25519 " + line.substr(14, 43) + "! c", std::string("ingot-ed25519")}) {
    EXPECT_FALSE(parse_public_key(bad).ok()) << bad;
  }
  EXPECT_EQ(base64_decode("YWJj").value_or("?"), "abc");
  EXPECT_EQ(base64_decode("YWI=").value_or("?"), "ab");
  EXPECT_FALSE(base64_decode("YW=j").has_value());
  EXPECT_FALSE(base64_decode("YWJ").has_value());

  const std::string dir = make_temp_dir("sig_keys");
  write_file(dir + "/keys", "# trusted\n\n" + line + "\n  " + format_public_key(PublicKey{}) + "\n");
  TrustedKeys t = take(read_trusted_keys(dir + "/keys"), &error);
  ASSERT_EQ(t.keys.size(), 2u) << error;
  EXPECT_NE(t.find(k.key), nullptr);
  write_file(dir + "/bad", line + "\nnot a key\n");
  EXPECT_FALSE(read_trusted_keys(dir + "/bad").ok());
  EXPECT_NE(read_trusted_keys(dir + "/bad").message().find(dir + "/bad:2: not an Ingot public key"), std::string::npos)
      << read_trusted_keys(dir + "/bad").message();
  write_file(dir + "/empty", "# nothing\n");
  EXPECT_NE(read_trusted_keys(dir + "/empty").message().find("lists no key"), std::string::npos);
  EXPECT_EQ(read_trusted_keys(dir + "/missing").status().code(), StatusCode::io);
}

TEST(Signature, TrustedKeysComeFromTheOptionTheEnvironmentOrTheConfigFile) {
  const std::string dir = make_temp_dir("sig_cfg");
  const char* old_env = std::getenv("INGOT_TRUSTED_KEYS");
  const char* old_xdg = std::getenv("XDG_CONFIG_HOME");
  const std::string saved_env = old_env ? old_env : "", saved_xdg = old_xdg ? old_xdg : "";
  ::unsetenv("INGOT_TRUSTED_KEYS");
  ::setenv("XDG_CONFIG_HOME", dir.c_str(), 1);
  EXPECT_EQ(trusted_keys_path(""), "") << "no file: nothing required";
  ::mkdir((dir + "/ingot").c_str(), 0755);
  write_file(dir + "/ingot/trusted-keys", format_public_key(PublicKey{}) + "\n");
  EXPECT_EQ(trusted_keys_path(""), dir + "/ingot/trusted-keys");
  ::setenv("INGOT_TRUSTED_KEYS", "/from/env", 1);
  EXPECT_EQ(trusted_keys_path(""), "/from/env");
  EXPECT_EQ(trusted_keys_path("/from/option"), "/from/option");
  if (old_env) ::setenv("INGOT_TRUSTED_KEYS", saved_env.c_str(), 1);
  else ::unsetenv("INGOT_TRUSTED_KEYS");
  if (old_xdg) ::setenv("XDG_CONFIG_HOME", saved_xdg.c_str(), 1);
  else ::unsetenv("XDG_CONFIG_HOME");
}

// ---------------------------------------------------------------- every byte

// A signed bundle opens under its key; with any one byte changed anywhere (header, table, padding,
// every section, the signature itself), with or without the section hashes recomputed, it is
// refused. Where the file still parses the reason is the signature.
TEST(Signature, EveryChangedByteIsRefused) {
  const std::string dir = make_temp_dir("sig_bytes");
  auto key = make_key(dir, "k", "tester");
  ASSERT_NE(key, nullptr);
  BundleContents c = small_contents(not_elf_kernels());
  c.signing_key = key;
  const std::string path = dir + "/s.ingot";
  std::string error;
  ASSERT_TRUE(succeeded(write_bundle(path, c), &error)) << error;
  const std::string good = read_file(path);
  const TrustedKeys keys = trusting({key});
  ASSERT_EQ(open_trusting(good, keys), "");
  auto b = take(Bundle::from_bytes("b.ingot", good, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  ASSERT_NE(b, nullptr) << error;
  ASSERT_EQ(b->sections().size(), 4u);
  ASSERT_EQ(b->signature_section(), 3);
  EXPECT_TRUE(b->verify().ok()) << "the signature section has a correct SHA-256 too (older runtimes verify it)";
  const BundleSignatureCheck check = b->check_signature();
  EXPECT_EQ(check.state, BundleSignatureCheck::State::valid) << check.problem;
  EXPECT_EQ(check.signer.comment, "tester");
  EXPECT_EQ(check.signer.key, key->public_key().key);
  const BundleSection& sig = b->sections()[3];
  EXPECT_EQ(sig.offset + sig.size, good.size()) << "the signature ends the file";

  // Every byte of the file, one at a time.
  size_t refused = 0, by_signature = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] ^= 0x01;
    const std::string why = open_trusting(bad, keys);
    if (why.empty()) ADD_FAILURE() << "byte " << i << " changed, still accepted";
    refused += !why.empty();
    by_signature += why.find("bad signature") != std::string::npos;
  }
  EXPECT_EQ(refused, good.size());
  EXPECT_GT(by_signature, good.size() * 9 / 10) << "most changes leave a file that parses: the signature catches them";

  // Named places, with and without the section hashes recomputed.
  const size_t table = bundle::FileHeader::kSize;
  const size_t E = bundle::SectionEntry::kSize;
  const std::vector<std::pair<std::string, size_t>> places = {
      {"header flags", 16},
      {"header file size", 24},
      {"table: manifest kind", table},
      {"table: manifest reserved", table + 4},
      {"table: manifest hash", table + 24},
      {"table: kernels offset", table + E + 8},
      {"table: weights reserved2", table + 2 * E + 56},
      {"table: signature size", table + 3 * E + 16},
      {"table: signature hash", table + 3 * E + 24},
      {"padding after the table", table + 4 * E + 100},
      {"padding at the end of the first page", 4095},
      {"manifest", b->sections()[0].offset + 3},
      {"padding after the manifest", b->sections()[0].offset + b->sections()[0].size + 1},
      {"kernels", b->sections()[1].offset + 1000},
      {"padding after the kernels", b->sections()[1].offset + b->sections()[1].size + 7},
      {"weights", b->sections()[2].offset + 2000},
      {"padding after the weights", b->sections()[2].offset + b->sections()[2].size},
      {"signature magic", sig.offset},
      {"signature public key", sig.offset + 16 + 5},
      {"signature bytes", sig.offset + 48 + 30},
      {"signature comment length", sig.offset + 112},
      {"signature comment", sig.offset + bundle::kSignatureHeaderSize + 2},
      {"last byte", good.size() - 1},
  };
  for (const auto& [what, at] : places) {
    ASSERT_LT(at, good.size()) << what;
    std::string bad = good;
    bad[at] ^= 0x20;
    for (const std::string& variant : {bad, rehash(bad)}) {
      if (variant == good) continue;  // a changed hash field, recomputed: the change is undone
      const std::string why = open_trusting(variant, keys);
      EXPECT_NE(why, "") << what << " (byte " << at << ") changed, still accepted";
      EXPECT_EQ(why.rfind("b.ingot: ", 0), 0u) << why;
    }
  }
  // Content changes with hashes recomputed pass verify() but not the signature.
  std::string edited = good;
  edited[b->sections()[2].offset + 2000] ^= 0x20;
  edited = rehash(edited);
  auto e = take(Bundle::from_bytes("b.ingot", edited, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  ASSERT_NE(e, nullptr) << error;
  EXPECT_TRUE(e->verify().ok()) << "the section hashes were recomputed";
  EXPECT_NE(open_trusting(edited, keys).find("refused: bad signature"), std::string::npos) << open_trusting(edited, keys);
  // An empty set of keys trusts no one.
  EXPECT_NE(open_trusting(good, trusting({})).find("which is not a trusted key"), std::string::npos);
}

TEST(Signature, UnsignedAndOtherKeysAreRefused) {
  const std::string dir = make_temp_dir("sig_refuse");
  auto alice = make_key(dir, "alice", "alice"), bob = make_key(dir, "bob", "bob");
  BundleContents c = small_contents(not_elf_kernels());
  std::string error;
  ASSERT_TRUE(succeeded(write_bundle(dir + "/u.ingot", c), &error)) << error;
  const std::string unsigned_bytes = read_file(dir + "/u.ingot");
  EXPECT_NE(open_trusting(unsigned_bytes, trusting({alice})).find("b.ingot: refused: the bundle is not signed"), std::string::npos)
      << open_trusting(unsigned_bytes, trusting({alice}));
  c = small_contents(not_elf_kernels());
  c.signing_key = bob;
  ASSERT_TRUE(succeeded(write_bundle(dir + "/b.ingot", c), &error)) << error;
  const std::string by_bob = read_file(dir + "/b.ingot");
  EXPECT_NE(open_trusting(by_bob, trusting({alice})).find("b.ingot: refused: signed by 'bob' (SHA256:"), std::string::npos)
      << open_trusting(by_bob, trusting({alice}));
  EXPECT_EQ(open_trusting(by_bob, trusting({alice, bob})), "");
  // Without trusted keys both open (an old bundle format without a signature still loads).
  EXPECT_NE(take(Bundle::from_bytes("u.ingot", unsigned_bytes, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error),
            nullptr) << error;
  EXPECT_NE(take(Bundle::from_bytes("b.ingot", by_bob, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error), nullptr)
      << error;
  // ingotc sign replaces bob's signature with alice's: one signature section, alice's.
  ASSERT_EQ(run(kIngotc + " sign " + dir + "/b.ingot --key " + dir + "/alice").status, 0);
  const std::string by_alice = read_file(dir + "/b.ingot");
  EXPECT_EQ(open_trusting(by_alice, trusting({alice})), "");
  EXPECT_NE(open_trusting(by_alice, trusting({bob})).find("signed by 'alice'"), std::string::npos);
  auto b = take(Bundle::from_bytes("b.ingot", by_alice, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_EQ(b->sections().size(), 4u);
}

// ---------------------------------------------------------------- the commands

// keygen writes a 0600 PEM key and a one-line KEY.pub and never replaces a key; compile --sign and
// compile + sign give the same bytes; a signed bundle verifies, describes and runs with its key
// trusted; run, bench and verify refuse unsigned and untrusted bundles; info reports them.
TEST(SignatureCommands, KeygenSignVerifyRun) {
  const std::string dir = make_temp_dir("sig_cli");
  const std::string key = dir + "/k", other = dir + "/other";
  CmdResult kg = run(kIngotc + " keygen -o " + key + " --comment 'alice@ci'");
  ASSERT_EQ(kg.status, 0) << kg.out;
  struct stat st;
  ASSERT_EQ(::stat(key.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_file(key).rfind("-----BEGIN PRIVATE KEY-----", 0), 0u);
  const std::string pub = read_file(key + ".pub");
  EXPECT_EQ(pub.rfind("ingot-ed25519 ", 0), 0u) << pub;
  EXPECT_NE(pub.find(" alice@ci\n"), std::string::npos) << pub;
  EXPECT_EQ(std::count(pub.begin(), pub.end(), '\n'), 1);
  const std::string private_pem = read_file(key);
  CmdResult again = run(kIngotc + " keygen -o " + key);
  EXPECT_EQ(again.status, 1) << again.out;
  EXPECT_NE(again.out.find(key + ": exists; not replaced"), std::string::npos) << again.out;
  EXPECT_EQ(read_file(key), private_pem);
  ASSERT_EQ(run(kIngotc + " keygen -o " + other + " --comment mallory").status, 0);
  EXPECT_EQ(run(kIngotc + " keygen").status, 2);
  EXPECT_NE(run(kIngotc + " keygen --help").out.find("ingotc keygen -o KEY"), std::string::npos);
  EXPECT_NE(run(kIngotc + " sign --help").out.find("ingotc sign BUNDLE --key KEY"), std::string::npos);

  const std::string u = dir + "/u.ingot", s = dir + "/s.ingot", s2 = dir + "/s2.ingot";
  std::string error_text;
  CmdResult cu = run(kIngotc + " compile demo --target native -o " + u);
  ASSERT_EQ(cu.status, 0) << cu.out;
  CmdResult cs = run(kIngotc + " compile demo --target native --sign " + key + " -o " + s);
  ASSERT_EQ(cs.status, 0) << cs.out;
  EXPECT_NE(cs.out.find("signed by 'alice@ci' (SHA256:"), std::string::npos) << cs.out;
  EXPECT_EQ(run(kIngotc + " compile demo --sign " + key).status, 2) << "--sign needs -o";
  CmdResult badkey = run(kIngotc + " compile demo --target native --sign " + key + ".pub -o " + dir + "/x.ingot");
  EXPECT_EQ(badkey.status, 1) << badkey.out;
  EXPECT_NE(badkey.out.find(key + ".pub: not a PEM private key"), std::string::npos) << badkey.out;
  write_file(s2, read_file(u));
  CmdResult sg = run(kIngotc + " sign " + s2 + " --key " + key);
  ASSERT_EQ(sg.status, 0) << sg.out;
  EXPECT_TRUE(read_file(s2) == read_file(s)) << "compile --sign and sign give different bytes";
  EXPECT_EQ(run("ls " + dir + " | grep -c tmp").out, "0\n") << "no temporary file left";

  // Trusted: verify, info, run, bench.
  const std::string trust = " --trusted-keys " + key + ".pub";
  CmdResult v = run(kCleanEnv + kIngot + " verify " + s + trust);
  EXPECT_EQ(v.status, 0) << v.out;
  EXPECT_NE(v.out.find(s + ": signature: by 'alice@ci' (SHA256:"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("valid (checked in"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("signer trusted (" + key + ".pub)"), std::string::npos) << v.out;
  CmdResult i = run(kCleanEnv + kIngot + " info " + s + trust);
  EXPECT_EQ(i.status, 0) << i.out;
  EXPECT_NE(i.out.find("signature: by 'alice@ci'"), std::string::npos) << i.out;
  CmdResult r = run(kCleanEnv + kIngot + " run " + s + " -p Hi -n 2 --temp 0 --json" + trust);
  EXPECT_EQ(r.status, 0) << r.out;
  CmdResult be = run(kCleanEnv + kIngot + " bench " + s + " -p 4 -n 2 -t 1 -r 1" + trust);
  EXPECT_EQ(be.status, 0) << be.out;

  // Unsigned, or signed by a key not trusted: refused by run, bench and verify, reported by info.
  for (const std::string& bundle : {u, s}) {
    const std::string t = bundle == u ? trust : " --trusted-keys " + other + ".pub";
    const std::string reason = bundle == u ? bundle + ": refused: the bundle is not signed"
                                           : bundle + ": refused: signed by 'alice@ci' (SHA256:";
    for (const std::string& cmd : {" run " + bundle + " -p Hi -n 2", " bench " + bundle + " -p 4 -n 2 -t 1 -r 1",
                                  " verify " + bundle, " perplexity " + bundle + " -f " + key + ".pub"}) {
      CmdResult x = run(kCleanEnv + kIngot + cmd + t);
      EXPECT_EQ(x.status, 1) << cmd << "\n" << x.out;
      EXPECT_NE(x.out.find(reason), std::string::npos) << cmd << "\n" << x.out;
    }
    CmdResult info = run(kCleanEnv + kIngot + " info " + bundle + t);
    EXPECT_EQ(info.status, 0) << info.out;
    EXPECT_NE(info.out.find(bundle == u ? "signature: none (the bundle is unsigned"
                                        : "valid (checked in"),
              std::string::npos) << info.out;
    if (bundle == s)
      EXPECT_NE(info.out.find("; signer NOT trusted (not in " + other + ".pub)"), std::string::npos) << info.out;
  }
  // A signed bundle edited with its section hashes recomputed: verify fails even without trusted
  // keys (a signature that does not hold means changed bytes); info reports it.
  {
    auto sb = take(Bundle::open(s, BundleOpenOptions{.check_cpu = false, .tier = {}}), &error_text);
    ASSERT_NE(sb, nullptr) << error_text;
    std::string edited = read_file(s);
    edited[sb->find_section(bundle::SectionKind::weights)->offset + 100] ^= 0x04;
    write_file(dir + "/edited.ingot", rehash(edited));
    CmdResult ve = run(kCleanEnv + kIngot + " verify " + dir + "/edited.ingot");
    EXPECT_EQ(ve.status, 1) << ve.out;
    EXPECT_NE(ve.out.find("SHA-256 ok"), std::string::npos) << ve.out;
    EXPECT_NE(ve.out.find(dir + "/edited.ingot: bad signature: the signature does not match the bundle"), std::string::npos)
        << ve.out;
    CmdResult ie = run(kCleanEnv + kIngot + " info " + dir + "/edited.ingot");
    EXPECT_EQ(ie.status, 0) << ie.out;
    EXPECT_NE(ie.out.find("signature: by 'alice@ci' (SHA256:"), std::string::npos) << ie.out;
    EXPECT_NE(ie.out.find("INVALID: the signature does not match the bundle"), std::string::npos) << ie.out;
  }
  // Without any trusted keys both run; info says so.
  EXPECT_EQ(run(kCleanEnv + kIngot + " run " + u + " -p Hi -n 2").status, 0);
  EXPECT_NE(run(kCleanEnv + kIngot + " info " + s).out.find("valid (checked in"), std::string::npos);
  EXPECT_NE(run(kCleanEnv + kIngot + " info " + s).out.find("no trusted keys given"), std::string::npos);

  // The environment variable and the config file apply when no option is given; the option wins.
  const std::string cfg = dir + "/cfg";
  ::mkdir(cfg.c_str(), 0755);
  ::mkdir((cfg + "/ingot").c_str(), 0755);
  write_file(cfg + "/ingot/trusted-keys", "# ours\n" + pub);
  CmdResult by_config = run("env -u INGOT_TRUSTED_KEYS XDG_CONFIG_HOME=" + cfg + " " + kIngot + " run " + u + " -p Hi -n 2");
  EXPECT_EQ(by_config.status, 1) << by_config.out;
  EXPECT_NE(by_config.out.find("(trusted keys: " + cfg + "/ingot/trusted-keys)"), std::string::npos) << by_config.out;
  EXPECT_EQ(run("env -u INGOT_TRUSTED_KEYS XDG_CONFIG_HOME=" + cfg + " " + kIngot + " run " + s + " -p Hi -n 2").status, 0);
  CmdResult by_env = run("INGOT_TRUSTED_KEYS=" + other + ".pub XDG_CONFIG_HOME=" + cfg + " " + kIngot + " run " + s + " -p Hi -n 2");
  EXPECT_EQ(by_env.status, 1) << by_env.out;
  EXPECT_NE(by_env.out.find("which is not a trusted key (trusted keys: " + other + ".pub)"), std::string::npos) << by_env.out;
  EXPECT_EQ(run("INGOT_TRUSTED_KEYS=" + other + ".pub " + kIngot + " run " + s + " -p Hi -n 2" + trust).status, 0);
  CmdResult missing = run(kCleanEnv + kIngot + " run " + s + " -p Hi -n 2 --trusted-keys " + dir + "/nope");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find(dir + "/nope: cannot open the trusted-keys file"), std::string::npos) << missing.out;
  EXPECT_EQ(run(kIngot + " run " + s + " -p Hi --trusted-keys").status, 2);

  // The C API takes the file as a load parameter.
  ingot_load_params p;
  ingot_load_params_default(&p);
  EXPECT_EQ(p.trusted_keys, nullptr);
  const std::string pub_path = key + ".pub";
  p.trusted_keys = pub_path.c_str();
  ingot_model* model = nullptr;
  ASSERT_EQ(ingot_model_load_with(s.c_str(), &p, &model), INGOT_OK) << ingot_last_error();
  ingot_model_free(model);
  model = nullptr;
  EXPECT_EQ(ingot_model_load_with(u.c_str(), &p, &model), INGOT_ERR_LOAD);
  EXPECT_EQ(model, nullptr);
  if (model) ingot_model_free(model);
  EXPECT_NE(std::string(ingot_last_error()).find(u + ": refused: the bundle is not signed"), std::string::npos)
      << ingot_last_error();
}

// ---------------------------------------------------------------- verify loads no code

// `ingot verify` reads bytes only: a kernels section that is no shared object at all (the loader
// would refuse it) still verifies, and verify says the kernels were not loaded.
TEST(SignatureCommands, VerifyLoadsNoCode) {
  const std::string dir = make_temp_dir("sig_noload");
  BundleContents c = small_contents(not_elf_kernels());
  const std::string path = dir + "/junk-kernels.ingot";
  std::string error;
  ASSERT_TRUE(succeeded(write_bundle(path, c), &error)) << error;
  auto b = take(Bundle::open(path), &error);
  ASSERT_NE(b, nullptr) << error;
  EXPECT_EQ(take(b->load_kernels(), &error), nullptr) << "these kernels are not loadable";
  // verify inspects the object's bytes as the loader would before dlopen: not ELF, refused.
  CmdResult v = run(kCleanEnv + kIngot + " verify " + path);
  EXPECT_EQ(v.status, 1) << v.out;
  EXPECT_NE(v.out.find(path + ": 3 sections, SHA-256 ok"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find("the kernels object is refused: not an ELF file"), std::string::npos) << v.out;
  EXPECT_NE(v.out.find(path + ": signature: none"), std::string::npos) << v.out;
}

// ---------------------------------------------------------------- integrity on every load

// Every load checks the manifest's and the chosen kernels section's SHA-256, without --verify; the
// weights only with --verify.
TEST(SignatureCommands, EveryLoadChecksTheKernelsAndManifestHashes) {
  const std::string dir = make_temp_dir("sig_load");
  const std::string good = dir + "/good.ingot";
  CmdResult c = run(kIngotc + " compile demo --target native -o " + good);
  ASSERT_EQ(c.status, 0) << c.out;
  std::string error;
  auto b = take(Bundle::open(good), &error);
  ASSERT_NE(b, nullptr) << error;
  const std::string bytes = read_file(good);
  auto flipped = [&](bundle::SectionKind kind, const std::string& name) {
    const BundleSection* s = b->find_section(kind);
    EXPECT_NE(s, nullptr);
    std::string bad = bytes;
    bad[s->offset + s->size / 2] ^= 0x01;
    write_file(dir + "/" + name, bad);
    return std::pair<std::string, size_t>(dir + "/" + name, size_t(s - b->sections().data()));
  };
  const auto [kernels, ki] = flipped(bundle::SectionKind::kernels, "kernels.ingot");
  CmdResult r = run(kCleanEnv + kIngot + " run " + kernels + " -p Hi -n 2");
  EXPECT_EQ(r.status, 1) << r.out;
  EXPECT_NE(r.out.find(kernels + ": section " + std::to_string(ki) + " (kernels) is corrupt"), std::string::npos) << r.out;
  EXPECT_EQ(take(Engine::load(kernels), &error), nullptr);
  EXPECT_NE(error.find("(kernels) is corrupt"), std::string::npos) << error;

  // A manifest byte changed where it still parses (the graph text).
  const BundleSection* ms = b->find_section(bundle::SectionKind::manifest);
  const size_t g = bytes.find("FusedMatMul", ms->offset);
  ASSERT_NE(g, std::string::npos);
  std::string bad = bytes;
  bad[g] = 'f';
  write_file(dir + "/manifest.ingot", bad);
  CmdResult rm = run(kCleanEnv + kIngot + " run " + dir + "/manifest.ingot -p Hi -n 2");
  EXPECT_EQ(rm.status, 1) << rm.out;
  EXPECT_NE(rm.out.find("manifest.ingot: section 0 (manifest) is corrupt"), std::string::npos) << rm.out;

  // Weights: not read on load (they are large), caught with --verify.
  const auto [weights, wi] = flipped(bundle::SectionKind::weights, "weights.ingot");
  EXPECT_EQ(run(kCleanEnv + kIngot + " run " + weights + " -p Hi -n 2").status, 0);
  CmdResult rv = run(kCleanEnv + kIngot + " run " + weights + " -p Hi -n 2 --verify");
  EXPECT_EQ(rv.status, 1) << rv.out;
  EXPECT_NE(rv.out.find("section " + std::to_string(wi) + " (weights) is corrupt"), std::string::npos) << rv.out;
}

}  // namespace
}  // namespace ingot
