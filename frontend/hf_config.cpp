#include "frontend/hf_config.h"

#include <cmath>
#include <limits>
#include <sstream>
#include <sys/stat.h>
#include <utility>

#include <nlohmann/json.hpp>

#include "frontend/limits.h"
#include "frontend/mapped_file.h"

namespace ingot {

using nlohmann::json;

namespace hf {

namespace {

// A SAX handler that builds the DOM like nlohmann's own, but can refuse repeated keys and keeps
// the parser's message instead of throwing it. nlohmann's parser is iterative, so deep nesting
// costs heap, not stack.
class StrictJsonBuilder {
 public:
  explicit StrictJsonBuilder(bool reject_duplicate_keys) : reject_duplicates_(reject_duplicate_keys) {}

  bool null() { return add(json(nullptr)) != nullptr; }
  bool boolean(bool v) { return add(json(v)) != nullptr; }
  bool number_integer(json::number_integer_t v) { return add(json(v)) != nullptr; }
  bool number_unsigned(json::number_unsigned_t v) { return add(json(v)) != nullptr; }
  bool number_float(json::number_float_t v, const std::string&) { return add(json(v)) != nullptr; }
  bool string(std::string& v) { return add(json(std::move(v))) != nullptr; }
  bool binary(json::binary_t&) { return false; }  // only binary formats produce these
  bool start_object(std::size_t) { return open(json::object()); }
  bool start_array(std::size_t) { return open(json::array()); }
  bool end_object() { return close(); }
  bool end_array() { return close(); }

  bool key(std::string& k) {
    json* object = open_.back();
    if (reject_duplicates_ && object->contains(k)) {
      error_ = "duplicate key '" + k + "'";
      return false;
    }
    key_ = std::move(k);
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& ex) {
    error_ = ex.what();
    // "[json.exception.parse_error.101] parse error at line 1, ..." -> "parse error at line 1, ..."
    if (!error_.empty() && error_[0] == '[') {
      size_t end = error_.find("] ");
      if (end != std::string::npos) error_ = error_.substr(end + 2);
    }
    error_ = "not valid JSON: " + error_;
    return false;
  }

  const std::string& error() const { return error_; }
  json take_root() { return std::move(root_); }

 private:
  // Stores a value where the parser is: the root, the pending key of the open object, or the end
  // of the open array. Pointers to open containers stay valid: a container only moves while its
  // parent is modified, and the parent is not modified while the child is open.
  json* add(json v) {
    if (open_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    json* parent = open_.back();
    if (parent->is_object()) {
      json& slot = (*parent)[key_];
      slot = std::move(v);
      return &slot;
    }
    parent->push_back(std::move(v));
    return &parent->back();
  }
  bool open(json container) {
    json* p = add(std::move(container));
    open_.push_back(p);
    return true;
  }
  bool close() {
    open_.pop_back();
    return true;
  }

  bool reject_duplicates_;
  json root_;
  std::vector<json*> open_;
  std::string key_;
  std::string error_;
};

}  // namespace

StatusOr<json> parse_json(std::string_view text, std::string_view path, bool reject_duplicate_keys) {
  std::string where(path);
  try {
    StrictJsonBuilder builder(reject_duplicate_keys);
    bool ok = json::sax_parse(text.begin(), text.end(), &builder, json::input_format_t::json,
                              /*strict=*/true, /*ignore_comments=*/false);
    if (!ok) {
      std::string why = builder.error().empty() ? "not valid JSON" : builder.error();
      return Status::Error(where + ": " + why);
    }
    return builder.take_root();
  } catch (const std::exception& e) {  // not expected (allocation failure); never let it escape
    return Status::Error(where + ": cannot parse JSON: " + e.what());
  }
}

StatusOr<std::string> read_file(const std::string& path) {
  INGOT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  return std::string(reinterpret_cast<const char*>(file->data()), file->size());
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string json_type_name(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "object";
    case json::value_t::array: return "array";
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "integer";
    case json::value_t::number_float: return "number";
    case json::value_t::binary: return "binary";
    case json::value_t::discarded: return "discarded";
  }
  return "unknown";
}

}  // namespace hf

namespace {

// Typed access to one JSON object's keys; every error names the file and the key
// ("config.json: 'rope_scaling.factor' must be a number, got string"). Absent and null keys
// read as "not given", as transformers treats them.
class KeyReader {
 public:
  KeyReader(const json& object, std::string path, std::string prefix = "")
      : object_(object), path_(std::move(path)), prefix_(std::move(prefix)) {}

  Status error(const std::string& message) const { return Status::Error(path_ + ": " + message); }
  std::string quoted(const std::string& key) const { return "'" + prefix_ + key + "'"; }

  const json* get(const std::string& key) const {
    auto it = object_.find(key);
    if (it == object_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  bool has(const std::string& key) const { return get(key) != nullptr; }
  // The key is in the object, even as null.
  bool present(const std::string& key) const { return object_.find(key) != object_.end(); }

  StatusOr<std::optional<int64_t>> opt_int(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::optional<int64_t>();
    INGOT_ASSIGN_OR_RETURN(int64_t i, to_int(*v, quoted(key)));
    return std::optional<int64_t>(i);
  }
  StatusOr<int64_t> req_int(const std::string& key) const {
    INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> v, opt_int(key));
    if (!v) return error("missing required key " + quoted(key));
    return *v;
  }
  StatusOr<std::optional<double>> opt_number(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::optional<double>();
    if (!v->is_number()) return error(quoted(key) + " must be a number, got " + hf::json_type_name(*v));
    return std::optional<double>(v->get<double>());
  }
  StatusOr<double> req_number(const std::string& key) const {
    INGOT_ASSIGN_OR_RETURN(std::optional<double> v, opt_number(key));
    if (!v) return error("missing required key " + quoted(key));
    return *v;
  }
  StatusOr<std::optional<bool>> opt_bool(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::optional<bool>();
    if (!v->is_boolean()) return error(quoted(key) + " must be true or false, got " + hf::json_type_name(*v));
    return std::optional<bool>(v->get<bool>());
  }
  StatusOr<std::optional<std::string>> opt_string(const std::string& key) const {
    const json* v = get(key);
    if (!v) return std::optional<std::string>();
    if (!v->is_string()) return error(quoted(key) + " must be a string, got " + hf::json_type_name(*v));
    return std::optional<std::string>(v->get<std::string>());
  }
  // A token id field: absent/null, one integer, or a list of integers ("eos_token_id": [1, 2]).
  StatusOr<std::vector<int64_t>> int_or_list(const std::string& key) const {
    const json* v = get(key);
    std::vector<int64_t> out;
    if (!v) return out;
    if (!v->is_array()) {
      INGOT_ASSIGN_OR_RETURN(int64_t i, to_int(*v, quoted(key)));
      out.push_back(i);
      return out;
    }
    for (size_t i = 0; i < v->size(); ++i) {
      INGOT_ASSIGN_OR_RETURN(int64_t id, to_int((*v)[i], quoted(key) + " entry " + std::to_string(i)));
      out.push_back(id);
    }
    return out;
  }

 private:
  // Integers, and floats with an integral value (64.0), within int64.
  StatusOr<int64_t> to_int(const json& v, const std::string& what) const {
    if (v.is_number_unsigned()) {
      auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return error(what + " is out of range");
      return static_cast<int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_number_float()) {
      double d = v.get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
      return error(what + " must be an integer, got " + v.dump());
    }
    return error(what + " must be an integer, got " + hf::json_type_name(v));
  }

  const json& object_;
  std::string path_;
  std::string prefix_;
};

struct ArchitectureInfo {
  const char* architecture;
  const char* model_type;
  int64_t default_max_positions;  // transformers' config defaults
};
constexpr ArchitectureInfo kArchitectures[] = {
    {"LlamaForCausalLM", "llama", 2048},
    {"MistralForCausalLM", "mistral", 131072},
    {"Qwen2ForCausalLM", "qwen2", 32768},
    {"Qwen3ForCausalLM", "qwen3", 40960},
    {"Gemma2ForCausalLM", "gemma2", 8192},
    {"Gemma3ForCausalLM", "gemma3_text", 131072},
    {"Phi3ForCausalLM", "phi3", 4096},
};

// Gemma 3's multimodal checkpoints, whose language model is imported (parse_gemma3_multimodal).
constexpr const char* kGemma3Multimodal = "Gemma3ForConditionalGeneration";

std::string supported_architectures() {
  std::string s;
  for (const auto& a : kArchitectures) s += std::string(s.empty() ? "" : ", ") + a.architecture;
  return s + ", " + kGemma3Multimodal + " (its language model)";
}

const ArchitectureInfo* find_architecture(std::string_view name) {
  for (const auto& a : kArchitectures)
    if (name == a.architecture) return &a;
  return nullptr;
}
const ArchitectureInfo* find_model_type(std::string_view model_type) {
  for (const auto& a : kArchitectures)
    if (model_type == a.model_type) return &a;
  return nullptr;
}

// "architectures": the first supported entry; without the key, the model_type's architecture.
StatusOr<const ArchitectureInfo*> read_architecture(const KeyReader& keys) {
  INGOT_ASSIGN_OR_RETURN(std::optional<std::string> model_type, keys.opt_string("model_type"));
  const json* list = keys.get("architectures");
  if (!list) {
    if (model_type && find_model_type(*model_type)) return find_model_type(*model_type);
    if (model_type)
      return keys.error("model_type '" + *model_type + "' is not supported and there is no 'architectures' (supported: " +
                        supported_architectures() + ")");
    return keys.error("missing required key 'architectures'");
  }
  if (!list->is_array() || list->empty())
    return keys.error("'architectures' must be a non-empty list of strings, got " + hf::json_type_name(*list));
  for (const json& entry : *list) {
    if (!entry.is_string()) return keys.error("'architectures' entries must be strings, got " + hf::json_type_name(entry));
    if (const ArchitectureInfo* a = find_architecture(entry.get<std::string>())) return a;
  }
  return keys.error("architecture '" + (*list)[0].get<std::string>() + "' is not supported (supported: " +
                    supported_architectures() + ")");
}

Status check_range(const KeyReader& keys, const std::string& key, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi)
    return keys.error(keys.quoted(key) + " is " + std::to_string(v) + ", must be in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]");
  return Status::Ok();
}

// Sizes fit comfortably in int64 products (hidden * vocab, layers * ...) below this.
constexpr int64_t kMaxSize = int64_t{1} << 30;

// Ingot's limits on model shapes (frontend/limits.h): "DIR/config.json: num_hidden_layers = 5000
// is more than the 4096 layers Ingot accepts".
Status check_limit(const KeyReader& keys, const std::string& key, int64_t v, const ModelLimit& limit) {
  Status st = check_model_limit("", key, v, limit);
  return st.ok() ? st : keys.error(st.message());
}

Status read_sizes(const KeyReader& keys, const ArchitectureInfo& arch, HfModelConfig& c) {
  INGOT_ASSIGN_OR_RETURN(c.vocab_size, keys.req_int("vocab_size"));
  INGOT_ASSIGN_OR_RETURN(c.hidden_size, keys.req_int("hidden_size"));
  INGOT_ASSIGN_OR_RETURN(c.intermediate_size, keys.req_int("intermediate_size"));
  INGOT_ASSIGN_OR_RETURN(c.num_hidden_layers, keys.req_int("num_hidden_layers"));
  INGOT_ASSIGN_OR_RETURN(c.num_attention_heads, keys.req_int("num_attention_heads"));
  INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> kv_heads, keys.opt_int("num_key_value_heads"));
  INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> max_positions, keys.opt_int("max_position_embeddings"));
  INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> head_dim, keys.opt_int("head_dim"));
  c.num_key_value_heads = kv_heads.value_or(c.num_attention_heads);
  c.max_position_embeddings = max_positions.value_or(arch.default_max_positions);

  INGOT_RETURN_IF_ERROR(check_limit(keys, "vocab_size", c.vocab_size, kMaxVocab));
  INGOT_RETURN_IF_ERROR(check_limit(keys, "hidden_size", c.hidden_size, kMaxEmbedding));
  INGOT_RETURN_IF_ERROR(check_limit(keys, "intermediate_size", c.intermediate_size, kMaxFeedForward));
  INGOT_RETURN_IF_ERROR(check_limit(keys, "num_hidden_layers", c.num_hidden_layers, kMaxLayers));
  INGOT_RETURN_IF_ERROR(check_limit(keys, "num_attention_heads", c.num_attention_heads, kMaxHeads));
  INGOT_RETURN_IF_ERROR(check_range(keys, "num_key_value_heads", c.num_key_value_heads, 1, c.num_attention_heads));
  INGOT_RETURN_IF_ERROR(check_limit(keys, "max_position_embeddings", c.max_position_embeddings, kMaxContext));
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    return keys.error("'num_attention_heads' (" + std::to_string(c.num_attention_heads) +
                      ") must be a multiple of 'num_key_value_heads' (" + std::to_string(c.num_key_value_heads) + ")");
  if (head_dim) {
    INGOT_RETURN_IF_ERROR(check_limit(keys, "head_dim", *head_dim, kMaxHeadDim));
    c.head_dim = *head_dim;
  } else {
    if (c.hidden_size % c.num_attention_heads != 0)
      return keys.error("'hidden_size' (" + std::to_string(c.hidden_size) + ") is not a multiple of 'num_attention_heads' (" +
                        std::to_string(c.num_attention_heads) + ") and there is no 'head_dim'");
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  return Status::Ok();
}

Status read_norm_and_activation(const KeyReader& keys, HfModelConfig& c) {
  INGOT_ASSIGN_OR_RETURN(std::optional<double> eps, keys.opt_number("rms_norm_eps"));
  if (eps) c.rms_norm_eps = *eps;
  if (!(c.rms_norm_eps > 0.0 && c.rms_norm_eps < 1.0)) return keys.error("'rms_norm_eps' must be in (0, 1)");
  const bool gemma = c.model_type == "gemma2" || c.model_type == "gemma3_text";
  INGOT_ASSIGN_OR_RETURN(std::optional<std::string> act, keys.opt_string(gemma ? "hidden_activation" : "hidden_act"));
  if (!act && gemma) {
    INGOT_ASSIGN_OR_RETURN(act, keys.opt_string("hidden_act"));
  }
  if (gemma) {
    // Gemma's feed-forward is GeGLU with the tanh form of GELU.
    if (act && *act != "gelu_pytorch_tanh")
      return keys.error("hidden_activation '" + *act + "' is not supported for Gemma (supported: gelu_pytorch_tanh)");
    c.hidden_act = "gelu_pytorch_tanh";
  } else if (act) {
    // transformers maps both names to SiLU.
    if (*act != "silu" && *act != "swish") return keys.error("hidden_act '" + *act + "' is not supported (supported: silu)");
    c.hidden_act = "silu";
  }
  return Status::Ok();
}

StatusOr<std::optional<HfRopeScaling>> read_rope_scaling(const json& v, const std::string& path, const std::string& name) {
  if (!v.is_object()) return Status::Error(path + ": '" + name + "' must be an object, got " + hf::json_type_name(v));
  KeyReader keys(v, path, name + ".");
  INGOT_ASSIGN_OR_RETURN(std::optional<std::string> type, keys.opt_string("rope_type"));
  if (!type) {
    INGOT_ASSIGN_OR_RETURN(type, keys.opt_string("type"));
  }
  if (!type) return keys.error("'" + name + "' has no 'type' or 'rope_type'");
  if (*type == "default") return std::optional<HfRopeScaling>();
  if (*type != "linear" && *type != "llama3" && *type != "longrope" && *type != "su")
    return keys.error(name + " type '" + *type + "' is not supported (supported: linear, llama3, longrope)");
  HfRopeScaling s;
  s.type = *type == "su" ? "longrope" : *type;  // transformers reads "su" as longrope
  if (s.type == "longrope") {
    for (auto [key, out] : {std::pair{"long_factor", &s.long_factor}, std::pair{"short_factor", &s.short_factor}}) {
      const json* list = keys.get(key);
      if (!list || !list->is_array() || list->empty() || list->size() > 65536)
        return keys.error("longrope needs " + keys.quoted(key) + " as a list of numbers");
      for (const json& x : *list) {
        if (!x.is_number() || !(x.get<double>() > 0) || !std::isfinite(x.get<double>()))
          return keys.error(keys.quoted(key) + " must hold positive numbers");
        out->push_back(x.get<double>());
      }
    }
    INGOT_ASSIGN_OR_RETURN(s.attention_factor, keys.opt_number("attention_factor"));
    if (s.attention_factor && !(*s.attention_factor > 0)) return keys.error(keys.quoted("attention_factor") + " must be positive");
    INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> orig, keys.opt_int("original_max_position_embeddings"));
    s.original_max_position_embeddings = orig.value_or(0);
    return std::optional<HfRopeScaling>(s);
  }
  INGOT_ASSIGN_OR_RETURN(s.factor, keys.req_number("factor"));
  if (!(s.factor > 0.0)) return keys.error(keys.quoted("factor") + " must be positive");
  if (s.type == "llama3") {
    INGOT_ASSIGN_OR_RETURN(s.low_freq_factor, keys.req_number("low_freq_factor"));
    INGOT_ASSIGN_OR_RETURN(s.high_freq_factor, keys.req_number("high_freq_factor"));
    INGOT_ASSIGN_OR_RETURN(s.original_max_position_embeddings, keys.req_int("original_max_position_embeddings"));
    if (!(s.low_freq_factor > 0.0) || !(s.high_freq_factor > s.low_freq_factor))
      return keys.error("'" + name + "' needs 0 < low_freq_factor < high_freq_factor");
    INGOT_RETURN_IF_ERROR(check_range(keys, "original_max_position_embeddings", s.original_max_position_embeddings, 1, kMaxSize));
  }
  return std::optional<HfRopeScaling>(s);
}

// RoPE on part of each head only (Phi-4-mini: 0.75) is not built, so it is refused rather than
// silently rotating whole heads.
Status check_whole_head_rotary(const KeyReader& keys, std::optional<double> partial) {
  if (!partial || *partial == 1.0) return Status::Ok();
  std::ostringstream v;
  v << *partial;
  return keys.error("partial_rotary_factor " + v.str() + " is not supported (rotary embeddings on part of each head)");
}

// One RoPE setting as transformers v5 writes it: rope_theta, the scaling keys and
// partial_rotary_factor (refused unless 1) in one object ("rope_parameters", or one layer type's
// entry in it).
struct RopeSetting {
  std::optional<double> theta;
  std::optional<HfRopeScaling> scaling;
  std::optional<double> partial_rotary_factor;
};

StatusOr<RopeSetting> read_rope_setting(const json& v, const std::string& path, const std::string& name) {
  RopeSetting r;
  INGOT_ASSIGN_OR_RETURN(r.scaling, read_rope_scaling(v, path, name));  // checks that v is an object
  KeyReader keys(v, path, name + ".");
  INGOT_ASSIGN_OR_RETURN(r.theta, keys.opt_number("rope_theta"));
  INGOT_ASSIGN_OR_RETURN(r.partial_rotary_factor, keys.opt_number("partial_rotary_factor"));
  INGOT_RETURN_IF_ERROR(check_whole_head_rotary(keys, r.partial_rotary_factor));
  return r;
}

// transformers v5 keys rope_parameters by layer type when local and global layers differ
// (Gemma 3: {"full_attention": {linear x8, 1e6}, "sliding_attention": {default, 1e4}}). The full
// layers' entry is the model's RoPE; the sliding layers' is Gemma 3's local base, and for every
// other model must be the same RoPE, since Ingot builds one RoPE for all its layers.
Status read_rope_per_layer_type(const KeyReader& keys, const json& params, const std::string& path, HfModelConfig& c) {
  std::optional<RopeSetting> full, sliding;
  for (const auto& [type, entry] : params.items()) {
    const std::string name = "rope_parameters." + type;
    if (type != "full_attention" && type != "sliding_attention")
      return keys.error("rope_parameters: '" + type + "' beside per-layer-type entries: expected only full_attention and sliding_attention");
    if (entry.is_null()) continue;  // null: absent, as everywhere in config.json
    INGOT_ASSIGN_OR_RETURN(RopeSetting setting, read_rope_setting(entry, path, name));
    if (setting.theta && (!(*setting.theta > 0.0) || !std::isfinite(*setting.theta)))
      return keys.error("'" + name + ".rope_theta' must be positive");
    (type == "full_attention" ? full : sliding) = std::move(setting);
  }
  if (full) {
    if (full->theta) c.rope_theta = *full->theta;
    c.rope_scaling = full->scaling;
  }
  if (!sliding) return Status::Ok();
  if (sliding->scaling)
    return keys.error("rope_parameters.sliding_attention: scaling type '" + sliding->scaling->type +
                      "' on the sliding-window layers is not supported (only the full-attention layers' RoPE may be scaled)");
  if (c.model_type == "gemma3_text") {
    // Without a base of its own: the older key, then transformers' default (read_biases_and_window).
    if (sliding->theta) c.rope_local_base_freq = *sliding->theta;
  } else if (!full || full->scaling || sliding->theta.value_or(c.rope_theta) != c.rope_theta) {
    return keys.error("rope_parameters: different RoPE on sliding_attention and full_attention layers is supported for Gemma 3 only");
  }
  return Status::Ok();
}

// rope_theta and rope_scaling; newer transformers nest both in "rope_parameters", per layer type
// where they differ.
Status read_rope(const KeyReader& keys, const std::string& path, HfModelConfig& c) {
  INGOT_ASSIGN_OR_RETURN(std::optional<double> theta, keys.opt_number("rope_theta"));
  if (theta) c.rope_theta = *theta;
  INGOT_ASSIGN_OR_RETURN(std::optional<double> partial, keys.opt_number("partial_rotary_factor"));
  INGOT_RETURN_IF_ERROR(check_whole_head_rotary(keys, partial));
  if (const json* params = keys.get("rope_parameters")) {
    if (!params->is_object()) return keys.error("'rope_parameters' must be an object, got " + hf::json_type_name(*params));
    if (params->contains("full_attention") || params->contains("sliding_attention")) {
      INGOT_RETURN_IF_ERROR(read_rope_per_layer_type(keys, *params, path, c));
    } else {
      INGOT_ASSIGN_OR_RETURN(RopeSetting s, read_rope_setting(*params, path, "rope_parameters"));
      if (s.theta) c.rope_theta = *s.theta;
      c.rope_scaling = s.scaling;
    }
  }
  if (const json* scaling = keys.get("rope_scaling")) {
    INGOT_ASSIGN_OR_RETURN(c.rope_scaling, read_rope_scaling(*scaling, path, "rope_scaling"));
  }
  if (!(c.rope_theta > 0.0) || !std::isfinite(c.rope_theta)) return keys.error("'rope_theta' must be positive");
  return Status::Ok();
}

Status read_biases_and_window(const KeyReader& keys, HfModelConfig& c) {
  INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> window, keys.opt_int("sliding_window"));
  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2 always has q/k/v biases, never an o_proj bias
    INGOT_ASSIGN_OR_RETURN(std::optional<bool> use_window, keys.opt_bool("use_sliding_window"));
    if (use_window.value_or(false)) {
      if (!window) return keys.error("'use_sliding_window' is true but 'sliding_window' is missing");
      c.sliding_window = window;
    }
  } else if (c.model_type == "mistral") {
    c.sliding_window = window;
  } else if (c.model_type == "gemma2" || c.model_type == "gemma3_text") {
    // transformers' defaults: Gemma 2 caps attention at 50 and logits at 30; Gemma 3 caps neither.
    // A key given as null turns its feature off.
    const bool g2 = c.model_type == "gemma2";
    auto number_or = [&](const char* key, double def) -> StatusOr<double> {
      if (!keys.present(key)) return def;
      INGOT_ASSIGN_OR_RETURN(std::optional<double> v, keys.opt_number(key));
      return v.value_or(0.0);
    };
    INGOT_ASSIGN_OR_RETURN(c.attn_logit_softcapping, number_or("attn_logit_softcapping", g2 ? 50.0 : 0.0));
    INGOT_ASSIGN_OR_RETURN(c.final_logit_softcapping, number_or("final_logit_softcapping", g2 ? 30.0 : 0.0));
    INGOT_ASSIGN_OR_RETURN(c.query_pre_attn_scalar, number_or("query_pre_attn_scalar", 256.0));
    if (c.rope_local_base_freq == 0) {  // not already given by rope_parameters.sliding_attention
      INGOT_ASSIGN_OR_RETURN(c.rope_local_base_freq, number_or("rope_local_base_freq", 10000.0));
    }
    if (!(c.attn_logit_softcapping >= 0) || !(c.final_logit_softcapping >= 0) || !(c.query_pre_attn_scalar > 0) ||
        !(c.rope_local_base_freq > 0))
      return keys.error("the soft-caps must not be negative, and query_pre_attn_scalar and rope_local_base_freq must be positive");
    c.sliding_window = keys.present("sliding_window") ? window : std::optional<int64_t>(4096);
    // Local layers: "layer_types" when given (it must follow the pattern), else every other layer
    // (Gemma 2) or "sliding_window_pattern" (Gemma 3, default 6).
    INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> pattern, keys.opt_int("sliding_window_pattern"));
    c.sliding_window_pattern = pattern.value_or(g2 ? 2 : 6);
    if (const json* types = keys.get("layer_types")) {
      if (!types->is_array() || static_cast<int64_t>(types->size()) != c.num_hidden_layers)
        return keys.error("'layer_types' must list one type per layer");
      int64_t first_full = -1;
      for (size_t l = 0; l < types->size(); ++l)
        if ((*types)[l] == "full_attention") { first_full = static_cast<int64_t>(l); break; }
      if (first_full >= 0) c.sliding_window_pattern = first_full + 1;
      for (size_t l = 0; l < types->size(); ++l) {
        const bool local = static_cast<int64_t>(l) % c.sliding_window_pattern < c.sliding_window_pattern - 1;
        if (!(*types)[l].is_string() || (*types)[l] != (local ? "sliding_attention" : "full_attention"))
          return keys.error("'layer_types' is not a repeating pattern of sliding_attention layers then one full_attention layer");
      }
    }
    if (c.sliding_window_pattern < 1) return keys.error("'sliding_window_pattern' must be positive");
  } else if (c.model_type == "phi3") {
    if (c.rope_scaling && c.rope_scaling->type != "longrope")
      return keys.error("Phi-3's rope_scaling must be longrope, got '" + c.rope_scaling->type + "'");
    INGOT_ASSIGN_OR_RETURN(std::optional<int64_t> orig, keys.opt_int("original_max_position_embeddings"));
    c.original_max_position_embeddings = orig.value_or(0);
    if (c.original_max_position_embeddings < 0 || c.original_max_position_embeddings > kMaxContext.max)
      return keys.error("'original_max_position_embeddings' is out of range");
    c.sliding_window = window;
  } else {
    INGOT_ASSIGN_OR_RETURN(std::optional<bool> bias, keys.opt_bool("attention_bias"));
    INGOT_ASSIGN_OR_RETURN(std::optional<bool> mlp_bias, keys.opt_bool("mlp_bias"));
    c.attention_bias = c.o_proj_bias = bias.value_or(false);
    c.mlp_bias = mlp_bias.value_or(false);
  }
  if (c.sliding_window) INGOT_RETURN_IF_ERROR(check_limit(keys, "sliding_window", *c.sliding_window, kMaxContext));
  return Status::Ok();
}

Status read_token_ids(const KeyReader& keys, HfModelConfig& c) {
  INGOT_ASSIGN_OR_RETURN(std::vector<int64_t> bos, keys.int_or_list("bos_token_id"));
  INGOT_ASSIGN_OR_RETURN(c.eos_token_ids, keys.int_or_list("eos_token_id"));
  if (!bos.empty()) c.bos_token_id = bos[0];
  if (!c.eos_token_ids.empty()) c.eos_token_id = c.eos_token_ids[0];
  return Status::Ok();
}

StatusOr<HfModelConfig> parse_config_object(const json& root, const std::string& path);

// Gemma 3's multimodal checkpoints (4B and up; only 1B is Gemma3ForCausalLM): the language
// model's config is "text_config", which gives only what differs from transformers'
// Gemma3TextConfig defaults; the token ids and dtype may be in the outer config. The vision
// tower is not imported (the importer reads the language model's tensors only).
StatusOr<HfModelConfig> parse_gemma3_multimodal(const json& root, const std::string& path) {
  const auto it = root.find("text_config");
  if (it == root.end() || !it->is_object())
    return Status::Error(path + ": " + kGemma3Multimodal + " needs a 'text_config' object (the language model's config)");
  json text = *it;
  if (text.contains("model_type") && text["model_type"] != "gemma3_text")
    return Status::Error(path + ": text_config: model_type must be 'gemma3_text', got " + text["model_type"].dump());
  // An explicit null counts as absent, as everywhere in config.json.
  auto absent = [&](const char* key) { return !text.contains(key) || text[key].is_null(); };
  for (const char* key : {"bos_token_id", "eos_token_id", "torch_dtype", "dtype", "tie_word_embeddings"})
    if (absent(key) && root.contains(key)) text[key] = root[key];
  const std::pair<const char*, json> defaults[] = {
      {"vocab_size", 262208},       {"hidden_size", 2304},          {"intermediate_size", 9216},
      {"num_hidden_layers", 26},    {"num_attention_heads", 8},     {"num_key_value_heads", 4},
      {"head_dim", 256},            {"rope_theta", 1000000.0},    {"tie_word_embeddings", true},
      {"bos_token_id", 2},          {"eos_token_id", 1},
  };
  for (const auto& [key, value] : defaults)
    if (absent(key)) text[key] = value;
  text["architectures"] = json::array({"Gemma3ForCausalLM"});
  text["model_type"] = "gemma3_text";
  INGOT_ASSIGN_OR_RETURN(HfModelConfig c, parse_config_object(text, path + ": text_config"));
  c.architecture = kGemma3Multimodal;
  c.language_model_only = true;
  return c;
}

bool lists_architecture(const json& root, std::string_view name) {
  const auto it = root.find("architectures");
  if (it == root.end() || !it->is_array()) return false;
  for (const json& entry : *it)
    if (entry.is_string() && entry.get<std::string>() == name) return true;
  return false;
}

StatusOr<HfModelConfig> parse_config_object(const json& root, const std::string& path) {
  if (!root.is_object()) return Status::Error(path + ": not a JSON object (got " + hf::json_type_name(root) + ")");
  if (lists_architecture(root, kGemma3Multimodal)) return parse_gemma3_multimodal(root, path);
  KeyReader keys(root, path);
  HfModelConfig c;
  INGOT_ASSIGN_OR_RETURN(const ArchitectureInfo* arch, read_architecture(keys));
  c.architecture = arch->architecture;
  INGOT_ASSIGN_OR_RETURN(std::optional<std::string> model_type, keys.opt_string("model_type"));
  c.model_type = model_type.value_or(arch->model_type);
  INGOT_RETURN_IF_ERROR(read_sizes(keys, *arch, c));
  INGOT_RETURN_IF_ERROR(read_norm_and_activation(keys, c));
  if (c.model_type == "gemma3_text") c.rope_theta = 1000000.0;  // Gemma3TextConfig's default
  INGOT_RETURN_IF_ERROR(read_rope(keys, path, c));
  INGOT_ASSIGN_OR_RETURN(std::optional<bool> tie, keys.opt_bool("tie_word_embeddings"));
  // transformers' defaults: Gemma2Config and Gemma3TextConfig tie, the others' classes do not.
  c.tie_word_embeddings = tie.value_or(c.model_type == "gemma2" || c.model_type == "gemma3_text");
  INGOT_RETURN_IF_ERROR(read_biases_and_window(keys, c));
  INGOT_RETURN_IF_ERROR(read_token_ids(keys, c));
  INGOT_ASSIGN_OR_RETURN(std::optional<std::string> dtype, keys.opt_string("torch_dtype"));
  if (!dtype) {
    INGOT_ASSIGN_OR_RETURN(dtype, keys.opt_string("dtype"));  // the key's newer name
  }
  c.torch_dtype = dtype.value_or("");
  return c;
}

StatusOr<HfGenerationConfig> parse_generation_object(const json& root, const std::string& path) {
  if (!root.is_object()) return Status::Error(path + ": not a JSON object (got " + hf::json_type_name(root) + ")");
  KeyReader keys(root, path);
  HfGenerationConfig g;
  g.found = true;
  INGOT_ASSIGN_OR_RETURN(g.temperature, keys.opt_number("temperature"));
  INGOT_ASSIGN_OR_RETURN(g.top_k, keys.opt_int("top_k"));
  INGOT_ASSIGN_OR_RETURN(g.top_p, keys.opt_number("top_p"));
  INGOT_ASSIGN_OR_RETURN(g.repetition_penalty, keys.opt_number("repetition_penalty"));
  INGOT_ASSIGN_OR_RETURN(g.max_new_tokens, keys.opt_int("max_new_tokens"));
  INGOT_ASSIGN_OR_RETURN(g.max_length, keys.opt_int("max_length"));
  INGOT_ASSIGN_OR_RETURN(g.do_sample, keys.opt_bool("do_sample"));
  INGOT_ASSIGN_OR_RETURN(g.bos_token_id, keys.opt_int("bos_token_id"));
  INGOT_ASSIGN_OR_RETURN(g.pad_token_id, keys.opt_int("pad_token_id"));
  INGOT_ASSIGN_OR_RETURN(g.eos_token_ids, keys.int_or_list("eos_token_id"));
  return g;
}

}  // namespace

StatusOr<HfModelConfig> parse_hf_config(std::string_view text, std::string_view path) {
  std::string where(path);
  INGOT_ASSIGN_OR_RETURN(json root, hf::parse_json(text, where));
  try {
    return parse_config_object(root, where);
  } catch (const std::exception& e) {  // the readers check types first; this is a safety net
    return Status::Error(where + ": unexpected JSON content: " + e.what());
  }
}

StatusOr<HfModelConfig> load_hf_config(const std::string& dir) {
  std::string path = hf::join_path(dir, "config.json");
  INGOT_ASSIGN_OR_RETURN(std::string text, hf::read_file(path));
  return parse_hf_config(text, path);
}

StatusOr<HfGenerationConfig> parse_hf_generation_config(std::string_view text, std::string_view path) {
  std::string where(path);
  INGOT_ASSIGN_OR_RETURN(json root, hf::parse_json(text, where));
  try {
    return parse_generation_object(root, where);
  } catch (const std::exception& e) {
    return Status::Error(where + ": unexpected JSON content: " + e.what());
  }
}

StatusOr<HfGenerationConfig> load_hf_generation_config(const std::string& dir) {
  std::string path = hf::join_path(dir, "generation_config.json");
  if (!hf::file_exists(path)) return HfGenerationConfig{};
  INGOT_ASSIGN_OR_RETURN(std::string text, hf::read_file(path));
  return parse_hf_generation_config(text, path);
}

}  // namespace ingot
