// Sessions on a real bundle (stories260K compiled by ingotc): greedy generation against
// reference.json, save/restore/continue, two sessions in two threads, chunked prefill, errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "runtime/cpu_features.h"
#include "runtime/engine.h"
#include "runtime/ingot.h"
#include "tests/common/bundle_cache.h"
#include "tests/common/files.h"
#include "tests/common/status.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

class EngineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const char* env = std::getenv("INGOT_MODELS");
    const std::string models = env ? env : INGOT_DEFAULT_MODELS_DIR;
    model_ = models + "/stories260K.gguf";
    if (!std::ifstream(model_)) return;
    dir_ = testing::make_temp_dir("ingot-engine");
    // --max-batch 4: prompts longer than 4 tokens run in several chunks. Two tiers (one if this
    // host's best is x86-64-v3): a tier can be forced.
    bundle_ = testing::cached_bundle(INGOT_INGOTC, model_, "--max-batch 4 --target x86-64-v3,native");
    ASSERT_FALSE(bundle_.empty());
    std::ifstream ref(models + "/reference.json");
    reference_ = nlohmann::json::parse(ref)["models"]["stories260K.gguf"]["runs"];
  }
  void SetUp() override {
    INGOT_MODEL_PATH(path, "stories260K.gguf");
    (void)path;
    std::string error;
    engine_ = take(Engine::load(bundle_, EngineOptions{}), &error);
    ASSERT_TRUE(engine_) << error;
  }
  std::vector<int32_t> greedy(Session& s, const std::vector<int32_t>& prompt, int n) {
    GenerateOptions go;
    go.sampling.temperature = 0;
    go.max_new_tokens = n;
    go.stop_at_eos = false;
    std::vector<int32_t> out;
    std::string error;
    EXPECT_TRUE(succeeded(s.generate(prompt, go, &out, nullptr), &error)) << error;
    return out;
  }
  static inline std::string model_, dir_, bundle_;
  static inline nlohmann::json reference_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, GreedyIdsMatchLlamaCppWithChunkedPrefill) {
  std::string error;
  auto s = take(Session::create(*engine_, 2), &error);
  ASSERT_TRUE(s) << error;
  for (const auto& run : reference_) {
    s->reset();
    const auto prompt = run["prompt_ids"].get<std::vector<int32_t>>();
    const auto want = run["greedy_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(greedy(*s, prompt, static_cast<int>(want.size())), want) << run["prompt"];
  }
}

TEST_F(EngineTest, WeightsInHugePagesGiveTheSameIds) {
  // The default maps the file; huge_pages reads it into transparent huge pages where the system
  // has them (else it maps too). INGOT_WEIGHTS overrides the option either way; a bad value is an
  // error that names it.
  EXPECT_EQ(engine_->bundle().residency(), BundleResidency::mapped);
  std::string error;
  EngineOptions in_huge_pages;
  in_huge_pages.huge_pages = true;
  auto huge = take(Engine::load(bundle_, in_huge_pages), &error);
  ASSERT_TRUE(huge) << error;
  EXPECT_EQ(huge->bundle().residency(), transparent_huge_pages_available() ? BundleResidency::huge_pages : BundleResidency::mapped);
  auto s = take(Session::create(*huge, 2), &error);
  ASSERT_TRUE(s) << error;
  for (const auto& run : reference_) {
    s->reset();
    const auto want = run["greedy_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(greedy(*s, run["prompt_ids"].get<std::vector<int32_t>>(), static_cast<int>(want.size())), want) << run["prompt"];
  }
  ::setenv("INGOT_WEIGHTS", "mapped", 1);
  auto mapped = take(Engine::load(bundle_, in_huge_pages), &error);
  ::setenv("INGOT_WEIGHTS", "copy", 1);
  auto bad = Engine::load(bundle_, EngineOptions{});
  ::unsetenv("INGOT_WEIGHTS");
  ASSERT_TRUE(mapped) << error;
  EXPECT_EQ(mapped->bundle().residency(), BundleResidency::mapped);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("INGOT_WEIGHTS=copy"), std::string::npos) << bad.status().message();
}

TEST_F(EngineTest, SaveRestoreContinueEqualsUninterrupted) {
  std::string error;
  const auto prompt = reference_[0]["prompt_ids"].get<std::vector<int32_t>>();
  auto a = take(Session::create(*engine_, 1), &error);
  const auto whole = greedy(*a, prompt, 40);

  auto b = take(Session::create(*engine_, 1), &error);
  const auto first = greedy(*b, prompt, 20);
  // generate() keeps the 20th token in the context (keep_last), as the whole run did.
  EXPECT_EQ(b->position(), static_cast<int64_t>(prompt.size() + first.size()));
  const std::string file = dir_ + "/session.bin";
  ASSERT_TRUE(succeeded(b->save(file), &error)) << error;
  auto c = take(Session::create(*engine_, 2), &error);
  ASSERT_TRUE(succeeded(c->restore(file), &error)) << error;
  EXPECT_EQ(c->position(), b->position());
  // Continue from the restored logits: sample greedily token by token.
  std::vector<int32_t> rest;
  for (int i = 0; i < 20; ++i) {
    auto l = c->logits();
    const int32_t next = static_cast<int32_t>(std::max_element(l.begin(), l.end()) - l.begin());
    rest.push_back(next);
    ASSERT_TRUE(succeeded(c->decode(next), &error)) << error;
  }
  std::vector<int32_t> joined = first;
  joined.insert(joined.end(), rest.begin(), rest.end());
  EXPECT_EQ(joined, whole);
  // A corrupt or foreign file changes nothing and says why.
  std::ofstream(dir_ + "/junk.bin") << "junk";
  EXPECT_FALSE(succeeded(c->restore(dir_ + "/junk.bin"), &error));
  EXPECT_NE(error.find("not an Ingot session file"), std::string::npos) << error;
}

// Session files checked by fuzz_session: a file one byte too long or too short, or whose history
// holds a token outside the vocabulary, is refused with a message naming it, and the session
// that tried to restore it is unchanged.
TEST_F(EngineTest, CorruptSessionFilesAreRefusedAndChangeNothing) {
  std::string error;
  const auto prompt = reference_[0]["prompt_ids"].get<std::vector<int32_t>>();
  auto a = take(Session::create(*engine_, 1), &error);
  ASSERT_TRUE(a) << error;
  ASSERT_TRUE(succeeded(a->prefill(prompt), &error)) << error;
  const std::string good = dir_ + "/good.session";
  ASSERT_TRUE(succeeded(a->save(good), &error)) << error;
  std::ifstream in(good, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto b = take(Session::create(*engine_, 1), &error);
  ASSERT_TRUE(succeeded(b->prefill(std::vector<int32_t>{1, 2, 3}), &error)) << error;
  const std::vector<float> logits(b->logits().begin(), b->logits().end());
  std::string bad_id = bytes;
  const int32_t vocab = static_cast<int32_t>(engine_->vocab());
  std::memcpy(bad_id.data() + 40, &vocab, 4);  // the first history token
  const struct {
    const char* name;
    std::string bytes;
    const char* expect;
  } cases[] = {
      {"longer", bytes + "x", "corrupt session file"},
      {"shorter", bytes.substr(0, bytes.size() - 1), "truncated session file"},
      {"id_outside_vocabulary", bad_id, "outside the vocabulary"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string file = dir_ + "/" + c.name + ".session";
    std::ofstream(file, std::ios::binary) << c.bytes;
    EXPECT_FALSE(succeeded(b->restore(file), &error));
    EXPECT_NE(error.find(file + ": "), std::string::npos) << error;
    EXPECT_NE(error.find(c.expect), std::string::npos) << error;
    EXPECT_EQ(b->position(), 3);
    EXPECT_EQ(b->history(), (std::vector<int32_t>{1, 2, 3}));
    EXPECT_TRUE(std::equal(logits.begin(), logits.end(), b->logits().begin(), b->logits().end()));
  }
  EXPECT_TRUE(succeeded(b->restore(good), &error)) << error;
  EXPECT_EQ(b->history(), prompt);
}

TEST_F(EngineTest, TwoSessionsInTwoThreadsMatchEachAlone) {
  std::string error;
  const auto p0 = reference_[0]["prompt_ids"].get<std::vector<int32_t>>();
  const auto p1 = reference_[1]["prompt_ids"].get<std::vector<int32_t>>();
  auto solo = take(Session::create(*engine_, 1), &error);
  const auto a = greedy(*solo, p0, 50);
  solo->reset();
  const auto b = greedy(*solo, p1, 50);
  std::vector<int32_t> ra, rb;
  std::thread t0([&] {
    std::string e;
    auto s = take(Session::create(*engine_, 1), &e);
    ra = greedy(*s, p0, 50);
  });
  std::thread t1([&] {
    std::string e;
    auto s = take(Session::create(*engine_, 2), &e);
    rb = greedy(*s, p1, 50);
  });
  t0.join();
  t1.join();
  EXPECT_EQ(ra, a);
  EXPECT_EQ(rb, b);
}

TEST_F(EngineTest, ErrorsChangeNothing) {
  std::string error;
  auto s = take(Session::create(*engine_, 1), &error);
  ASSERT_TRUE(succeeded(s->prefill(std::vector<int32_t>{1, 2, 3}), &error));
  EXPECT_FALSE(succeeded(s->prefill(std::vector<int32_t>{5, 9999}), &error));
  EXPECT_NE(error.find("outside the vocabulary"), std::string::npos) << error;
  std::vector<int32_t> huge(static_cast<size_t>(engine_->max_context()), 5);
  EXPECT_FALSE(succeeded(s->prefill(huge), &error));
  EXPECT_NE(error.find("context is full"), std::string::npos) << error;
  EXPECT_EQ(s->position(), 3);
}

TEST_F(EngineTest, CApiGeneratesTheSameGreedyText) {
  ingot_model* model = nullptr;
  ASSERT_EQ(ingot_model_load(bundle_.c_str(), 1, &model), INGOT_OK) << ingot_last_error();
  ingot_session* session = nullptr;
  ASSERT_EQ(ingot_session_create(model, 2, &session), INGOT_OK) << ingot_last_error();
  ingot_sampling s;
  ingot_sampling_default(&s);
  s.temperature = 0;
  std::vector<int32_t> ids;
  auto collect = [](int32_t id, const char*, void* user) {
    static_cast<std::vector<int32_t>*>(user)->push_back(id);
    return 0;
  };
  const std::string prompt = reference_[0]["prompt"];
  ASSERT_EQ(ingot_generate(session, prompt.c_str(), &s, 30, collect, &ids), INGOT_OK) << ingot_last_error();
  auto want = reference_[0]["greedy_ids"].get<std::vector<int32_t>>();
  want.resize(ids.size());
  EXPECT_EQ(ids, want);
  EXPECT_EQ(ingot_session_decode(session, 100000), INGOT_ERR_INVALID_ARGUMENT);
  // The codes come from the runtime's StatusCode, not from the message: a prompt longer than the
  // context is CONTEXT_FULL whatever its message says, a bad session file IO.
  std::vector<int32_t> huge(static_cast<size_t>(ingot_model_context_length(model)), 5);
  EXPECT_EQ(ingot_session_prefill(session, huge.data(), static_cast<int32_t>(huge.size())), INGOT_ERR_CONTEXT_FULL)
      << ingot_last_error();
  std::ofstream(dir_ + "/not-a-session.bin") << "junk";
  EXPECT_EQ(ingot_session_restore(session, (dir_ + "/not-a-session.bin").c_str()), INGOT_ERR_IO) << ingot_last_error();
  ingot_session_free(session);
  ingot_model_free(model);
}

// Continuing a session through the C API never loses or repeats a token: generate(prompt, 7)
// then generate("", 9) then generate(" and", 6) equals one greedy run over the same tokens fed at
// once (the history, then its logits' argmax), and positions count every token. A context that
// fills up stops with INGOT_ERR_CONTEXT_FULL and the context-full stop reason.
TEST_F(EngineTest, CApiContinuedGenerationEqualsTheHistoryFedAtOnce) {
  ingot_model* model = nullptr;
  ASSERT_EQ(ingot_model_load(bundle_.c_str(), 0, &model), INGOT_OK) << ingot_last_error();
  ingot_session* session = nullptr;
  ASSERT_EQ(ingot_session_create(model, 1, &session), INGOT_OK) << ingot_last_error();
  ingot_sampling s;
  ingot_sampling_default(&s);
  s.temperature = 0;
  std::vector<int32_t> got;
  auto collect = [](int32_t id, const char*, void* user) {
    static_cast<std::vector<int32_t>*>(user)->push_back(id);
    return 0;
  };
  ingot_generate_result r{};
  r.struct_size = sizeof(r);
  const std::string prompt = reference_[0]["prompt"];
  ASSERT_EQ(ingot_generate_with(session, prompt.c_str(), &s, 7, collect, &got, &r), INGOT_OK) << ingot_last_error();
  EXPECT_EQ(r.generated_tokens, 7);
  EXPECT_EQ(r.stop_reason, INGOT_STOP_LENGTH);
  const int64_t after_first = r.prompt_tokens + 7;
  EXPECT_EQ(ingot_session_position(session), after_first) << "the last generated token must be in the context";
  ASSERT_EQ(ingot_generate_with(session, "", &s, 9, collect, &got, &r), INGOT_OK) << ingot_last_error();
  EXPECT_EQ(ingot_session_position(session), after_first + 9);
  std::vector<int32_t> more(6);
  int32_t n_more = 0;
  ASSERT_EQ(ingot_tokenize(model, " and", 0, more.data(), 6, &n_more), INGOT_OK);
  ASSERT_EQ(ingot_generate_with(session, " and", &s, 6, collect, &got, &r), INGOT_OK) << ingot_last_error();
  EXPECT_EQ(ingot_session_position(session), after_first + 9 + n_more + 6);

  // The same tokens fed at once: the prompt, the first 16 generated ids and " and", then greedy.
  std::vector<int32_t> history(static_cast<size_t>(after_first - 7));
  int32_t n_prompt = 0;
  ASSERT_EQ(ingot_tokenize(model, prompt.c_str(), 1, history.data(), static_cast<int32_t>(history.size()), &n_prompt), INGOT_OK);
  history.insert(history.end(), got.begin(), got.begin() + 16);
  history.insert(history.end(), more.begin(), more.begin() + n_more);
  ingot_session* fresh = nullptr;
  ASSERT_EQ(ingot_session_create(model, 1, &fresh), INGOT_OK);
  std::vector<int32_t> want;
  for (size_t g = 0; g < 16; ++g) {  // the first 16 ids: greedy from the prompt
    ASSERT_EQ(ingot_session_prefill(fresh, g == 0 ? history.data() : &history[static_cast<size_t>(n_prompt) + g - 1],
                                    g == 0 ? n_prompt : 1), INGOT_OK);
    int32_t n_vocab = 0;
    const float* l = ingot_session_logits(fresh, &n_vocab);
    want.push_back(static_cast<int32_t>(std::max_element(l, l + n_vocab) - l));
  }
  ASSERT_EQ(ingot_session_prefill(fresh, &history[static_cast<size_t>(n_prompt) + 15], 1 + n_more), INGOT_OK);
  for (int g = 0; g < 6; ++g) {
    int32_t n_vocab = 0;
    const float* l = ingot_session_logits(fresh, &n_vocab);
    want.push_back(static_cast<int32_t>(std::max_element(l, l + n_vocab) - l));
    if (g < 5) ASSERT_EQ(ingot_session_decode(fresh, want.back()), INGOT_OK);
  }
  EXPECT_EQ(got, want);

  // Fill the context: the call reports it with its own status and stop reason.
  const int64_t room = ingot_model_context_length(model) - ingot_session_position(session);
  std::vector<int32_t> tail;
  EXPECT_EQ(ingot_generate_with(session, "", &s, static_cast<int32_t>(room + 10), collect, &tail, &r), INGOT_ERR_CONTEXT_FULL);
  EXPECT_EQ(r.stop_reason, INGOT_STOP_CONTEXT_FULL);
  EXPECT_NE(std::string(ingot_last_error()).find("the context is full"), std::string::npos) << ingot_last_error();
  EXPECT_EQ(ingot_session_position(session), ingot_model_context_length(model));
  ingot_session_free(fresh);
  ingot_session_free(session);
  ingot_model_free(model);
}

// Truncating forgets the tokens after n: continuing from there equals a session that never saw
// them (bitwise logits), and a position beyond the context held is refused.
TEST_F(EngineTest, TruncateForgetsTheTail) {
  std::string error;
  const auto prompt = reference_[0]["prompt_ids"].get<std::vector<int32_t>>();
  std::vector<int32_t> a_ids = prompt, b_ids = prompt;
  for (int32_t t : {100, 200, 300, 400, 5}) a_ids.push_back(t);
  for (int32_t t : {7, 8, 9}) b_ids.push_back(t);
  auto a = take(Session::create(*engine_, 1), &error);
  ASSERT_TRUE(succeeded(a->prefill(a_ids), &error)) << error;
  // b: the prompt, three tokens more, then back to the prompt (the same calls as c below, so the
  // same rounding: how tokens are split into calls may change the last bits of f32 kernels).
  auto b = take(Session::create(*engine_, 1), &error);
  ASSERT_TRUE(succeeded(b->prefill(prompt), &error)) << error;
  ASSERT_TRUE(succeeded(b->prefill(std::vector<int32_t>(b_ids.begin() + static_cast<long>(prompt.size()), b_ids.end())), &error)) << error;
  ASSERT_TRUE(succeeded(b->truncate(static_cast<int64_t>(prompt.size())), &error)) << error;
  EXPECT_EQ(b->position(), static_cast<int64_t>(prompt.size()));
  EXPECT_EQ(b->history(), prompt);
  ASSERT_TRUE(succeeded(b->prefill(std::vector<int32_t>(a_ids.begin() + static_cast<long>(prompt.size()), a_ids.end())), &error)) << error;
  // The reference: the same calls (the prompt, then the five) without the dropped three.
  auto c = take(Session::create(*engine_, 1), &error);
  ASSERT_TRUE(succeeded(c->prefill(prompt), &error)) << error;
  ASSERT_TRUE(succeeded(c->prefill(std::vector<int32_t>(a_ids.begin() + static_cast<long>(prompt.size()), a_ids.end())), &error)) << error;
  ASSERT_EQ(c->logits().size(), b->logits().size());
  EXPECT_TRUE(std::equal(c->logits().begin(), c->logits().end(), b->logits().begin()));
  // And within rounding of one call over all of them (calls split the tokens differently).
  double diff = 0;
  for (size_t i = 0; i < a->logits().size(); ++i) diff = std::max(diff, std::abs(double(a->logits()[i]) - b->logits()[i]));
  EXPECT_LT(diff, 1e-3);
  EXPECT_FALSE(succeeded(b->truncate(b->position() + 1), &error));
  EXPECT_NE(error.find("cannot keep"), std::string::npos) << error;
}

// The C API's sampler: greedy picks the argmax of the session's logits; a seeded sampler repeats
// its choices; bad arguments are errors, not crashes.
TEST_F(EngineTest, CApiSamplerFollowsTheSessionsLogits) {
  ingot_model* model = nullptr;
  ASSERT_EQ(ingot_model_load(bundle_.c_str(), 0, &model), INGOT_OK) << ingot_last_error();
  ingot_session* session = nullptr;
  ASSERT_EQ(ingot_session_create(model, 1, &session), INGOT_OK);
  ingot_sampling s;
  ingot_sampling_default(&s);
  s.temperature = 0;
  ingot_sampler* greedy = nullptr;
  ASSERT_EQ(ingot_sampler_create(&s, &greedy), INGOT_OK);
  int32_t id = -1;
  EXPECT_EQ(ingot_sampler_sample(greedy, session, &id), INGOT_ERR_INVALID_ARGUMENT) << "nothing prefilled yet";
  const auto prompt = reference_[0]["prompt_ids"].get<std::vector<int32_t>>();
  ASSERT_EQ(ingot_session_prefill(session, prompt.data(), static_cast<int32_t>(prompt.size())), INGOT_OK);
  ASSERT_EQ(ingot_sampler_sample(greedy, session, &id), INGOT_OK);
  int32_t n_vocab = 0;
  const float* l = ingot_session_logits(session, &n_vocab);
  EXPECT_EQ(id, static_cast<int32_t>(std::max_element(l, l + n_vocab) - l));
  EXPECT_EQ(id, reference_[0]["greedy_ids"][0].get<int32_t>());

  s.temperature = 1.0f;
  s.seed = 42;
  auto run = [&](uint64_t seed) {
    s.seed = seed;
    ingot_sampler* sm = nullptr;
    EXPECT_EQ(ingot_sampler_create(&s, &sm), INGOT_OK);
    ingot_session_reset(session);
    EXPECT_EQ(ingot_session_prefill(session, prompt.data(), static_cast<int32_t>(prompt.size())), INGOT_OK);
    std::vector<int32_t> ids;
    for (int i = 0; i < 12; ++i) {
      int32_t next = -1;
      EXPECT_EQ(ingot_sampler_sample(sm, session, &next), INGOT_OK);
      ids.push_back(next);
      EXPECT_EQ(ingot_session_decode(session, next), INGOT_OK);
    }
    ingot_sampler_free(sm);
    return ids;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
  s.temperature = -1;
  ingot_sampler* bad = nullptr;
  EXPECT_EQ(ingot_sampler_create(&s, &bad), INGOT_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(bad, nullptr);
  EXPECT_EQ(ingot_sampler_sample(nullptr, session, &id), INGOT_ERR_INVALID_ARGUMENT);
  ingot_sampler_free(greedy);
  ingot_session_free(session);
  ingot_model_free(model);
}

// Chat through the C API: the template renders (a short buffer reports the size needed), and a
// second turn reuses the whole first one from the session (only the new tokens are processed).
TEST_F(EngineTest, CApiChatTurnsReuseTheConversation) {
  ingot_model* model = nullptr;
  ASSERT_EQ(ingot_model_load(bundle_.c_str(), 0, &model), INGOT_OK) << ingot_last_error();
  const char* chatml =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
      "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
  const std::string one = R"([{"role": "user", "content": "Tell me about a cat."}])";
  size_t len = 0;
  char small[8];
  EXPECT_EQ(ingot_chat_apply_template(model, one.c_str(), 1, chatml, small, sizeof(small), &len), INGOT_ERR_BUFFER_TOO_SMALL);
  std::string text(len + 1, '\0');
  ASSERT_EQ(ingot_chat_apply_template(model, one.c_str(), 1, chatml, text.data(), text.size(), &len), INGOT_OK) << ingot_last_error();
  text.resize(len);
  EXPECT_EQ(text, "<|im_start|>user\nTell me about a cat.<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(ingot_chat_apply_template(model, one.c_str(), 1, nullptr, text.data(), text.size(), &len), INGOT_ERR_INVALID_ARGUMENT)
      << "this bundle keeps no template";
  EXPECT_NE(std::string(ingot_last_error()).find("no chat template"), std::string::npos) << ingot_last_error();
  EXPECT_EQ(ingot_chat_apply_template(model, "[{", 1, chatml, text.data(), text.size(), &len), INGOT_ERR_INVALID_ARGUMENT);

  ingot_session* session = nullptr;
  ASSERT_EQ(ingot_session_create(model, 1, &session), INGOT_OK);
  ingot_sampling s;
  ingot_sampling_default(&s);
  s.temperature = 0;
  std::string reply;
  auto collect = [](int32_t, const char* piece, void* user) {
    *static_cast<std::string*>(user) += piece;
    return 0;
  };
  ingot_generate_result r{};
  r.struct_size = sizeof(r);
  ASSERT_EQ(ingot_chat_turn(session, one.c_str(), chatml, &s, 12, collect, &reply, &r), INGOT_OK) << ingot_last_error();
  EXPECT_GT(r.generated_tokens, 0);
  EXPECT_EQ(r.reused_tokens, 0);
  const int32_t first_prompt = r.prompt_tokens;
  const int64_t after_first = ingot_session_position(session);
  EXPECT_GE(after_first, r.prompt_tokens + r.generated_tokens);
  nlohmann::json two = nlohmann::json::parse(one);
  size_t start = reply.find_first_not_of(" \n");
  two.push_back({{"role", "assistant"}, {"content", start == std::string::npos ? "" : reply.substr(start)}});
  two.push_back({{"role", "user"}, {"content", "And then?"}});
  std::string reply2;
  ASSERT_EQ(ingot_chat_turn(session, two.dump().c_str(), chatml, &s, 12, collect, &reply2, &r), INGOT_OK) << ingot_last_error();
  // The first turn's prompt and reply were reused (the reply's text re-tokenized may differ from
  // the sampled tokens in its last one or two), only the new message and prompt processed.
  EXPECT_GE(r.reused_tokens, first_prompt) << "the first turn was processed again";
  EXPECT_GE(r.reused_tokens, after_first - 2);
  EXPECT_LT(r.reused_tokens, r.prompt_tokens);
  ingot_session_free(session);
  ingot_model_free(model);
}

// Options travel in structs that carry their size: a caller built against an older, shorter
// struct still works (the fields it does not know keep their defaults), and NULL means defaults.
TEST_F(EngineTest, CApiParameterStructsKeepTheAbi) {
  ingot_model* model = nullptr;
  ASSERT_EQ(ingot_model_load_with(bundle_.c_str(), nullptr, &model), INGOT_OK) << ingot_last_error();
  ingot_model_free(model);
  ingot_load_params p;
  ingot_load_params_default(&p);
  EXPECT_EQ(p.struct_size, sizeof(ingot_load_params));
  EXPECT_EQ(p.verify, 0);
  p.verify = 1;
  ASSERT_EQ(ingot_model_load_with(bundle_.c_str(), &p, &model), INGOT_OK) << ingot_last_error();
  ingot_model_free(model);
  struct OlderParams {
    uint32_t struct_size;  // knew no fields yet
  } older{sizeof(OlderParams)};
  ASSERT_EQ(ingot_model_load_with(bundle_.c_str(), reinterpret_cast<const ingot_load_params*>(&older), &model), INGOT_OK)
      << ingot_last_error();
  ingot_model_free(model);
  ASSERT_EQ(ingot_model_load_with(bundle_.c_str(), nullptr, &model), INGOT_OK) << ingot_last_error();
  ingot_session_params sp;
  ingot_session_params_default(&sp);
  EXPECT_EQ(sp.threads, 1);
  sp.threads = 2;
  ingot_session* session = nullptr;
  ASSERT_EQ(ingot_session_create_with(model, &sp, &session), INGOT_OK) << ingot_last_error();
  ingot_session_free(session);
  ASSERT_EQ(ingot_session_create_with(model, nullptr, &session), INGOT_OK) << ingot_last_error();
  ingot_session_free(session);
  sp.threads = 0;
  EXPECT_EQ(ingot_session_create_with(model, &sp, &session), INGOT_ERR_INVALID_ARGUMENT);
  ingot_model_free(model);
  EXPECT_EQ(ingot_model_load_with((dir_ + "/missing.ingot").c_str(), &p, &model), INGOT_ERR_LOAD);
  EXPECT_EQ(model, nullptr);
}

// The engine runs the best tier this host runs, and a caller may force another through the load
// parameters; a tier the bundle lacks is a load error that names it.
TEST_F(EngineTest, CApiForcesATier) {
  const CpuTier* best = best_cpu_tier(usable_cpu_features());
  ASSERT_NE(best, nullptr);
  EXPECT_EQ(engine_->tier(), best->name);
  EXPECT_EQ(engine_->bundle().kernel_sets().size(), best->name == std::string("x86-64-v3") ? 1u : 2u);
  ingot_load_params p;
  ingot_load_params_default(&p);
  EXPECT_EQ(p.tier, nullptr);
  ingot_model* model = nullptr;
  p.tier = "x86-64-v3";
  ASSERT_EQ(ingot_model_load_with(bundle_.c_str(), &p, &model), INGOT_OK) << ingot_last_error();
  ingot_session* session = nullptr;
  ASSERT_EQ(ingot_session_create(model, 1, &session), INGOT_OK) << ingot_last_error();
  EXPECT_EQ(ingot_session_decode(session, 1), INGOT_OK) << ingot_last_error();
  ingot_session_free(session);
  ingot_model_free(model);
  p.tier = "no-such-tier";
  EXPECT_EQ(ingot_model_load_with(bundle_.c_str(), &p, &model), INGOT_ERR_LOAD);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(ingot_last_error()).find(bundle_ + ": the bundle has no kernels for tier 'no-such-tier'"),
            std::string::npos)
      << ingot_last_error();
}

}  // namespace
}  // namespace ingot
