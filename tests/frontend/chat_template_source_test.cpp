// Reading a model's chat template (frontend/chat_template_source.h): GGUF keys, tokenizer_config.json
// as a string or a list of named templates, chat_template.jinja, chat_template.json; bos/eos from
// the tokenizer.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "frontend/chat_template_source.h"
#include "frontend/gguf.h"
#include "runtime/chat_template.h"
#include "tests/common/files.h"
#include "tests/common/models.h"

namespace ingot {
namespace {

namespace fs = std::filesystem;

using ::ingot::testing::write_file;

TEST(ChatTemplateSource, GgufKeysAndTokens) {
  INGOT_MODEL_PATH(vocab, "vocab/ggml-vocab-llama-spm.gguf");
  auto src = GgufFile::open(vocab);
  ASSERT_TRUE(src.ok()) << src.message();
  GgufWriter w;
  for (const auto& [k, v] : (*src)->metadata()) w.set(k, v);
  w.set("tokenizer.chat_template", GgufValue::string("{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{{ eos_token }}{% endfor %}"));
  w.set("tokenizer.chat_template.tool_use", GgufValue::string("tools: {{ tools|length }}"));
  const std::string path = testing::make_temp_dir("chat_gguf") + "/vocab.gguf";
  ASSERT_TRUE(w.write(path).ok());
  auto m = read_model_chat_template(path);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->bos_token, "<s>");
  EXPECT_EQ(m->eos_token, "</s>");
  auto t = ChatTemplate::parse(m->pick(false));
  ASSERT_TRUE(t.ok()) << t.message();
  ChatInputs in;
  ASSERT_TRUE(chat_inputs_from_json(R"([{"role": "user", "content": "hi"}])", in).ok());
  in.bos_token = m->bos_token;
  in.eos_token = m->eos_token;
  EXPECT_EQ(*t->apply(in), "<s>[user]hi</s>");
  EXPECT_EQ(m->pick(true), "tools: {{ tools|length }}");
}

TEST(ChatTemplateSource, HfNamedTemplatesAndJinjaFile) {
  INGOT_MODEL_PATH(llama3, "tokenizers/llama3");
  const std::string dir = testing::make_temp_dir("chat_hf");
  fs::copy_file(llama3 + "/tokenizer.json", dir + "/tokenizer.json");
  write_file(dir + "/tokenizer_config.json",
             R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "chat_template": [
                 {"name": "default", "template": "D{{ messages|length }}"},
                 {"name": "tool_use", "template": "T{{ tools|length }}"}]})");
  auto m = read_model_chat_template(dir);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->source, "D{{ messages|length }}");
  EXPECT_EQ(m->pick(true), "T{{ tools|length }}");
  EXPECT_EQ(m->bos_token, "<|begin_of_text|>");

  // No chat_template in the config: chat_template.jinja beside it.
  write_file(dir + "/tokenizer_config.json", R"({"bos_token": "<|begin_of_text|>"})");
  write_file(dir + "/chat_template.jinja", "J{{ bos_token }}");
  m = read_model_chat_template(dir);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->source, "J{{ bos_token }}");

  // Neither: a multimodal model's processor file, chat_template.json.
  fs::remove(dir + "/chat_template.jinja");
  write_file(dir + "/chat_template.json", R"({"chat_template": "P{{ eos_token }}"})");
  m = read_model_chat_template(dir);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->source, "P{{ eos_token }}");
  write_file(dir + "/chat_template.json", R"({"chat_template": null})");  // null: none, as in tokenizer_config.json
  m = read_model_chat_template(dir);
  ASSERT_TRUE(m.ok()) << m.message();
  EXPECT_EQ(m->source, "");
  write_file(dir + "/chat_template.json", R"({"chat_template": ["x"]})");
  m = read_model_chat_template(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("chat_template.json: chat_template is not a string"), std::string::npos) << m.message();

  write_file(dir + "/tokenizer_config.json", R"({"chat_template": 3})");
  m = read_model_chat_template(dir);
  ASSERT_FALSE(m.ok());
  EXPECT_NE(m.message().find("neither a string nor a list"), std::string::npos) << m.message();
}

}  // namespace
}  // namespace ingot
